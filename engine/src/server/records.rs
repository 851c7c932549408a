//! `POST /v1/records`: records in, through the same parser and store path as `invoiceflow import`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{StatusCode, header};
use invoiceflow_rules::AccountName;
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedSemaphorePermit;

use super::ApiState;
use super::auth::Authorized;
use super::error::ApiError;
use crate::ingest::{self, ImportOptions, Located, Source};
use crate::store::Store;

/// Rejected records listed in one answer at most (all are counted).
pub const MAX_LISTED: usize = 100;

/// The query string: `?account=NAME`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordsQuery {
    /// The company records belong to when they name none (QuickBooks JSON never does), as
    /// `import --account`. Default: the only company configured, else `default`.
    account: Option<String>,
}

/// What a body did: the answer of `POST /v1/records`, 200 when nothing was rejected, else 422.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Valid records of the body, all applied: each imported, updated, unchanged or stale.
    pub applied: u64,
    /// New records.
    pub imported: u64,
    /// Stored records that changed.
    pub updated: u64,
    /// Identical to what is stored.
    pub unchanged: u64,
    /// Older than what is stored (by `updated_at` / `MetaData.LastUpdatedTime`): ignored.
    pub stale: u64,
    /// Records refused.
    pub rejected: u64,
    /// The refused records, each with its line and field (the first [`MAX_LISTED`]).
    pub rejections: Vec<Rejected>,
    /// Entities of types not watched, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ignored: BTreeMap<String, u64>,
    /// What the client should know (a company that is not configured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One refused record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The line of the body its JSON value starts on (1-based).
    pub line: u64,
    /// The field at fault (`amount`, `MetaData.LastUpdatedTime`), or `(record)` for the value as a
    /// whole.
    pub field: String,
    /// Which entity of a document holding several (`QueryResponse.Invoice[2]`), or which record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Why.
    pub reason: String,
}

impl From<&Located> for Rejected {
    fn from(r: &Located) -> Self {
        Self {
            line: r.line,
            field: r.rejection.field.clone(),
            entity: r.rejection.entity.clone(),
            reason: r.rejection.reason.clone(),
        }
    }
}

/// A body of JSON, read once an import slot is free (so that at most that many bodies are held
/// in memory) and within `[server] max_body`.
pub(crate) struct RecordsBody {
    bytes: Bytes,
    _slot: OwnedSemaphorePermit,
}

/// Content types taken for JSON lines or JSON documents; none at all is taken too.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
    ) || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<Arc<ApiState<S>>> for RecordsBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<ApiState<S>>) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let text = content_type.to_str().unwrap_or("(not text)");
            if !is_json(text) {
                return Err(ApiError::UnsupportedMediaType(text.to_owned()));
            }
        }
        let slot = Arc::clone(&state.import_slots)
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal("waiting for an import slot", e))?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit: state.max_body }
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {}", rejection.body_text()))
            }
        })?;
        Ok(Self { bytes, _slot: slot })
    }
}

/// `POST /v1/records[?account=NAME]`: JSON lines or JSON documents — canonical records or
/// QuickBooks API JSON, exactly what `invoiceflow import` reads — applied to the store.
///
/// **A body with malformed records is answered 422, and its valid records are applied**, as
/// `import` applies the valid lines of a file and reports the others: the answer lists each
/// rejected record with its line and field, and counts what was applied. Posting the corrected
/// body again is safe: records already stored count as `unchanged`.
///
/// Records that change anything wake the engine, which offers the changes to the
/// change-triggered rules and delivers what they decide at once.
pub(crate) async fn post<S: Store + Clone + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    _: Authorized,
    query: Result<Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
    body: RecordsBody,
) -> Result<(StatusCode, Json<Report>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut warnings = Vec::new();
    let account = match &query.account {
        None => state.companies.default_account(),
        Some(name) => {
            let account = AccountName::new(name.as_str())
                .map_err(|e| ApiError::BadRequest(format!("company name {name:?} {e}")))?;
            if !state.companies.is_empty() && !state.companies.is_configured(&account) {
                warnings.push(format!(
                    "company {account} is not configured under [quickbooks.{account}]: it uses the [company] defaults"
                ));
            }
            account
        }
    };
    let opts = ImportOptions { account, companies: state.companies.clone(), progress: None };
    let clock = state.clock.clock();
    let source = Source::Memory { name: "body".into(), bytes: Vec::from(body.bytes) };
    let mut rejections = Vec::new();
    let mut on_reject = |r: &Located| {
        if rejections.len() < MAX_LISTED {
            rejections.push(Rejected::from(r));
        }
    };
    let summary =
        ingest::import(ingest::WriteTo::<S>::Group(&state.writer), source, &opts, &clock.moment(), &mut on_reject)
            .await
            .map_err(|e| ApiError::internal("applying posted records", e))?;
    if summary.outcome.events > 0 {
        // One stored permit: wakes that arrive while the engine is busy are served by its next
        // pass, together.
        state.wake.notify_one();
    }
    let o = summary.outcome;
    let report = Report {
        applied: o.imported + o.updated + o.unchanged + o.stale,
        imported: o.imported,
        updated: o.updated,
        unchanged: o.unchanged,
        stale: o.stale,
        rejected: summary.rejected,
        rejections,
        ignored: summary.ignored,
        warnings,
    };
    state.counters.received(&report);
    tracing::debug!(applied = report.applied, rejected = report.rejected, events = o.events, "records posted");
    let status = if report.rejected > 0 { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_taken_and_others_refused() {
        for taken in
            ["application/json", "application/json; charset=utf-8", "Application/X-NDJSON", "application/vnd.qbo+json"]
        {
            assert!(is_json(taken), "{taken}");
        }
        for refused in ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"] {
            assert!(!is_json(refused), "{refused}");
        }
    }
}
