//! `send_invoice` actions for the companies the watcher reaches: QuickBooks emails the invoice
//! with its own template, called with the company's current access token (refreshed as needed,
//! once more after a 401) within its request limits. A company that needs reconnecting fails the
//! delivery with the command that fixes it; `invoiceflow outbox retry` sends it once reconnected.

use chrono::Duration;
use invoiceflow_connectors::{Attempted, Attempting, Connector, Delivery};
use invoiceflow_rules::script::Action;

use super::{Companies, Watch, WatchError};
use crate::store::quickbooks::QuickBooksStore;

/// Sends invoices through the QuickBooks API of the watched companies.
#[derive(Debug)]
pub struct InvoiceSender<'a, S> {
    /// Store, HTTP client, tokens and node.
    pub watch: Watch<'a, S>,
    /// The companies it can call.
    pub companies: &'a Companies,
}

impl<S: QuickBooksStore> Connector for InvoiceSender<'_, S> {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        Box::pin(async move {
            let Action::SendInvoice { invoice, to } = &d.intent.action else {
                return Attempted::Permanent {
                    detail: format!("QuickBooks cannot deliver a {} action", d.intent.action.kind()),
                    disable_destination: false,
                };
            };
            let Some(company) = self.companies.by_name(&invoice.account) else {
                return Attempted::Permanent {
                    detail: format!(
                        "company {0} is not a QuickBooks company invoiceflow can call: give [quickbooks.{0}] a realm_id \
                         and client_id (then `invoiceflow quickbooks connect {0}`) or access_token_env",
                        invoice.account
                    ),
                    disable_destination: false,
                };
            };
            let (client, id) = (self.watch.client, invoice.id.as_str());
            let sent = self
                .watch
                .call(company, d.at, |token| async move {
                    company.api.send_invoice(client, &token, id, to.as_deref(), d.key).await
                })
                .await;
            match sent {
                Ok(attempted) => attempted,
                Err(
                    e @ (WatchError::NeedsReconnect { .. } | WatchError::NotConnected(_) | WatchError::Config { .. }),
                ) => Attempted::Permanent { detail: e.to_string(), disable_destination: false },
                Err(e @ WatchError::Refreshing(_)) => {
                    Attempted::Transient { retry_after: Some(Duration::seconds(30)), detail: e.to_string() }
                }
                Err(e) => Attempted::Transient { retry_after: None, detail: e.to_string() },
            }
        })
    }
}
