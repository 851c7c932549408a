//! A company's access token, kept fresh: refreshed a few minutes before it expires (or at once
//! after a 401), by one task of one node at a time — a lock per company in the process, a
//! refresh lease in the store across nodes — and the rotated refresh token saved with the new
//! access token in one statement. `invalid_grant` marks the company "needs reconnect": its
//! QuickBooks traffic stops until an admin connects it again, and nothing retries in a loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use invoiceflow_connectors::quickbooks::oauth::OAuthError;
use invoiceflow_connectors::secret::SecretString;
use invoiceflow_rules::AccountName;

use super::{WatchError, WatchedCompany};
use crate::store::quickbooks::{Connection, ConnectionState, QuickBooksStore};

/// Refreshed when it has less than this left.
const EARLY: Duration = Duration::minutes(5);

/// How long a node may take over a refresh before another takes it over.
const REFRESH_LEASE: Duration = Duration::seconds(30);

/// Hands out access tokens, refreshing them as needed.
#[derive(Debug, Default)]
pub struct TokenKeeper {
    locks: Mutex<HashMap<AccountName, Arc<tokio::sync::Mutex<()>>>>,
}

impl TokenKeeper {
    /// A token for `company` at `now`; refreshed first when it expires within five minutes, or
    /// when `rejected` (QuickBooks just answered 401 to it).
    ///
    /// # Errors
    /// [`WatchError::NotConnected`], [`WatchError::NeedsReconnect`] (`invalid_grant` now or
    /// before), [`WatchError::Refreshing`] (another node is at it), [`WatchError::OAuth`] (try
    /// again later), [`WatchError::Store`].
    pub async fn token<S: QuickBooksStore>(
        &self,
        store: &S,
        client: &reqwest::Client,
        company: &WatchedCompany,
        node: &str,
        now: DateTime<Utc>,
        rejected: Option<&SecretString>,
    ) -> Result<SecretString, WatchError> {
        if let Some(fixed) = &company.fixed_token {
            return Ok(fixed.clone());
        }
        let usable = |c: &Connection| -> Result<Option<SecretString>, WatchError> {
            let tokens = match (&c.state, &c.tokens) {
                (ConnectionState::Connected, Some(t)) => t,
                _ => {
                    return Err(WatchError::NeedsReconnect {
                        company: c.company.clone(),
                        reason: c.reason.clone().unwrap_or_else(|| "no tokens".into()),
                    });
                }
            };
            let fresh = tokens.access_expires_at - now > EARLY && rejected != Some(&tokens.access_token);
            Ok(fresh.then(|| tokens.access_token.clone()))
        };
        let connection = self.connection(store, &company.account).await?;
        if let Some(token) = usable(&connection)? {
            return Ok(token);
        }
        // One refresh per company in this process; the others wait for it and use its result.
        let lock = self.lock(&company.account);
        let _held = lock.lock().await;
        let connection = self.connection(store, &company.account).await?;
        if let Some(token) = usable(&connection)? {
            return Ok(token);
        }
        let Some(app) = &company.oauth else { return Err(WatchError::NotConnected(company.account.clone())) };
        let Some(tokens) = &connection.tokens else { return Err(WatchError::NotConnected(company.account.clone())) };
        let version = connection.token_version;
        if !store.claim_refresh(&company.account, node, version, now, now + REFRESH_LEASE).await? {
            return Err(WatchError::Refreshing(company.account.clone()));
        }
        match app.refresh(client, &tokens.refresh_token, now).await {
            Ok(new) => {
                if !store.save_refresh(&company.account, node, version, &new, now).await? {
                    // Our lease ran out and another node refreshed meanwhile: its pair is the one
                    // kept; this access token still works until it expires.
                    tracing::warn!(company = %company.account, "a refresh outlived its lease; the other node's tokens are kept");
                }
                tracing::info!(company = %company.account, expires = %new.access_expires_at, "QuickBooks tokens refreshed");
                Ok(new.access_token)
            }
            Err(OAuthError::InvalidGrant { detail }) => {
                let reason = format!("Intuit refused the refresh token (invalid_grant: {detail})");
                if store.disconnect(&company.account, &reason, now).await? {
                    tracing::error!(company = %company.account, "{reason}: QuickBooks traffic paused until `invoiceflow quickbooks connect {}`", company.account);
                }
                Err(WatchError::NeedsReconnect { company: company.account.clone(), reason })
            }
            Err(error) => {
                store.note_error(&company.account, &error.to_string(), now).await?;
                Err(WatchError::OAuth { company: company.account.clone(), error })
            }
        }
    }

    async fn connection<S: QuickBooksStore>(&self, store: &S, company: &AccountName) -> Result<Connection, WatchError> {
        store
            .connections()
            .await?
            .into_iter()
            .find(|c| &c.company == company)
            .ok_or_else(|| WatchError::NotConnected(company.clone()))
    }

    fn lock(&self, company: &AccountName) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(company.clone()).or_default())
    }
}
