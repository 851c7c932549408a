//! The record values an intent carries as provenance: what the rule saw when it fired.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::types::Subject;

/// The watched values of `subject` on `today`.
pub fn values(subject: &Subject, today: NaiveDate) -> Map<String, Value> {
    let value = match subject {
        Subject::Invoice(r, status) => json!({
            "status": status.as_str(),
            "number": r.number,
            "recipient": r.recipient(),
            "amount": r.amount.amount_string(),
            "balance": r.balance.amount_string(),
            "currency": r.amount.currency.code(),
            "due_date": r.due_date,
            "days_overdue": r.due_date.map(|d| (today - d).num_days()),
            "deal_id": r.holders.deal,
        }),
        Subject::Bill(r, status) => json!({
            "status": status.as_str(),
            "number": r.number,
            "vendor": r.vendor.name,
            "amount": r.amount.amount_string(),
            "balance": r.balance.amount_string(),
            "currency": r.amount.currency.code(),
            "due_date": r.due_date,
        }),
        Subject::Payment(r, status) => json!({
            "status": status.as_str(),
            "customer": r.customer.name,
            "amount": r.amount.amount_string(),
            "currency": r.amount.currency.code(),
        }),
        Subject::Deposit(r) => json!({
            "amount": r.amount.amount_string(),
            "currency": r.amount.currency.code(),
            "payments": r.payments,
        }),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
