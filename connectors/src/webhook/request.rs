//! What a signed webhook sends, per Standard Webhooks: the JSON body `{type, timestamp, data}`, the headers
//! `webhook-id` (the delivery's idempotency key, the same on every attempt), `webhook-timestamp`
//! and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with a
//! `whsec_<base64>` secret; and what the receiver's answer means for the outbox.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::Attempted;

/// A signing secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not `whsec_…`.
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    /// Not base64 after the prefix.
    #[error("a webhook secret is whsec_ followed by base64")]
    Base64,
}

impl Secret {
    /// Parses `whsec_<base64>`.
    ///
    /// # Errors
    /// [`SecretError`] saying what is wrong (never echoing the secret).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.trim().strip_prefix("whsec_").ok_or(SecretError::Prefix)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if bytes.is_empty() {
            return Err(SecretError::Base64);
        }
        Ok(Self(bytes))
    }
}

/// The body of a delivery: `{"type": …, "timestamp": …, "data": …}`.
pub fn body(kind: &str, at: DateTime<Utc>, data: &serde_json::Value) -> String {
    serde_json::json!({
        "type": kind,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": data,
    })
    .to_string()
}

/// The `webhook-signature` header of message `id` sent at unix second `timestamp` with `body`.
pub fn signature(secret: &Secret, id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length: the constructor cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.0) else { return String::new() };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The three headers of an attempt.
pub fn headers(secret: &Secret, id: &str, timestamp: i64, body: &str) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature(secret, id, timestamp, body)),
    ]
}

/// What the receiver's answer means: 2xx delivered; 410 permanent, and the endpoint disabled;
/// anything else (3xx — redirects are never followed —, 4xx, 5xx) tried again on Svix's
/// schedule, 429 after its `Retry-After`.
pub fn classify(status: u16, retry_after: Option<&str>) -> Attempted {
    match status {
        200..=299 => Attempted::Delivered,
        410 => {
            Attempted::Permanent { detail: "HTTP 410 Gone: the endpoint is disabled".into(), disable_destination: true }
        }
        _ => Attempted::Transient {
            retry_after: retry_after.and_then(crate::http::retry_after_seconds),
            detail: match status {
                300..=399 => format!("HTTP {status}: redirects are not followed"),
                _ => format!("HTTP {status}"),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector_signs_as_specified() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let sig = signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let h = headers(&secret, "k1", 7, "{}");
        assert_eq!((h[0].1.as_str(), h[1].1.as_str()), ("k1", "7"));
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(), SecretError::Prefix);
        assert_eq!(Secret::parse("whsec_***").unwrap_err(), SecretError::Base64);
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn answers_mean_what_svix_says() {
        assert_eq!(classify(204, None), Attempted::Delivered);
        assert!(matches!(classify(410, None), Attempted::Permanent { disable_destination: true, .. }));
        assert_eq!(
            classify(429, Some("30")),
            Attempted::Transient { retry_after: Some(chrono::Duration::seconds(30)), detail: "HTTP 429".into() }
        );
        assert!(matches!(classify(301, None), Attempted::Transient { detail, .. } if detail.contains("not followed")));
        assert!(matches!(classify(500, None), Attempted::Transient { retry_after: None, .. }));
        let at = DateTime::from_timestamp(1_614_265_330, 0).expect("time");
        assert_eq!(
            body("invoice.reminder", at, &serde_json::json!({"n": 1})),
            r#"{"data":{"n":1},"timestamp":"2021-02-25T15:02:10Z","type":"invoice.reminder"}"#
        );
    }
}
