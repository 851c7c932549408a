//! Turning a record into the [`Subject`] a rule sees: its status derived for "today".

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::types::Subject;
use crate::ids::AccountName;
use crate::money::Currency;
use crate::parse::{Incoming, Item, ParseContext, parse_value};
use crate::record::Record;
use crate::status::{bill_status, invoice_status, payment_status};

/// `record` as a rule sees it on `today`; `deposited`: a bank deposit holds the payment.
pub fn subject_of(record: Record, today: NaiveDate, deposited: bool) -> Subject {
    match record {
        Record::Invoice(r) => {
            let status = invoice_status(&r, today);
            Subject::Invoice(Arc::new(r), status)
        }
        Record::Bill(r) => {
            let status = bill_status(&r, today);
            Subject::Bill(Arc::new(r), status)
        }
        Record::Payment(r) => {
            let status = payment_status(&r, deposited);
            Subject::Payment(Arc::new(r), status)
        }
        Record::Deposit(r) => Subject::Deposit(Arc::new(r)),
    }
}

/// A canonical JSON record (the import format) as a rule sees it on `today`, in company
/// `default` with USD as home currency unless the record says otherwise.
///
/// # Errors
/// Why the record was refused, naming the field.
pub fn from_canonical(value: serde_json::Value, today: NaiveDate) -> Result<Subject, String> {
    let account = AccountName::default_account();
    let home = |_: &AccountName| Currency::USD;
    let received_at: DateTime<Utc> = today.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default();
    let ctx = ParseContext { account: &account, home_currency: &home, received_at };
    match parse_value(value, &ctx).into_iter().next() {
        Some(Item::Record(Incoming::Upsert(record))) => Ok(subject_of(record, today, false)),
        Some(Item::Record(Incoming::Delete { .. })) => Err("a deletion is not a record".to_owned()),
        Some(Item::Rejected(r)) => Err(r.to_string()),
        Some(Item::Ignored(name)) => Err(format!("{name} records are not watched")),
        None => Err("no record".to_owned()),
    }
}
