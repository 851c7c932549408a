//! How a record becomes a row and back: indexed columns for what SQL filters on, and the whole
//! record as JSON in `body`.

use invoiceflow_rules::{HolderKind, Record, RecordKind};

use super::{StoreError, Stored};

/// A `records` row, ready to bind (SQLite: as one object of a JSON array).
#[derive(Debug, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) kind: &'static str,
    pub(crate) account: String,
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) due_date: Option<String>,
    /// The invoice, bill or payment date (what the reminder workflows count from).
    pub(crate) txn_date: Option<String>,
    pub(crate) updated_at: i64,
    pub(crate) currency: &'static str,
    pub(crate) body: String,
    /// An invoice's own holder fields (what the `records_by_*` indexes find).
    pub(crate) deal_id: Option<String>,
    pub(crate) contact_id: Option<String>,
    pub(crate) company_id: Option<String>,
}

pub(crate) fn encode(stored: &Stored) -> Result<Row, StoreError> {
    let r = &stored.record;
    let key = r.key();
    let (due_date, txn_date, currency) = match r {
        Record::Invoice(i) => (i.due_date, i.txn_date, i.amount.currency),
        Record::Bill(b) => (b.due_date, b.txn_date, b.amount.currency),
        Record::Payment(p) => (None, p.txn_date, p.amount.currency),
        Record::Deposit(d) => (None, d.txn_date, d.amount.currency),
    };
    let holder = |kind| match r {
        Record::Invoice(i) => i.holders.get(kind).map(ToString::to_string),
        _ => None,
    };
    let body =
        serde_json::to_string(r).map_err(|e| StoreError::Corrupt { what: key.to_string(), reason: e.to_string() })?;
    Ok(Row {
        kind: key.kind.as_str(),
        account: key.account.to_string(),
        id: key.id.to_string(),
        status: stored.status.clone(),
        due_date: due_date.map(|d| d.to_string()),
        txn_date: Some(txn_date.to_string()),
        updated_at: r.updated_at().timestamp_micros(),
        currency: currency.code(),
        body,
        deal_id: holder(HolderKind::Deal),
        contact_id: holder(HolderKind::Contact),
        company_id: holder(HolderKind::Company),
    })
}

pub(crate) fn decode(kind: &str, status: String, body: &str) -> Result<Stored, StoreError> {
    // The kind column says which record it is: decoding straight into that type skips serde's
    // buffering of an internally tagged enum (the body's `type` field is then ignored).
    let record = match RecordKind::parse(kind) {
        Some(RecordKind::Invoice) => serde_json::from_str(body).map(Record::Invoice),
        Some(RecordKind::Bill) => serde_json::from_str(body).map(Record::Bill),
        Some(RecordKind::Payment) => serde_json::from_str(body).map(Record::Payment),
        Some(RecordKind::Deposit) => serde_json::from_str(body).map(Record::Deposit),
        None => serde_json::from_str::<Record>(body),
    }
    .map_err(|e| StoreError::Corrupt { what: format!("{kind} record"), reason: e.to_string() })?;
    if RecordKind::parse(kind) != Some(record.key().kind) {
        return Err(StoreError::Corrupt { what: record.key().to_string(), reason: format!("stored as kind {kind}") });
    }
    Ok(Stored { record, status })
}

pub(crate) fn micros_to_time(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
