//! `POST /v1/quickbooks/webhook`: QuickBooks' change notifications. The `intuit-signature` header
//! is checked on the raw body, in constant time, before the body is read; a notification is
//! answered once it is queued durably (the inbox: `store::quickbooks`), and the entities it names
//! are fetched afterwards, by the QuickBooks watcher, which this wakes. Answering fast matters:
//! QuickBooks gives a webhook 3 seconds.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use invoiceflow_connectors::quickbooks::webhook::{self, Notification, SIGNATURE_HEADER};
use invoiceflow_connectors::secret::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::ApiState;
use super::error::ApiError;
use crate::group::Group;
use crate::store::quickbooks::{InboxItem, QuickBooksStore};

/// The QuickBooks entities invoiceflow watches; notifications about others are ignored.
pub const WATCHED: [&str; 4] = ["Invoice", "Bill", "Payment", "Deposit"];

/// Webhook bodies queued together at most.
const GROUP: usize = 256;

/// How the webhook endpoint checks and queues.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Each connected company's realm id with its app's verifier token.
    pub verifiers: Vec<(String, SecretString)>,
    /// Notified when notifications were queued: the QuickBooks watcher waits on it.
    pub wake: Arc<Notify>,
}

/// The endpoint's state: its options and the inbox's group writer.
#[derive(Debug)]
pub(crate) struct Webhooks {
    options: WebhookOptions,
    inbox: Group<Vec<InboxItem>, ()>,
}

impl Webhooks {
    /// Starts the inbox writer over `store`, stamping each group with `now()`.
    pub(crate) fn new<S: QuickBooksStore + Clone + 'static>(
        store: S,
        options: WebhookOptions,
        now: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + 'static,
    ) -> Self {
        let inbox = Group::spawn(GROUP, move |bodies: Vec<Vec<InboxItem>>| {
            let store = store.clone();
            let at = now();
            async move {
                let count = bodies.len();
                let all: Vec<InboxItem> = bodies.into_iter().flatten().collect();
                let added = store.enqueue(&all, at).await.map_err(|e| e.to_string())?;
                tracing::debug!(bodies = count, notifications = all.len(), added, "webhook notifications queued");
                Ok(vec![(); count])
            }
        });
        Self { options, inbox }
    }
}

/// The answer: what the body held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReport {
    /// Notifications queued (a duplicate of one already queued is kept once).
    pub queued: u64,
    /// Notifications about entities not watched, or companies this signature does not speak for.
    pub ignored: u64,
}

/// `POST /v1/quickbooks/webhook`: 401 without a valid `intuit-signature` (nothing is read or
/// stored), 400 for a body in neither of QuickBooks' shapes, else 200 once queued.
pub(crate) async fn post<S: Send + Sync>(
    State(state): State<Arc<ApiState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReport>, ApiError> {
    let Some(hooks) = state.webhooks.as_ref() else { return Err(ApiError::WebhooksDisabled) };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).ok_or(ApiError::BadSignature)?;
    // Every company's verifier is tried (the same app usually serves them all); the body speaks
    // only for the companies whose verifier signed it.
    let signed: HashSet<&str> = hooks
        .options
        .verifiers
        .iter()
        .filter(|(_, verifier)| webhook::verify(verifier, &body, signature))
        .map(|(realm, _)| realm.as_str())
        .collect();
    if signed.is_empty() {
        return Err(ApiError::BadSignature);
    }
    let notes = webhook::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let total = notes.len() as u64;
    let items: Vec<InboxItem> = notes.into_iter().filter_map(|n| watched(n, &signed)).collect();
    let ignored = total - items.len() as u64;
    if items.is_empty() {
        return Ok(Json(WebhookReport { queued: 0, ignored }));
    }
    let queued = items.len() as u64;
    hooks.inbox.run(items).await.map_err(|e| ApiError::internal("queueing webhook notifications", Failed(e)))?;
    hooks.options.wake.notify_one();
    Ok(Json(WebhookReport { queued, ignored }))
}

/// The inbox item for `n`, when it names a watched entity of a company `signed` speaks for.
fn watched(n: Notification, signed: &HashSet<&str>) -> Option<InboxItem> {
    let entity = WATCHED.iter().find(|w| w.eq_ignore_ascii_case(&n.entity))?;
    if !signed.contains(n.realm_id.as_str()) {
        tracing::warn!(realm = %n.realm_id, "a webhook notification for a company its signature does not speak for: ignored");
        return None;
    }
    Some(InboxItem {
        realm_id: n.realm_id,
        entity: (*entity).to_owned(),
        entity_id: n.id,
        operation: n.operation.as_str().to_owned(),
        last_updated: n.last_updated,
    })
}

/// A failed group, as an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);
