//! The invoiceflow engine: the store (SQLite or PostgreSQL), ingestion of QuickBooks and canonical
//! records, the time-dependent status refresh, the HTTP API of the running engine, and the
//! `invoiceflow` command line.
//!
//! The flow is ingest → store → evaluate → outbox → dispatch (see `ARCHITECTURE.md`); the pure
//! decisions live in `invoiceflow-rules`, which this crate feeds and persists.

pub mod clock;
pub mod config;
pub mod deals;
pub mod dispatch;
pub mod evaluate;
pub mod group;
pub mod ingest;
pub mod quickbooks;
pub mod reminders;
pub mod rulebook;
pub mod run;
pub mod schedule;
pub mod server;
pub mod store;
pub mod tasks;
