//! The one error type of the HTTP edge: each variant is a status and a message a client may read;
//! an internal failure is logged with its cause and answered with a generic 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    MissingToken,
    /// A token that is not the configured one.
    #[error("invalid bearer token")]
    WrongToken,
    /// No token is configured: the endpoint refuses everyone rather than be open.
    #[error(
        "POST /v1/records is disabled: no API token is configured \
         (set INVOICEFLOW_API_TOKEN, or [server] token_env or token_file, and restart)"
    )]
    NoTokenConfigured,
    /// No `intuit-signature`, or one no configured verifier token made.
    #[error("missing or invalid intuit-signature")]
    BadSignature,
    /// No company has a webhook verifier token: the webhook endpoint refuses everyone.
    #[error(
        "POST /v1/quickbooks/webhook is disabled: no webhook verifier is configured \
         (set [quickbooks.NAME] webhook_verifier_env or webhook_verifier_file, and restart)"
    )]
    WebhooksDisabled,
    /// A body over `[server] max_body`.
    #[error("request body over the limit of {limit} bytes ([server] max_body)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// A content type that is not JSON.
    #[error(
        "unsupported content type {0:?}: send JSON lines or JSON documents as application/json or \
         application/x-ndjson (curl: --data-binary @FILE -H 'Content-Type: application/json')"
    )]
    UnsupportedMediaType(String),
    /// A request the client must correct (a bad query string, a body cut short).
    #[error("{0}")]
    BadRequest(String),
    /// No such route.
    #[error("no such endpoint: see POST /v1/records, POST /v1/quickbooks/webhook, GET /healthz, GET /metrics")]
    NotFound,
    /// The database does not answer (`/healthz`).
    #[error("the database does not answer")]
    Unavailable,
    /// Anything else: the cause is logged, never returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// An internal failure while doing `what`, logged at once with its cause.
    pub(crate) fn internal(what: &'static str, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        tracing::error!(error = %Chain(&error), "{what} failed");
        Self::Internal(Box::new(error))
    }

    /// The status code it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::WrongToken | Self::BadSignature => StatusCode::UNAUTHORIZED,
            Self::NoTokenConfigured | Self::WebhooksDisabled | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // `Internal`'s message is "internal error": its cause was logged by `ApiError::internal`.
        let mut response = (self.status(), Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        let challenge = match self {
            Self::MissingToken => Some("Bearer realm=\"invoiceflow\""),
            Self::WrongToken => Some("Bearer realm=\"invoiceflow\", error=\"invalid_token\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// An error and its sources, joined by `: `.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_says_nothing_of_its_cause() {
        let e = ApiError::internal("test", std::io::Error::other("disk /var/lib/secret.db is full"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.to_string(), "internal error");
    }

    #[test]
    fn refusals_of_the_token_carry_a_bearer_challenge() {
        let r = ApiError::WrongToken.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer ") && challenge.contains("invalid_token"), "{challenge}");
    }
}
