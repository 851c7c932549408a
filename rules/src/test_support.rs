//! Builders shared by the unit tests: terse money, dates and a default invoice to tweak.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::ids::{AccountName, RecordId, RecordKey, RecordKind};
use crate::money::{Currency, Money, parse_decimal};
use crate::record::{EmailStatus, HolderFields, Invoice, Lifecycle, Party};

pub(crate) fn currency(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

pub(crate) fn dec(text: &str) -> Decimal {
    parse_decimal(text).unwrap()
}

pub(crate) fn money(amount: &str, code: &str) -> Money {
    Money::new(dec(amount), currency(code))
}

pub(crate) fn usd(amount: &str) -> Money {
    money(amount, "USD")
}

pub(crate) fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// An RFC 3339 instant (`2026-11-25T12:30:00Z`).
pub(crate) fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

pub(crate) fn key(kind: RecordKind, id: &str) -> RecordKey {
    RecordKey::new(kind, AccountName::default_account(), RecordId::new(id).unwrap())
}

/// An active USD invoice of 100.00, nothing paid, never sent, dated 2026-11-01, due 2026-12-01,
/// updated 2026-11-01T09:00:00Z, for the customer "Acme" with no bill email.
pub(crate) fn invoice(id: &str) -> Invoice {
    Invoice {
        key: key(RecordKind::Invoice, id),
        number: Some(format!("INV-{id}")),
        customer: Party { id: Some("1".to_owned()), name: "Acme".to_owned() },
        bill_email: None,
        cc: Vec::new(),
        bcc: Vec::new(),
        amount: usd("100.00"),
        balance: usd("100.00"),
        txn_date: date("2026-11-01"),
        due_date: Some(date("2026-12-01")),
        email_status: EmailStatus::NotSet,
        delivery: None,
        lifecycle: Lifecycle::Active,
        created_at: None,
        updated_at: instant("2026-11-01T09:00:00Z"),
        holders: HolderFields::default(),
    }
}
