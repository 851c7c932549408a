//! The record values an intent carries as provenance: what the rule saw when it fired.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::types::Subject;

/// The record values a rule saw: status, amounts, due date, recipient… Holding the record
/// itself (shared, not copied) until asked, so that firing stays cheap; it serializes as a JSON
/// object.
#[derive(Clone)]
pub struct Seen(Inner);

#[derive(Clone)]
enum Inner {
    Record(Subject, NaiveDate),
    Stored(Map<String, Value>),
}

impl Seen {
    /// What `subject` looked like on `today`.
    pub fn of(subject: &Subject, today: NaiveDate) -> Self {
        Self(Inner::Record(subject.clone(), today))
    }

    /// The values, as a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        match &self.0 {
            Inner::Record(subject, today) => values(subject, *today),
            Inner::Stored(map) => map.clone(),
        }
    }

    /// One value (`"status"`, `"balance"`, …).
    pub fn get(&self, key: &str) -> Option<Value> {
        self.to_map().remove(key)
    }
}

/// Nothing seen: an intent about a company rather than a record.
impl Default for Seen {
    fn default() -> Self {
        Self(Inner::Stored(Map::new()))
    }
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_map().fmt(f)
    }
}

impl PartialEq for Seen {
    fn eq(&self, other: &Self) -> bool {
        self.to_map() == other.to_map()
    }
}

impl Serialize for Seen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(|m| Self(Inner::Stored(m)))
    }
}

/// The watched values of `subject` on `today`.
fn values(subject: &Subject, today: NaiveDate) -> Map<String, Value> {
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
