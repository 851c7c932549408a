//! Turning JSON documents into records: our canonical format and QuickBooks API JSON.
//!
//! One JSON value (a line of a JSON-lines file, or a whole document) gives any number of
//! [`Item`]s: records to apply, rejections naming the field and the reason, and entities of types
//! invoiceflow does not watch. A bad record never spoils its neighbours.

mod canonical;
mod fields;
mod quickbooks;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::ids::{AccountName, IdError, RecordId, RecordKey, RecordKind};
use crate::money::Currency;
use crate::record::Record;

/// What the parser needs to know about where records come from.
pub struct ParseContext<'a> {
    /// The company records belong to unless they name one (`--account`).
    pub account: &'a AccountName,
    /// The home currency of a company: the currency of records that do not name one (QuickBooks
    /// omits `CurrencyRef` when multi-currency is off).
    pub home_currency: &'a dyn Fn(&AccountName) -> Currency,
    /// When the records were received: the `updated_at` of records that carry none.
    pub received_at: DateTime<Utc>,
}

/// A change to apply to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "records are moved once into a batch; boxing would change the API the engine matches on"
)]
pub enum Incoming {
    /// A new or updated record.
    Upsert(Record),
    /// A deletion (CDC `"status":"Deleted"`, canonical `"deleted": true`).
    Delete {
        /// The deleted record.
        key: RecordKey,
        /// When it was deleted.
        at: DateTime<Utc>,
    },
}

impl Incoming {
    /// The record this change is about.
    pub fn key(&self) -> &RecordKey {
        match self {
            Self::Upsert(r) => r.key(),
            Self::Delete { key, .. } => key,
        }
    }

    /// The source time that orders it against the stored version.
    pub fn source_time(&self) -> DateTime<Utc> {
        match self {
            Self::Upsert(r) => r.updated_at(),
            Self::Delete { at, .. } => *at,
        }
    }
}

/// A record that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which entity inside the document, when the document holds several (`QueryResponse.Invoice[2]`).
    pub entity: Option<String>,
    /// The field at fault (`amount`, `MetaData.LastUpdatedTime`), or what the value is as a whole.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(entity) = &self.entity {
            write!(f, "{entity}: ")?;
        }
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

/// One outcome of parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "records are moved once into a batch; boxing would change the API the engine matches on"
)]
pub enum Item {
    /// A change to apply.
    Record(Incoming),
    /// A refused record.
    Rejected(Rejection),
    /// An entity of a type invoiceflow does not watch (`Customer`), named.
    Ignored(String),
}

const WATCHED_ENTITIES: [(&str, RecordKind); 4] = [
    ("Invoice", RecordKind::Invoice),
    ("Bill", RecordKind::Bill),
    ("Payment", RecordKind::Payment),
    ("Deposit", RecordKind::Deposit),
];

fn reject(entity: Option<String>, field: &str, reason: impl Into<String>) -> Item {
    Item::Rejected(Rejection { entity, field: field.to_owned(), reason: reason.into() })
}

