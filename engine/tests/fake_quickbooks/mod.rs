//! A fake QuickBooks Online for tests and benchmarks: the accounting API (query, CDC, entity
//! reads, send-invoice) and Intuit's OAuth 2, on `127.0.0.1`, in QuickBooks' real JSON shapes
//! (DOMAIN.md §1 and §5), with a settable clock, failure injection, QuickBooks' rate limits and a
//! log of every request. Webhook bodies and their signature are pure helpers.
//!
//! ```ignore
//! #[path = "../fake_quickbooks/mod.rs"]
//! mod fake_quickbooks;
//!
//! let qb = FakeQuickBooks::start().await;
//! qb.add_company("9341453050298464");
//! qb.put("9341453050298464", Kind::Invoice, InvoiceSpec::default().json());
//! let token = qb.grant("9341453050298464").access_token;
//! // GET {qb.base_url()}/v3/company/9341453050298464/query?query=…&minorversion=75
//! ```
//!
//! Wiring only here: `server` (the handle and the request pipeline), `control` (what a test
//! does to the fake), `state`, `oauth`, `api` and `query` (what it serves), `faults`, `routes`,
//! `form`, and the pure `entities` and `webhooks`.

// Included by `#[path]` into test binaries and benchmarks, each of which uses part of it.
#![allow(dead_code, reason = "each test binary or benchmark uses part of the fake")]

mod api;
mod control;
mod entities;
mod faults;
mod form;
mod oauth;
mod query;
mod routes;
mod server;
mod state;
mod webhooks;

// The public face of the fake; an including crate re-exports nothing and uses only part of it.
#[allow(unused_imports, reason = "each test binary or benchmark uses part of the fake")]
pub use {
    entities::{BillSpec, DepositSpec, InvoiceSpec, PaymentSpec},
    faults::Failure,
    oauth::Grant,
    routes::{Endpoint, Recorded},
    server::FakeQuickBooks,
    state::Kind,
    webhooks::{Change, SIGNATURE_HEADER, cloud_events_body, notification_body, sign},
};
