//! QuickBooks Online as a delivery channel: `send_invoice` actions make QuickBooks email the
//! invoice with its own template. The task manager, QuickBooks having no public API for its own,
//! is the engine's (it lives in the database).
//!
//! Reading companies is here too: connecting them and refreshing their tokens ([`oauth`]), their
//! request limits ([`limits`]), queries, fetches by id and change data capture ([`api`]), and the
//! webhooks that say what changed ([`webhook`]).

pub mod api;
mod fault;
pub mod limits;
pub mod oauth;
mod request;
pub mod webhook;

use std::collections::BTreeMap;

use invoiceflow_rules::AccountName;
use invoiceflow_rules::script::Action;
pub use request::{MINOR_VERSION, classify, send_invoice_url};

use crate::http::{self, HttpError};
use crate::secret::SecretString;
use crate::{Attempted, Attempting, Connector, Delivery};

/// A connected QuickBooks company, as the connector needs it.
#[derive(Debug, Clone)]
pub struct Company {
    api: api::CompanyApi,
    access_token: SecretString,
}

impl Company {
    /// The company `realm_id` at the API `base` (`https://quickbooks.api.intuit.com`, the
    /// sandbox, or a test server), called with `access_token`. The API base is an operator's
    /// setting, not a webhook target: it is not held to the private-address guard.
    ///
    /// # Errors
    /// [`HttpError`] for a base that is not an http(s) URL.
    pub fn new(realm_id: &str, base: &str, access_token: SecretString) -> Result<Self, HttpError> {
        Ok(Self { api: api::CompanyApi::new(realm_id, base, limits::Limiter::default())?, access_token })
    }
}

/// Sends invoices through the QuickBooks API of the configured companies.
#[derive(Debug)]
pub struct QuickBooks {
    /// None without companies: no TLS set-up for nothing.
    client: Option<reqwest::Client>,
    companies: BTreeMap<AccountName, Company>,
}

impl QuickBooks {
    /// The connector for `companies`, by name.
    ///
    /// # Errors
    /// [`HttpError::Client`] when TLS cannot be set up.
    pub fn new(companies: BTreeMap<AccountName, Company>) -> Result<Self, HttpError> {
        let client = if companies.is_empty() { None } else { Some(http::client(true)?) };
        Ok(Self { client, companies })
    }
}

impl Connector for QuickBooks {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        Box::pin(async move {
            let Action::SendInvoice { invoice, to } = &d.intent.action else {
                return crate::wrong_action("QuickBooks", d);
            };
            let (Some(company), Some(client)) = (self.companies.get(&invoice.account), self.client.as_ref()) else {
                return Attempted::Permanent {
                    detail: format!(
                        "company {} is not a connected QuickBooks company: add [quickbooks.{}] with its realm_id and access token",
                        invoice.account, invoice.account
                    ),
                    disable_destination: false,
                };
            };
            let sent = company
                .api
                .send_invoice(client, &company.access_token, invoice.id.as_str(), to.as_deref(), d.key)
                .await;
            match sent {
                Ok(attempted) => attempted,
                // A fixed token is not refreshed: tried again, in case QuickBooks only stumbled.
                Err(api::ApiError::Unauthorized) => classify(401, "", None),
                Err(e) => Attempted::Transient { retry_after: None, detail: e.to_string() },
            }
        })
    }
}
