//! Watching QuickBooks Online: the companies connected by OAuth, their tokens kept fresh
//! ([`tokens`]), the entities webhooks name fetched and applied ([`inbox`]), and change-data-
//! capture sweeps that back-fill what webhooks missed ([`sync`]) on a schedule ([`sweeps`]), all
//! driven by `invoiceflow run` ([`watcher`]). Fetched entities go through the parser and store
//! path `invoiceflow import` takes ([`entities`]). A company is connected, and connected again
//! after Intuit refused its tokens, by the consent flow of [`connect`].

pub mod connect;
pub mod entities;
pub mod inbox;
pub mod send;
pub mod sweeps;
pub mod sync;
pub mod tokens;
pub mod watcher;

use std::collections::BTreeMap;

use invoiceflow_connectors::http::HttpError;
use invoiceflow_connectors::quickbooks::api::{ApiError, CompanyApi};
use invoiceflow_connectors::quickbooks::limits::Limiter;
use invoiceflow_connectors::quickbooks::oauth::{OAuthApp, OAuthError};
use invoiceflow_connectors::secret::SecretString;
use invoiceflow_rules::AccountName;

use crate::config::{Config, OAuthSettings, SecretSource};
use crate::store::StoreError;
use crate::store::quickbooks::QuickBooksStore;
use tokens::TokenKeeper;

/// What watching works with: the store, an HTTP client, the token keeper and this node's name
/// (in leases).
#[derive(Debug, Clone, Copy)]
pub struct Watch<'a, S> {
    /// The store.
    pub store: &'a S,
    /// The HTTP client QuickBooks is called with.
    pub client: &'a reqwest::Client,
    /// Hands out fresh tokens.
    pub keeper: &'a TokenKeeper,
    /// This node's name.
    pub node: &'a str,
}

impl<S: QuickBooksStore> Watch<'_, S> {
    /// `call`s QuickBooks for `company` at `now` with its access token; after a 401, once more
    /// with a refreshed one. A second 401 means the grant itself is gone: the company needs
    /// reconnecting.
    ///
    /// # Errors
    /// [`WatchError`]: tokens, QuickBooks' answer, or the store.
    pub async fn call<T, F, Fut>(
        &self,
        company: &WatchedCompany,
        now: chrono::DateTime<chrono::Utc>,
        call: F,
    ) -> Result<T, WatchError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let api = |error| WatchError::Api { company: company.account.clone(), error };
        let token = self.keeper.token(self.store, self.client, company, self.node, now, None).await?;
        match call(token.clone()).await {
            Err(ApiError::Unauthorized) => {}
            other => return other.map_err(api),
        }
        let token = self.keeper.token(self.store, self.client, company, self.node, now, Some(&token)).await?;
        match call(token.clone()).await {
            Err(ApiError::Unauthorized) if company.fixed_token.is_none() => {
                let reason = "QuickBooks refused a freshly refreshed access token (HTTP 401)".to_owned();
                self.store.disconnect(&company.account, &reason, now).await?;
                Err(WatchError::NeedsReconnect { company: company.account.clone(), reason })
            }
            other => other.map_err(api),
        }
    }
}

/// A company as the watcher reaches it.
#[derive(Debug)]
pub struct WatchedCompany {
    /// Its `[quickbooks.NAME]`.
    pub account: AccountName,
    /// Its API, within QuickBooks' limits.
    pub api: CompanyApi,
    /// How its tokens are refreshed (none: a fixed token).
    pub oauth: Option<OAuthApp>,
    /// A fixed access token from the configuration, used instead of the stored ones.
    pub fixed_token: Option<SecretString>,
    /// Minutes between sweeps.
    pub sync_every_minutes: u32,
}

/// The companies invoiceflow may call, by realm id.
#[derive(Debug, Default)]
pub struct Companies {
    by_realm: BTreeMap<String, WatchedCompany>,
}

