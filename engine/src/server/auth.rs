//! The bearer token of `POST /v1/records`, compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use subtle::ConstantTimeEq as _;

use super::ApiState;
use super::error::ApiError;
use crate::config::Secret;

/// A request whose `Authorization: Bearer …` header carries the configured token.
pub(crate) struct Authorized;

impl<S: Send + Sync> FromRequestParts<std::sync::Arc<ApiState<S>>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<ApiState<S>>,
    ) -> Result<Self, Self::Rejection> {
        check(state.token.as_ref(), parts.headers.get(header::AUTHORIZATION))
    }
}

/// Whether `header` carries `expected`: none configured refuses everyone; a missing header or
/// another scheme is [`ApiError::MissingToken`]; another token [`ApiError::WrongToken`]. The
/// comparison takes the same time wherever the tokens differ (their length is not secret).
pub(crate) fn check(expected: Option<&Secret>, header: Option<&HeaderValue>) -> Result<Authorized, ApiError> {
    let Some(expected) = expected else { return Err(ApiError::NoTokenConfigured) };
    let presented = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(ApiError::MissingToken)?;
    if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(Authorized)
    } else {
        Err(ApiError::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_header(expected: Option<&str>, header: Option<&'static str>) -> Result<(), String> {
        let expected = expected.map(Secret::new);
        let header = header.map(HeaderValue::from_static);
        check(expected.as_ref(), header.as_ref()).map(|_| ()).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn only_the_configured_token_passes() {
        assert_eq!(check_header(Some("s3cret"), Some("Bearer s3cret")), Ok(()));
        assert_eq!(check_header(Some("s3cret"), Some("bearer  s3cret ")), Ok(()), "the scheme is case-insensitive");
        assert_eq!(check_header(Some("s3cret"), Some("Bearer s3cre")), Err("WrongToken".into()));
        assert_eq!(check_header(Some("s3cret"), Some("Bearer s3cret!")), Err("WrongToken".into()));
        assert_eq!(check_header(Some("s3cret"), Some("Bearer ")), Err("MissingToken".into()));
        assert_eq!(check_header(Some("s3cret"), Some("Basic czNjcmV0")), Err("MissingToken".into()));
        assert_eq!(check_header(Some("s3cret"), None), Err("MissingToken".into()));
    }

    #[test]
    fn without_a_configured_token_everyone_is_refused() {
        assert_eq!(check_header(None, Some("Bearer anything")), Err("NoTokenConfigured".into()));
        assert_eq!(check_header(None, None), Err("NoTokenConfigured".into()));
    }
}