/// A record's id as written (a string or a whole number), to name it in a rejection.
fn id_hint(id: Option<&Value>) -> Option<String> {
    match id? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn record_key(
    kind: RecordKind,
    account: &AccountName,
    id: &str,
    field: &str,
) -> Result<RecordKey, fields::FieldError> {
    RecordId::new(id)
        .map(|id| RecordKey::new(kind, account.clone(), id))
        .map_err(|e: IdError| fields::FieldError { field: field.to_owned(), reason: e.to_string() })
}

/// Parses one JSON value: a canonical record, a QuickBooks entity (bare or `{"Invoice": …}`), a
/// `QueryResponse` or `CDCResponse` document, a QuickBooks `Fault`, or an array of any of these.
pub fn parse_value(value: Value, ctx: &ParseContext<'_>) -> Vec<Item> {
    let mut out = Vec::new();
    parse_into(value, ctx, None, &mut out);
    out
}

fn parse_into(value: Value, ctx: &ParseContext<'_>, at: Option<String>, out: &mut Vec<Item>) {
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let here = Some(match &at {
                    Some(p) => format!("{p}[{i}]"),
                    None => format!("[{i}]"),
                });
                parse_into(item, ctx, here, out);
            }
            return;
        }
        other => {
            let found = match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                _ => "a string",
            };
            out.push(reject(at, "(record)", format!("expected a JSON object, found {found}")));
            return;
        }
    };
    if let Some(fault) = obj.get("Fault") {
        out.push(reject(at, "Fault", quickbooks::describe_fault(fault)));
    } else if let Some(query) = obj.get("QueryResponse") {
        parse_query_response(query, ctx, at.unwrap_or_else(|| "QueryResponse".to_owned()), out);
    } else if let Some(cdc) = obj.get("CDCResponse") {
        let Value::Array(responses) = cdc else {
            out.push(reject(at, "CDCResponse", "must be an array"));
            return;
        };
        for (i, response) in responses.iter().enumerate() {
            match response.get("QueryResponse") {
                Some(query) => parse_query_response(query, ctx, format!("CDCResponse[{i}].QueryResponse"), out),
                None => out.push(reject(Some(format!("CDCResponse[{i}]")), "QueryResponse", "missing")),
            }
        }
    } else if obj.contains_key("id") {
        out.push(canonical::parse(&obj, ctx, at));
    } else if let Some((name, entity)) = wrapped_entity(&obj) {
        let here = Some(at.map_or_else(|| name.clone(), |p| format!("{p}.{name}")));
        match WATCHED_ENTITIES.iter().find(|(n, _)| *n == name) {
            Some((_, kind)) => out.push(quickbooks::parse(*kind, entity, ctx, here)),
            None => out.push(Item::Ignored(name)),
        }
    } else if obj.contains_key("Id") {
        match quickbooks::guess_kind(&obj) {
            Some(kind) => out.push(quickbooks::parse(kind, &obj, ctx, at)),
            None => out.push(reject(
                at,
                "(record)",
                "cannot tell which QuickBooks entity this is; wrap it as {\"Invoice\": …}, {\"Bill\": …}, {\"Payment\": …} or {\"Deposit\": …}",
            )),
        }
    } else {
        out.push(reject(
            at,
            "id",
            "missing: expected a canonical record (with `id`), a QuickBooks entity (with `Id`), or a QueryResponse/CDCResponse document",
        ));
    }
}

/// `{"Invoice": {…}, "time": "…"}`: one capitalised key holding an object, besides `time`.
fn wrapped_entity(obj: &Map<String, Value>) -> Option<(String, &Map<String, Value>)> {
    let mut entries = obj.iter().filter(|(k, _)| k.as_str() != "time");
    let (name, value) = entries.next()?;
    if entries.next().is_some() || !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    value.as_object().map(|o| (name.clone(), o))
}

fn parse_query_response(query: &Value, ctx: &ParseContext<'_>, at: String, out: &mut Vec<Item>) {
    let responses: Vec<&Map<String, Value>> = match query {
        Value::Object(o) => vec![o],
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        _ => {
            out.push(reject(Some(at), "QueryResponse", "must be an object or an array"));
            return;
        }
    };
    for response in responses {
        for (name, value) in response {
            let Value::Array(entities) = value else {
                continue;
            };
            let kind = WATCHED_ENTITIES.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
            for (i, entity) in entities.iter().enumerate() {
                let here = Some(format!("{at}.{name}[{i}]"));
                match (kind, entity) {
                    (Some(kind), Value::Object(e)) => out.push(quickbooks::parse(kind, e, ctx, here)),
                    (Some(_), _) => out.push(reject(here, name, "each entity must be an object")),
                    (None, _) => out.push(Item::Ignored(name.clone())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