impl Companies {
    /// Every `[quickbooks.NAME]` with a realm id and a way to authenticate (OAuth or a fixed
    /// token), its secrets read now.
    ///
    /// # Errors
    /// [`WatchError::Config`] naming the key whose secret cannot be read or whose URL is wrong.
    pub fn from_config(config: &Config) -> Result<Self, WatchError> {
        let mut by_realm = BTreeMap::new();
        for (account, qb) in &config.quickbooks_api {
            let key = |k: &str| format!("quickbooks.{account}.{k}");
            let bad = |k: &str, reason: String| WatchError::Config { key: key(k), reason };
            let oauth = match &qb.oauth {
                None => None,
                Some(o) => Some(oauth_app(account, o)?),
            };
            let fixed_token = match &qb.access_token {
                None => None,
                Some(source) => Some(source.read().map_err(|r| bad("access_token_env", r))?),
            };
            if oauth.is_none() && fixed_token.is_none() {
                continue;
            }
            let api = CompanyApi::new(&qb.realm_id, &qb.base, Limiter::default())
                .map_err(|e: HttpError| bad("api_base", e.to_string()))?;
            by_realm.insert(
                qb.realm_id.clone(),
                WatchedCompany {
                    account: account.clone(),
                    api,
                    oauth,
                    fixed_token,
                    sync_every_minutes: qb.sync_every_minutes,
                },
            );
        }
        Ok(Self { by_realm })
    }

    /// The company of `realm_id`.
    pub fn by_realm(&self, realm_id: &str) -> Option<&WatchedCompany> {
        self.by_realm.get(realm_id)
    }

    /// The company called `account`.
    pub fn by_name(&self, account: &AccountName) -> Option<&WatchedCompany> {
        self.by_realm.values().find(|c| &c.account == account)
    }

    /// Every company, by realm id.
    pub fn iter(&self) -> impl Iterator<Item = &WatchedCompany> {
        self.by_realm.values()
    }

    /// True without any company to watch.
    pub fn is_empty(&self) -> bool {
        self.by_realm.is_empty()
    }
}

/// The Intuit app of `[quickbooks.{account}]`, its client secret read now.
///
/// # Errors
/// [`WatchError::Config`] naming the key whose secret cannot be read or whose URL is wrong.
pub fn oauth_app(account: &AccountName, settings: &OAuthSettings) -> Result<OAuthApp, WatchError> {
    let bad = |k: &str, reason: String| WatchError::Config { key: format!("quickbooks.{account}.{k}"), reason };
    let secret_key = match settings.client_secret {
        SecretSource::Env(_) => "client_secret_env",
        SecretSource::File(_) => "client_secret_file",
    };
    let client_secret = settings.client_secret.read().map_err(|r| bad(secret_key, r))?;
    let url = |k: &str, text: &str| reqwest::Url::parse(text).map_err(|e| bad(k, e.to_string()));
    Ok(OAuthApp {
        client_id: settings.client_id.clone(),
        client_secret,
        authorize_url: url("oauth_base", &settings.authorize_url)?,
        token_url: url("oauth_base", &settings.token_url)?,
        redirect_uri: url("redirect_uri", &settings.redirect_uri)?,
    })
}

/// Why watching a company failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A configuration key is wrong or its secret unreadable.
    #[error("{key}: {reason}")]
    Config {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The company was never connected.
    #[error("company {0} is not connected: run `invoiceflow quickbooks connect {0}`")]
    NotConnected(AccountName),
    /// QuickBooks refused its tokens: it must be connected again; its traffic is paused.
    #[error("company {company} needs reconnecting ({reason}): run `invoiceflow quickbooks connect {company}`")]
    NeedsReconnect {
        /// The company.
        company: AccountName,
        /// Why.
        reason: String,
    },
    /// Another node is refreshing the company's tokens: try again in a moment.
    #[error("another node is refreshing the tokens of {0}")]
    Refreshing(AccountName),
    /// Intuit's token endpoint failed.
    #[error("refreshing the tokens of {company}: {error}")]
    OAuth {
        /// The company.
        company: AccountName,
        /// What Intuit answered.
        error: OAuthError,
    },
    /// The QuickBooks API failed.
    #[error("QuickBooks API of {company}: {error}")]
    Api {
        /// The company.
        company: AccountName,
        /// What it answered.
        error: ApiError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
