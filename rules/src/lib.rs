//! The pure core of invoiceflow.
//!
//! invoiceflow watches the invoice properties of deals as they change in QuickBooks Online and acts
//! on them. This crate decides *what* is true and what should happen: the records (invoices, bills,
//! payments, deposits), their status on a given day, the deal properties projected from a deal's
//! invoices, the history events between two versions of a record, how JSON documents become
//! records, what admin-written rule scripts decide ([`script`]) and when the reminder workflows
//! fire ([`workflow`]). It does no I/O, reads no clock and no environment: callers pass "now" and
//! "today" in, which keeps every decision reproducible and testable.
//!
//! The engine (`invoiceflow` crate) stores what this crate decides; the connectors deliver it.

pub mod change;
pub mod company;
pub mod deal;
pub mod format;
pub mod ids;
pub mod money;
pub mod parse;
pub mod record;
pub mod retry;
pub mod script;
pub mod status;
pub mod suggest;
pub mod workflow;

#[cfg(test)]
mod test_support;

pub use change::{Change, Property, Watched};
pub use company::Company;
pub use ids::{AccountName, Holder, HolderId, HolderKind, RecordId, RecordKey, RecordKind};
pub use money::{Currency, Money};
pub use record::{Bill, Deposit, EmailStatus, Invoice, Lifecycle, Payment, Record};
pub use status::{BillStatus, InvoiceStatus, PaymentStatus};
