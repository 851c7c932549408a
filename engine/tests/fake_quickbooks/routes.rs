//! What a request asks for: its route (parsed from method and path, nothing else), the endpoint
//! kind it counts under, and how the fake records it.

use std::time::Instant;

use super::form;
use super::state::Kind;

/// The kinds of request the fake tells apart, for the log, counters and failure injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /v3/company/{realm}/query`.
    Query,
    /// `GET /v3/company/{realm}/cdc`.
    Cdc,
    /// `GET /v3/company/{realm}/{entity}/{id}`.
    Entity,
    /// `POST /v3/company/{realm}/invoice/{id}/send`.
    Send,
    /// `POST /oauth2/v1/tokens/bearer`.
    Token,
    /// `GET /connect/oauth2`.
    Authorize,
    /// Anything else (answered 404).
    Other,
    /// Every endpoint: only meaningful as a scope (`fail_next_on`, `count`).
    Any,
}

impl Endpoint {
    /// Whether a request to `endpoint` falls under this scope.
    pub fn covers(self, endpoint: Endpoint) -> bool {
        self == Endpoint::Any || self == endpoint
    }
}

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`…
    pub method: String,
    /// The path, as sent (`/v3/company/123/query`).
    pub path: String,
    /// The raw query string, as sent (empty when none).
    pub query: String,
    /// What the request asked for.
    pub endpoint: Endpoint,
    /// The company: from the path for the API, from the grant for the token endpoint.
    pub realm: Option<String>,
    /// When it arrived (the real clock, for rates and latencies).
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Recorded {
    /// The decoded value of query parameter `name` (`param("query")` is the statement).
    pub fn param(&self, name: &str) -> Option<String> {
        form::get(&form::parse(&self.query), name).map(str::to_owned)
    }
}

/// A request's destination, from its method and path: one variant per [`Endpoint`], with the
/// company and entity the path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Token,
    Authorize,
    Query { realm: String },
    Cdc { realm: String },
    Entity { realm: String, kind: Kind, id: String },
    Send { realm: String, id: String },
    Unknown,
}

impl Route {
    /// Routes `method path`; an empty segment (`//`, a trailing `/`) is not QuickBooks', so it
    /// routes nowhere.
    pub fn of(method: &str, path: &str) -> Route {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        if segments.contains(&"") {
            return Route::Unknown;
        }
        let owned = |s: &str| s.to_owned();
        match (method, segments.as_slice()) {
            ("POST", ["oauth2", "v1", "tokens", "bearer"]) => Route::Token,
            ("GET", ["connect", "oauth2"]) => Route::Authorize,
            ("GET", ["v3", "company", realm, "query"]) => Route::Query { realm: owned(realm) },
            ("GET", ["v3", "company", realm, "cdc"]) => Route::Cdc { realm: owned(realm) },
            ("GET", ["v3", "company", realm, entity, id]) => match Kind::from_path(entity) {
                Some(kind) => Route::Entity { realm: owned(realm), kind, id: owned(id) },
                None => Route::Unknown,
            },
            ("POST", ["v3", "company", realm, "invoice", id, "send"]) => {
                Route::Send { realm: owned(realm), id: owned(id) }
            }
            _ => Route::Unknown,
        }
    }

    /// The endpoint kind it counts under.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Route::Token => Endpoint::Token,
            Route::Authorize => Endpoint::Authorize,
            Route::Query { .. } => Endpoint::Query,
            Route::Cdc { .. } => Endpoint::Cdc,
            Route::Entity { .. } => Endpoint::Entity,
            Route::Send { .. } => Endpoint::Send,
            Route::Unknown => Endpoint::Other,
        }
    }

    /// The company of an API route (`None` for OAuth and unknown routes).
    pub fn realm(&self) -> Option<&str> {
        match self {
            Route::Query { realm } | Route::Cdc { realm } | Route::Entity { realm, .. } | Route::Send { realm, .. } => {
                Some(realm)
            }
            Route::Token | Route::Authorize | Route::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_quickbooks_paths_and_nothing_else() {
        let entity = Route::of("GET", "/v3/company/123/invoice/239");
        assert_eq!(entity, Route::Entity { realm: "123".into(), kind: Kind::Invoice, id: "239".into() });
        assert_eq!(Route::of("POST", "/v3/company/123/invoice/239/send").endpoint(), Endpoint::Send);
        assert_eq!(Route::of("GET", "/v3/company/123/query").realm(), Some("123"));
        assert_eq!(Route::of("POST", "/oauth2/v1/tokens/bearer"), Route::Token);
        assert_eq!(Route::of("GET", "/v3/company/123/customer/1"), Route::Unknown);
        assert_eq!(Route::of("GET", "/v3/company/123/query/"), Route::Unknown);
        assert_eq!(Route::of("POST", "/v3/company/123/query"), Route::Unknown);
        assert!(Endpoint::Any.covers(Endpoint::Cdc) && !Endpoint::Query.covers(Endpoint::Cdc));
    }
}
