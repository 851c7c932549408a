//! `GET /metrics` (Prometheus text format) and `GET /healthz`: the work as the store holds it —
//! shared by every node of a PostgreSQL store — and this process's own counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::ApiState;
use super::error::ApiError;
use super::records::Report;
use crate::store::{Gauges, Store};

/// How long `/healthz` waits for the database.
pub const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The channels and statuses of deliveries (migration `0005_outbox`): every pair is reported,
/// at 0 when there is none, so that rates and alerts see a series from the start.
const CHANNELS: [&str; 5] = ["email", "slack", "webhook", "task", "send_invoice"];
const STATUSES: [&str; 5] = ["pending", "delivered", "dead", "expired", "cancelled"];

/// This process's counters since it started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records posted, by outcome: imported, updated, unchanged, stale, rejected.
    records: [AtomicU64; 5],
    /// Requests answered, by route and status code.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

const OUTCOMES: [&str; 5] = ["imported", "updated", "unchanged", "stale", "rejected"];

impl Counters {
    /// Counts what one body did.
    pub(crate) fn received(&self, r: &Report) {
        for (counter, n) in self.records.iter().zip([r.imported, r.updated, r.unchanged, r.stale, r.rejected]) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn answered(&self, route: &'static str, status: StatusCode) {
        let mut requests = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((route, status.as_u16())).or_default() += 1;
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            records: std::array::from_fn(|i| self.records[i].load(Ordering::Relaxed)),
            requests: self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        }
    }
}

/// The counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    records: [u64; 5],
    requests: BTreeMap<(&'static str, u16), u64>,
}

/// Counts every answer by route (one of ours, or `other`) and status.
pub(crate) async fn count_requests<S: Send + Sync>(
    State(state): State<Arc<ApiState<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let route = match request.uri().path() {
        "/v1/records" => "/v1/records",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        _ => "other",
    };
    let response = next.run(request).await;
    state.counters.answered(route, response.status());
    response
}

/// `GET /healthz`: 200 when the database answers within [`HEALTH_TIMEOUT`], 503 otherwise.
pub(crate) async fn healthz<S: Store + Clone + 'static>(State(state): State<Arc<ApiState<S>>>) -> Response {
    match tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ok" }))).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %super::error::Chain(&e), "health check: the database does not answer");
            ApiError::Unavailable.into_response()
        }
        Err(_) => {
            tracing::warn!("health check: the database did not answer within {} s", HEALTH_TIMEOUT.as_secs());
            ApiError::Unavailable.into_response()
        }
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics<S: Store + Clone + 'static>(
    State(state): State<Arc<ApiState<S>>>,
) -> Result<Response, ApiError> {
    let now = state.clock.clock().now.instant();
    let gauges = state.store.gauges(now).await.map_err(|e| ApiError::internal("reading metrics", e))?;
    let mut response = render(&gauges, &state.counters.snapshot(), now).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

/// A label value with `\`, `"` and line breaks escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition: the store's gauges at `now`, then this process's counters.
pub(crate) fn render(gauges: &Gauges, counters: &Snapshot, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    family(&mut out, "invoiceflow_deliveries", "gauge", "Deliveries in the outbox, by channel and status.");
    let mut deliveries: BTreeMap<(&str, &str), u64> =
        CHANNELS.iter().flat_map(|c| STATUSES.iter().map(move |s| ((*c, *s), 0))).collect();
    for (channel, status, n) in &gauges.deliveries {
        deliveries.insert((channel.as_str(), status.as_str()), *n);
    }
    for ((channel, status), n) in deliveries {
        let _ =
            writeln!(out, "invoiceflow_deliveries{{channel=\"{}\",status=\"{}\"}} {n}", label(channel), label(status));
    }
    family(&mut out, "invoiceflow_queue_depth", "gauge", "Pending deliveries: due, or waiting for a retry.");
    let _ = writeln!(out, "invoiceflow_queue_depth {}", gauges.pending);
    family(
        &mut out,
        "invoiceflow_due_lag_seconds",
        "gauge",
        "How long the oldest due delivery that no node holds has waited (0 when none waits).",
    );
    let lag = gauges.oldest_due.map_or(0.0, |due| (now - due).num_milliseconds().max(0) as f64 / 1000.0);
    let _ = writeln!(out, "invoiceflow_due_lag_seconds {lag}");
    family(
        &mut out,
        "invoiceflow_evaluation_errors_total",
        "counter",
        "Failed rule evaluations (see `invoiceflow actions`).",
    );
    let _ = writeln!(out, "invoiceflow_evaluation_errors_total {}", gauges.evaluation_failures);
    family(
        &mut out,
        "invoiceflow_changes_unevaluated",
        "gauge",
        "Recorded changes the change-triggered rules have not been offered yet.",
    );
    let _ = writeln!(out, "invoiceflow_changes_unevaluated {}", gauges.unevaluated_changes);
    family(
        &mut out,
        "invoiceflow_records_received_total",
        "counter",
        "Records posted to /v1/records since this process started, by outcome.",
    );
    for (outcome, n) in OUTCOMES.iter().zip(counters.records) {
        let _ = writeln!(out, "invoiceflow_records_received_total{{outcome=\"{outcome}\"}} {n}");
    }
    family(
        &mut out,
        "invoiceflow_http_requests_total",
        "counter",
        "HTTP requests answered since this process started, by route and status code.",
    );
    for ((route, code), n) in &counters.requests {
        let _ = writeln!(out, "invoiceflow_http_requests_total{{route=\"{}\",code=\"{code}\"}} {n}", label(route));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn every_family_has_help_and_type_and_known_pairs_start_at_zero() {
        let gauges = Gauges {
            deliveries: vec![("slack".into(), "delivered".into(), 3), ("pigeon".into(), "lost\"".into(), 1)],
            pending: 2,
            oldest_due: Some(at("2026-11-25T12:00:00Z")),
            evaluation_failures: 4,
            unevaluated_changes: 5,
        };
        let counters = Counters::default();
        counters.received(&Report { imported: 1, rejected: 2, ..Report::default() });
        counters.answered("/v1/records", StatusCode::UNPROCESSABLE_ENTITY);
        let text = render(&gauges, &counters.snapshot(), at("2026-11-25T12:00:02.5Z"));
        for line in [
            "invoiceflow_deliveries{channel=\"slack\",status=\"delivered\"} 3",
            "invoiceflow_deliveries{channel=\"email\",status=\"pending\"} 0",
            "invoiceflow_deliveries{channel=\"pigeon\",status=\"lost\\\"\"} 1",
            "invoiceflow_queue_depth 2",
            "invoiceflow_due_lag_seconds 2.5",
            "invoiceflow_evaluation_errors_total 4",
            "invoiceflow_changes_unevaluated 5",
            "invoiceflow_records_received_total{outcome=\"imported\"} 1",
            "invoiceflow_records_received_total{outcome=\"rejected\"} 2",
            "invoiceflow_http_requests_total{route=\"/v1/records\",code=\"422\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        for name in text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split(['{', ' ']).next().unwrap()) {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} has no TYPE");
            assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP");
        }
    }

    #[test]
    fn nothing_due_is_no_lag() {
        let text = render(&Gauges::default(), &Snapshot::default(), at("2026-11-25T12:00:00Z"));
        assert!(text.contains("\ninvoiceflow_due_lag_seconds 0\n"), "{text}");
    }
}
