//! What a test does to the fake besides sending it requests: set its clock, fill its companies,
//! steer OAuth, arm failures and limits, and read what it saw. A test naming a company it never
//! added, or an entity that is not there, fails with a message saying so.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::faults::Failure;
use super::oauth::{self, Grant};
use super::routes::{Endpoint, Recorded};
use super::server::FakeQuickBooks;
use super::state::{ACCESS_TOKEN_SECONDS, Armed, Kind, void};

impl FakeQuickBooks {
    // --- The clock -------------------------------------------------------------------------

    /// The fake's now: what `MetaData` stamps, answers' `time`, token lifetimes and CDC's
    /// look-back are measured by.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    /// Sets the fake's clock (it stands still between calls).
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.lock().now = now;
    }

    /// Moves the fake's clock by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.lock().now += by;
    }

    // --- Companies and entities --------------------------------------------------------------

    /// Adds an empty company (doing it again keeps what it holds).
    pub fn add_company(&self, realm: &str) {
        self.lock().companies.entry(realm.to_owned()).or_default();
    }

    /// Stores `json` as a `kind` of `realm`, as a QuickBooks user saving it would: a new entity
    /// gets `SyncToken` "0" and `CreateTime` now; one with the `Id` of a stored entity replaces
    /// it, its `SyncToken` bumped. `LastUpdatedTime` is now (whole seconds). Without an `Id`,
    /// one is assigned. Returns the id.
    pub fn put(&self, realm: &str, kind: Kind, json: Value) -> String {
        self.lock().put(realm, kind, json)
    }

    /// Changes a stored entity with `change`, then stamps it as `put` does; returns the result.
    pub fn update(&self, realm: &str, kind: Kind, id: &str, change: impl FnOnce(&mut Value)) -> Value {
        let updated = self.lock().update(realm, kind, id, change);
        updated.unwrap_or_else(|| panic!("no {} {id} in company {realm}", kind.name()))
    }

    /// A stored entity, as the API would answer it.
    pub fn get(&self, realm: &str, kind: Kind, id: &str) -> Option<Value> {
        self.lock().get(realm, kind, id)
    }

    /// Deletes a stored entity; CDC reports it `Deleted` from now on.
    pub fn delete(&self, realm: &str, kind: Kind, id: &str) {
        assert!(self.lock().delete(realm, kind, id), "no {} {id} in company {realm}", kind.name());
    }

    /// Voids an invoice as QuickBooks does: amounts 0, `PrivateNote` prefixed "Voided".
    pub fn void_invoice(&self, realm: &str, id: &str) -> Value {
        self.update(realm, Kind::Invoice, id, void)
    }

    // --- OAuth -------------------------------------------------------------------------------

    /// The client the token endpoint accepts (by default `fake-client-id`/`fake-client-secret`)
    /// and the authorize page expects.
    pub fn set_client(&self, id: &str, secret: &str) {
        self.lock().client = (id.to_owned(), secret.to_owned());
    }

    /// Whether a refresh hands out a new refresh token and invalidates the old one (the default)
    /// or hands back the same one.
    pub fn rotate_refresh_tokens(&self, rotate: bool) {
        self.lock().rotate_refresh_tokens = rotate;
    }

    /// The company the user connects when a client sends them to the authorize page. Until it
    /// is named, the user declines (`error=access_denied`).
    pub fn approve_as(&self, realm: &str) {
        let mut state = self.lock();
        assert!(state.companies.contains_key(realm), "no company {realm}: call add_company first");
        state.approve_as = Some(realm.to_owned());
    }

    /// Tokens for `realm` without the OAuth dance, as the token endpoint would issue them.
    pub fn grant(&self, realm: &str) -> Grant {
        let mut state = self.lock();
        assert!(state.companies.contains_key(realm), "no company {realm}: call add_company first");
        oauth::issue(&mut state, realm, None)
    }

    /// Every access token issued so far has expired (the API answers 401 "Token expired");
    /// refresh tokens still work.
    pub fn expire_access_tokens(&self) {
        let mut state = self.lock();
        let expired = state.now - chrono::Duration::seconds(ACCESS_TOKEN_SECONDS);
        for issued in state.access_tokens.values_mut() {
            issued.at = issued.at.min(expired);
        }
    }

    /// The user disconnected the app from `realm`: its access and refresh tokens are void
    /// (refreshing answers `invalid_grant`).
    pub fn revoke_all(&self, realm: &str) {
        let mut state = self.lock();
        state.access_tokens.retain(|_, i| i.realm != realm);
        state.refresh_tokens.retain(|_, i| i.realm != realm);
    }

    // --- Failures and limits ---------------------------------------------------------------

    /// The next `n` requests (to any endpoint) fail with `failure`. Armed failures queue: each
    /// request takes the oldest one that covers it.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.fail_next_on(Endpoint::Any, n, failure);
    }

    /// The next `n` requests to `scope` fail with `failure` (see `fail_next`).
    pub fn fail_next_on(&self, scope: Endpoint, n: usize, failure: Failure) {
        if n > 0 {
            self.lock().failures.push_back(Armed { scope, failure, remaining: n });
        }
    }

    /// Whether a company past QuickBooks' limits (10 requests in flight, 10 in the last second or
    /// 500 in the last minute, by the real clock) is answered 429. Off by default; violations
    /// are counted either way.
    pub fn enforce_limits(&self, enforce: bool) {
        self.lock().enforce_limits = enforce;
    }

    /// Each API request takes `latency` before its answer (none by default), so concurrency
    /// shows.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = Some(latency).filter(|l| !l.is_zero());
    }

    // --- What the fake saw -----------------------------------------------------------------

    /// Every request answered so far, in the order answered.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    /// How many requests to `endpoint` were answered (`Endpoint::Any`: all of them).
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.lock().log.iter().filter(|r| endpoint.covers(r.endpoint)).count()
    }

    /// The most requests of `realm` in flight at once.
    pub fn max_concurrent(&self, realm: &str) -> usize {
        self.lock().traffic.get(realm).map_or(0, |t| t.max_in_flight)
    }

    /// The API requests that named no `minorversion` of 75 or later (answered 400).
    pub fn minorversion_missing(&self) -> Vec<Recorded> {
        self.lock().minorversion_missing.clone()
    }

    /// How many requests arrived past a company's limits (answered 429 only when enforced).
    pub fn limit_violations(&self) -> usize {
        self.lock().limit_violations
    }
}
