//! Status derivation: the seed's five invoice phases (plus `voided`), and the bill and payment
//! equivalents, as pure functions of a record and "today" in the company's time zone.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::record::{Bill, Invoice, Lifecycle, Payment};

/// The phase of an invoice (DOMAIN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Not yet sent to the customer.
    AwaitingSend,
    /// Sent (`EmailStatus = EmailSent` or `DeliveryInfo` present).
    Sent,
    /// Some but not all of it paid, not yet overdue.
    PartiallyPaid,
    /// Balance 0.
    Paid,
    /// Balance left after the due date.
    Overdue,
    /// Voided or deleted in QuickBooks: nothing fires for it.
    Voided,
}

/// The phase of a bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    /// Balance left, not yet past due.
    Open,
    /// Balance left after the due date.
    Overdue,
    /// Balance 0.
    Paid,
    /// Voided or deleted in QuickBooks.
    Deleted,
}

/// Where a payment's money is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// In Undeposited Funds, waiting for a bank deposit.
    Undeposited,
    /// In a bank account (deposited directly or by a bank deposit).
    Deposited,
    /// Deleted in QuickBooks.
    Deleted,
}

macro_rules! status_names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),*];

            /// The snake-case name used in storage, JSON and the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),* }
            }

            /// Parses the snake-case name.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|s| s.as_str() == text)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_names!(InvoiceStatus {
    AwaitingSend => "awaiting_send",
    Sent => "sent",
    PartiallyPaid => "partially_paid",
    Paid => "paid",
    Overdue => "overdue",
    Voided => "voided",
});
status_names!(BillStatus { Open => "open", Overdue => "overdue", Paid => "paid", Deleted => "deleted" });
status_names!(PaymentStatus { Undeposited => "undeposited", Deposited => "deposited", Deleted => "deleted" });

/// Derives an invoice's status on `today` (the company's local date). First match wins:
///
/// 0. voided or deleted → `voided`
/// 1. balance ≤ 0 → `paid` (an overpaid invoice is paid too)
/// 2. balance > 0 and due date before today → `overdue`
/// 3. 0 < balance < total → `partially_paid`
/// 4. `EmailStatus = EmailSent` or `DeliveryInfo` present → `sent`
/// 5. otherwise → `awaiting_send`
pub fn invoice_status(invoice: &Invoice, today: NaiveDate) -> InvoiceStatus {
    let balance = invoice.balance.amount;
    if invoice.lifecycle != Lifecycle::Active {
        InvoiceStatus::Voided
    } else if balance.is_sign_negative() || balance.is_zero() {
        InvoiceStatus::Paid
    } else if invoice.due_date.is_some_and(|due| due < today) {
        InvoiceStatus::Overdue
    } else if balance < invoice.amount.amount {
        InvoiceStatus::PartiallyPaid
    } else if invoice.email_status == crate::record::EmailStatus::EmailSent || invoice.delivery.is_some() {
        InvoiceStatus::Sent
    } else {
        InvoiceStatus::AwaitingSend
    }
}

/// Derives a bill's status on `today`: deleted, paid (balance ≤ 0), overdue, else open.
pub fn bill_status(bill: &Bill, today: NaiveDate) -> BillStatus {
    let balance = bill.balance.amount;
    if bill.lifecycle != Lifecycle::Active {
        BillStatus::Deleted
    } else if balance.is_sign_negative() || balance.is_zero() {
        BillStatus::Paid
    } else if bill.due_date.is_some_and(|due| due < today) {
        BillStatus::Overdue
    } else {
        BillStatus::Open
    }
}

/// Derives a payment's status; `linked_by_deposit` says whether a bank deposit includes it.
pub fn payment_status(payment: &Payment, linked_by_deposit: bool) -> PaymentStatus {
    if payment.lifecycle != Lifecycle::Active {
        PaymentStatus::Deleted
    } else if linked_by_deposit || !payment.lands_in_undeposited_funds() {
        PaymentStatus::Deposited
    } else {
        PaymentStatus::Undeposited
    }
}
