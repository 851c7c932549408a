//! How invoiceflow's actions leave the building: email (SMTP), Slack-style and signed webhooks, and
//! QuickBooks (tasks, send invoice).
//!
//! This crate sits between the pure core (`invoiceflow-rules`, which decides *what* should happen)
//! and the engine (which stores, schedules and dispatches). A [`Connector`] makes one attempt at
//! one delivery and says how it went ([`Attempted`]); whether and when to try again is the
//! outbox's business (`invoiceflow_rules::retry`). What each connector sends is built by pure
//! functions, unit-tested without a network.

pub mod guard;
pub mod sink;
pub mod slack;
pub mod webhook;

use std::future::Future;

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
}

/// Makes one attempt at a delivery.
pub trait Connector: Send + Sync {
    /// Attempts `delivery` once.
    fn deliver(&self, delivery: &Delivery<'_>) -> impl Future<Output = Attempted> + Send;
}
