//! The HTTP side: one handler for every request, which routes it, counts it against the
//! company's limits, answers an armed failure, checks `minorversion` and the bearer token, serves
//! it from the state, and records it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as Shared;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use serde_json::Value;

use super::faults::{Failure, authentication_failed, invalid_request, system_fault, throttled};
use super::routes::{Endpoint, Recorded, Route};
use super::state::{MAX_CONCURRENT, MAX_PER_MINUTE, MAX_PER_SECOND, State};
use super::{api, form, oauth};

/// The oldest `minorversion` QuickBooks still honours (DOMAIN.md §5).
const MIN_MINOR_VERSION: u32 = 75;

/// A fake QuickBooks Online (API and OAuth) on `127.0.0.1`, serving until the test's runtime
/// ends. Clones share one state.
#[derive(Clone)]
pub struct FakeQuickBooks {
    pub(crate) state: Arc<Mutex<State>>,
    addr: SocketAddr,
}

/// An answer, before it becomes an HTTP response.
pub(crate) struct Reply {
    status: u16,
    body: String,
    location: Option<String>,
    retry_after: Option<u32>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: body.to_string(), location: None, retry_after: None }
    }

    pub fn redirect(location: String) -> Reply {
        Reply { status: 302, body: String::new(), location: Some(location), retry_after: None }
    }

    fn text(status: u16, body: String) -> Reply {
        Reply { status, body, location: None, retry_after: None }
    }

    fn into_response(self) -> Response {
        let mut response = Response::builder().status(self.status);
        if let Some(location) = self.location {
            response = response.header(header::LOCATION, location);
        } else if self.body.starts_with(['{', '[']) {
            response = response.header(header::CONTENT_TYPE, "application/json;charset=UTF-8");
        }
        if let Some(seconds) = self.retry_after {
            response = response.header(header::RETRY_AFTER, seconds.to_string());
        }
        response.body(Body::from(self.body)).expect("a status below 600 and ASCII headers make a response")
    }
}

impl FakeQuickBooks {
    /// Binds `127.0.0.1:0` and serves in the background. The fake's clock starts at the real now
    /// (then stands still unless `set_now` or `advance` moves it); no company yet.
    pub async fn start() -> FakeQuickBooks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let fake = FakeQuickBooks { state: Arc::new(Mutex::new(State::new(chrono::Utc::now()))), addr };
        let app = Router::new().fallback(handle).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// The API base, `http://127.0.0.1:PORT` (requests go to `{base}/v3/company/{realm}/…`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint, `{base}/oauth2/v1/tokens/bearer`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v1/tokens/bearer", self.base_url())
    }

    /// The authorize page, `{base}/connect/oauth2`.
    pub fn authorize_url(&self) -> String {
        format!("{}/connect/oauth2", self.base_url())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread cannot leave the state half-changed in a way the next request
        // minds: every change is made whole under the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts a request of `realm` in flight until dropped (however the request ends).
struct InFlight {
    fake: FakeQuickBooks,
    realm: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(t) = self.fake.lock().traffic.get_mut(&self.realm) {
            t.in_flight -= 1;
        }
    }
}

async fn handle(
    Shared(fake): Shared<FakeQuickBooks>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let route = Route::of(method.as_str(), uri.path());
    let query = uri.query().unwrap_or_default().to_owned();
    let params = form::parse(&query);
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);

    let admission = admit(&mut fake.lock(), &route, &params, at);
    let in_flight = route.realm().map(|realm| InFlight { fake: fake.clone(), realm: realm.to_owned() });
    if let Some(latency) = admission.latency {
        tokio::time::sleep(latency).await;
    }

    let mut state = fake.lock();
    let (reply, realm) = match admission.early {
        Some(reply) => (reply, route.realm().map(str::to_owned)),
        None => serve(&mut state, &route, &params, authorization.as_deref(), &body),
    };
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query,
        endpoint: route.endpoint(),
        realm,
        at,
        status: reply.status,
    };
    if admission.minorversion_missing {
        state.minorversion_missing.push(recorded.clone());
    }
    state.log.push(recorded);
    drop(state);
    drop(in_flight);
    reply.into_response()
}

