//! Integration tests of the engine: the store contract on both backends, and the command line as
//! a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly on purpose")]

mod cli;
mod crash;
mod dispatch;
mod fleet;
mod multinode;
mod reminders;
mod schedule;
mod server;
mod store_contract;
mod support;
