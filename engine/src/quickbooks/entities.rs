//! Entities fetched from QuickBooks, read as `invoiceflow import` reads them: each wrapped as
//! `{"Invoice": {…}}` and given to the same parser, for the company it came from. A refused
//! entity is logged with its id and the field at fault; the others go on.

use chrono::{DateTime, Utc};
use invoiceflow_connectors::quickbooks::api::Entity;
use invoiceflow_rules::parse::{Incoming, Item, ParseContext, parse_value};
use invoiceflow_rules::{AccountName, RecordId, RecordKey, RecordKind};
use serde_json::Value;

use crate::config::Companies;

/// What a set of entities holds.
#[derive(Debug, Default)]
pub struct Read {
    /// The changes to apply.
    pub records: Vec<Incoming>,
    /// Entities refused, each `Invoice 239: DueDate: …`.
    pub refused: Vec<String>,
}

/// Reads `values`, entities of kind `entity` of company `account` fetched at `now` (CDC's
/// deleted objects, `"status":"Deleted"`, become deletions).
pub fn read(
    entity: Entity,
    values: Vec<Value>,
    account: &AccountName,
    companies: &Companies,
    now: DateTime<Utc>,
) -> Read {
    let home = |a: &AccountName| companies.get(a).home_currency;
    let ctx = ParseContext { account, home_currency: &home, received_at: now };
    let mut out = Read::default();
    for value in values {
        let id = value.get("Id").and_then(Value::as_str).unwrap_or("?").to_owned();
        let wrapped = serde_json::json!({ entity.as_str(): value });
        for item in parse_value(wrapped, &ctx) {
            match item {
                Item::Record(r) => out.records.push(r),
                Item::Rejected(r) => out.refused.push(format!("{} {id}: {}: {}", entity.as_str(), r.field, r.reason)),
                Item::Ignored(_) => {}
            }
        }
    }
    out
}

/// The deletion of entity `id` of kind `entity` of `account`, as a webhook's `Delete` says it
/// (the entity itself can no longer be fetched).
pub fn deletion(entity: Entity, id: &str, account: &AccountName, at: DateTime<Utc>) -> Option<Incoming> {
    let kind = match entity {
        Entity::Invoice => RecordKind::Invoice,
        Entity::Bill => RecordKind::Bill,
        Entity::Payment => RecordKind::Payment,
        Entity::Deposit => RecordKind::Deposit,
    };
    Some(Incoming::Delete { key: RecordKey::new(kind, account.clone(), RecordId::new(id).ok()?), at })
}