/// What happens to a request before it is served.
struct Admission {
    /// The answer instead of serving it: 429 past the limits (when enforced), an armed failure,
    /// or 400 without `minorversion`, in this order.
    early: Option<Reply>,
    minorversion_missing: bool,
    latency: Option<std::time::Duration>,
}

/// Counts an API request against its company's traffic (in flight from here until its
/// `InFlight` drops) and decides whether it is answered early.
fn admit(state: &mut State, route: &Route, params: &[(String, String)], at: Instant) -> Admission {
    let Some(realm) = route.realm() else {
        let early = take_failure(state, route.endpoint()).map(|f| failure_reply(f, route.endpoint(), state.now));
        return Admission { early, minorversion_missing: false, latency: None };
    };
    let t = state.traffic.entry(realm.to_owned()).or_default();
    t.in_flight += 1;
    t.max_in_flight = t.max_in_flight.max(t.in_flight);
    t.recent.retain(|a| at.duration_since(*a).as_secs() < 60);
    t.recent.push_back(at);
    let last_second = t.recent.iter().filter(|a| at.duration_since(**a).as_millis() < 1000).count();
    let over_limit = t.in_flight > MAX_CONCURRENT || last_second > MAX_PER_SECOND || t.recent.len() > MAX_PER_MINUTE;
    if over_limit {
        state.limit_violations += 1;
    }
    let minorversion = form::get(params, "minorversion").and_then(|v| v.parse::<u32>().ok());
    let minorversion_missing = minorversion.is_none_or(|v| v < MIN_MINOR_VERSION);
    let now = state.now;
    let early = if over_limit && state.enforce_limits {
        Some(Reply::json(429, throttled(now)))
    } else if let Some(failure) = take_failure(state, route.endpoint()) {
        Some(failure_reply(failure, route.endpoint(), now))
    } else if minorversion_missing {
        Some(Reply::json(400, invalid_request("every request names minorversion=75 or later", now)))
    } else {
        None
    };
    Admission { early, minorversion_missing, latency: state.latency }
}

/// Serves a request nothing stopped: OAuth, or the API once the bearer token opens the company.
/// Also says which company the request was for, when known.
fn serve(
    state: &mut State,
    route: &Route,
    params: &[(String, String)],
    authorization: Option<&str>,
    body: &[u8],
) -> (Reply, Option<String>) {
    let realm = route.realm().map(str::to_owned);
    if let Some(realm) = &realm {
        let opens = oauth::bearer_realm(state, authorization);
        if opens.as_ref() != Ok(realm) || !state.companies.contains_key(realm) {
            let detail = opens.err().unwrap_or("Token invalid");
            return (Reply::json(401, authentication_failed(detail, state.now)), Some(realm.clone()));
        }
    }
    let reply = match route {
        Route::Token => return oauth::token(state, authorization, body),
        Route::Authorize => oauth::authorize(state, params),
        Route::Query { realm } => api::query(state, realm, params),
        Route::Cdc { realm } => api::cdc(state, realm, params),
        Route::Entity { realm, kind, id } => api::entity(state, realm, *kind, id),
        Route::Send { realm, id } => api::send(state, realm, id, params),
        Route::Unknown => Reply::text(404, "not a QuickBooks endpoint the fake serves".into()),
    };
    (reply, realm)
}

/// The first armed failure that covers `endpoint`, used up by one.
fn take_failure(state: &mut State, endpoint: Endpoint) -> Option<Failure> {
    let index = state.failures.iter().position(|a| a.scope.covers(endpoint))?;
    let armed = &mut state.failures[index];
    let failure = armed.failure;
    armed.remaining -= 1;
    if armed.remaining == 0 {
        state.failures.remove(index);
    }
    Some(failure)
}

fn failure_reply(failure: Failure, endpoint: Endpoint, now: chrono::DateTime<chrono::Utc>) -> Reply {
    match failure {
        Failure::TooManyRequests { retry_after } => Reply { retry_after, ..Reply::json(429, throttled(now)) },
        Failure::Unauthorized if endpoint == Endpoint::Token => {
            Reply::json(401, serde_json::json!({"error": "invalid_client"}))
        }
        Failure::Unauthorized => Reply::json(401, authentication_failed("Token expired", now)),
        Failure::ServerError => Reply::json(500, system_fault(now)),
        Failure::FaultIn200 => Reply::json(200, system_fault(now)),
    }
}
