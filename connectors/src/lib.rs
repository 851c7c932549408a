//! How invoiceflow's actions leave the building: email (SMTP), Slack-style and signed webhooks, and
//! QuickBooks (tasks, send invoice).
//!
//! This crate sits between the pure core (`invoiceflow-rules`, which decides *what* should happen)
//! and the engine (which stores, schedules and dispatches). It is deliberately empty until the
//! `invoiceflow run` issue gives it its connectors; it exists now so that the direction of
//! dependencies — engine → connectors → rules — is fixed from the first commit.
