//! The HTTP API of `invoiceflow run`: records in (`POST /v1/records`, bearer token), QuickBooks'
//! webhooks (`POST /v1/quickbooks/webhook`, `intuit-signature`), health (`GET /healthz`) and
//! Prometheus metrics (`GET /metrics`).
//!
//! Records take the path `invoiceflow import` takes (`ingest::import`, bytes in, a report out)
//! and, when they change anything, wake the engine so that change-triggered rules act on them at
//! once rather than at the next planning tick. Errors leave through one type, [`ApiError`]:
//! what a client may read, or a generic 500 whose cause is only logged.

mod auth;
mod error;
mod metrics;
mod quickbooks;
mod records;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use tokio::sync::{Notify, Semaphore};

pub use error::ApiError;
pub use metrics::HEALTH_TIMEOUT;
pub use quickbooks::{WATCHED, WebhookOptions, WebhookReport};
pub use records::{MAX_LISTED, Rejected, Report};

use crate::clock::RunningClock;
use crate::config::{Companies, Secret};
use crate::store::Store;
use crate::store::quickbooks::QuickBooksStore;

/// Request bodies of `POST /v1/records` read and imported at the same time, at most: memory
/// stays bounded by this many times `[server] max_body`; further requests wait their turn.
pub const IMPORT_SLOTS: usize = 16;

/// What the API is built with.
#[derive(Debug)]
pub struct ApiOptions {
    /// The bearer token `POST /v1/records` requires; `None` refuses every request (503).
    pub token: Option<Secret>,
    /// The largest request body, in bytes (larger: 413).
    pub max_body: u64,
    /// The companies' zones and currencies, and the default company of records.
    pub companies: Companies,
    /// The engine's clock (ingest times, metrics).
    pub clock: RunningClock,
    /// Notified when posted records changed something: the engine's loop waits on it.
    pub wake: Arc<Notify>,
    /// QuickBooks webhooks: none without a verifier token (the endpoint then answers 503).
    pub webhooks: Option<WebhookOptions>,
}

/// The state every handler shares.
pub(crate) struct ApiState<S> {
    store: S,
    token: Option<Secret>,
    max_body: u64,
    companies: Companies,
    clock: RunningClock,
    wake: Arc<Notify>,
    import_slots: Arc<Semaphore>,
    counters: metrics::Counters,
    writer: crate::ingest::group::GroupWriter,
    webhooks: Option<quickbooks::Webhooks>,
}

/// The routes over `store`.
pub fn router<S: Store + QuickBooksStore + Clone + 'static>(store: S, options: ApiOptions) -> Router {
    let limit = usize::try_from(options.max_body).unwrap_or(usize::MAX);
    let writer = crate::ingest::group::GroupWriter::spawn(store.clone(), options.companies.clone());
    let webhooks = options.webhooks.map(|hooks| {
        let clock = options.clock.clone();
        quickbooks::Webhooks::new(store.clone(), hooks, move || clock.clock().now.instant())
    });
    let state = Arc::new(ApiState {
        writer,
        webhooks,
        store,
        token: options.token,
        max_body: options.max_body,
        companies: options.companies,
        clock: options.clock,
        wake: options.wake,
        import_slots: Arc::new(Semaphore::new(IMPORT_SLOTS)),
        counters: metrics::Counters::default(),
    });
    Router::new()
        .route("/v1/records", post(records::post::<S>).layer(DefaultBodyLimit::max(limit)))
        .route("/v1/quickbooks/webhook", post(quickbooks::post::<S>).layer(DefaultBodyLimit::max(limit)))
        .route("/healthz", get(metrics::healthz::<S>))
        .route("/metrics", get(metrics::metrics::<S>))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), metrics::count_requests::<S>))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the requests in flight
/// finish.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Small answers go out at once rather than waiting on the peer's acknowledgement (Nagle).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
