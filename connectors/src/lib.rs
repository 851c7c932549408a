//! How invoiceflow's actions leave the building: email (SMTP), Slack-style and signed webhooks,
//! QuickBooks' send-invoice, and a local file sink for trying invoiceflow out.
//!
//! This crate sits between the pure core (`invoiceflow-rules`, which decides *what* should happen)
//! and the engine (which stores, schedules and dispatches). A [`Connector`] makes one attempt at
//! one delivery and says how it went ([`Attempted`]); whether and when to try again is the
//! outbox's business (`invoiceflow_rules::retry`). Each connector is a folder: what it sends is
//! built by pure functions (`request.rs`, `message.rs`), unit-tested without a network, and the
//! connector itself does the I/O and reads the peer's answer.
//!
//! The QuickBooks folder also reads companies for the engine: OAuth with Intuit, each company's
//! request limits, queries, fetches by id and change data capture (`quickbooks::{oauth, limits,
//! api}`). Those calls answer with typed errors and never retry by themselves.

pub mod email;
pub mod guard;
pub mod http;
pub mod quickbooks;
pub mod secret;
pub mod sink;
pub mod slack;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
pub use invoiceflow_rules::retry::Attempted;
use invoiceflow_rules::script::Intent;

/// One delivery to attempt.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Its idempotency key: the same on every attempt (email Message-ID, `webhook-id`).
    pub key: &'a str,
    /// What to deliver, with its provenance.
    pub intent: &'a Intent,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// When this attempt is made (the engine's clock: `webhook-timestamp`, the email's `Date`).
    pub at: DateTime<Utc>,
}

/// An attempt under way.
pub type Attempting<'a> = Pin<Box<dyn Future<Output = Attempted> + Send + 'a>>;

/// Makes one attempt at a delivery. Object-safe, so that the engine can hold each configured
/// destination as a `Box<dyn Connector>`.
pub trait Connector: Send + Sync {
    /// Attempts `delivery` once.
    fn deliver<'a>(&'a self, delivery: &'a Delivery<'a>) -> Attempting<'a>;
}

/// Connectors answer for an action they do not carry with a permanent failure naming both.
pub(crate) fn wrong_action(connector: &str, delivery: &Delivery<'_>) -> Attempted {
    Attempted::Permanent {
        detail: format!("the {connector} connector does not carry {} actions", delivery.intent.action.kind()),
        disable_destination: false,
    }
}
