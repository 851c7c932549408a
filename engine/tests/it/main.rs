//! Integration tests of the engine: the store contract on both backends, the command line as a
//! user runs it, and the fake QuickBooks the QuickBooks tests talk to.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly on purpose")]

mod cli;
mod crash;
mod dispatch;
#[path = "../fake_quickbooks/mod.rs"]
mod fake_quickbooks;
mod fake_quickbooks_selftest;
mod fleet;
mod multinode;
mod quickbooks_connect;
mod quickbooks_run;
mod quickbooks_watch;
mod reminders;
mod schedule;
mod server;
mod store_contract;
mod support;
