//! Slack-style incoming webhooks: the JSON posted (`text` always, `blocks` when given), and what
//! Slack's answer means — 200 with body `ok` is delivered; 429 waits for `Retry-After`; the error
//! strings that no retry can fix are permanent and disable the destination.

use crate::Attempted;

/// Slack's answers that no retry can fix: the destination is disabled until an admin fixes it.
pub const PERMANENT_ERRORS: [&str; 6] =
    ["invalid_payload", "channel_not_found", "channel_is_archived", "no_service", "invalid_token", "action_prohibited"];

/// The JSON body posted for a message.
pub fn payload(text: &str, blocks: Option<&serde_json::Value>) -> String {
    match blocks {
        Some(blocks) => serde_json::json!({"text": text, "blocks": blocks}),
        None => serde_json::json!({"text": text}),
    }
    .to_string()
}

/// What Slack's answer (status, body, `Retry-After`) means.
pub fn classify(status: u16, body: &str, retry_after: Option<&str>) -> Attempted {
    let body = body.trim();
    if let Some(error) = PERMANENT_ERRORS.iter().find(|e| body == **e) {
        return Attempted::Permanent { detail: format!("Slack answered {error}"), disable_destination: true };
    }
    match status {
        200 if body == "ok" => Attempted::Delivered,
        429 => Attempted::Transient {
            retry_after: retry_after.and_then(crate::http::retry_after_seconds),
            detail: "Slack: rate limited (HTTP 429)".into(),
        },
        400..=499 => Attempted::Permanent {
            detail: format!("Slack answered HTTP {status}: {}", body.chars().take(200).collect::<String>()),
            disable_destination: false,
        },
        _ => Attempted::Transient {
            retry_after: None,
            detail: format!("Slack answered HTTP {status}: {}", body.chars().take(200).collect::<String>()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_answers_are_read_as_slack_means_them() {
        assert_eq!(classify(200, "ok", None), Attempted::Delivered);
        assert!(matches!(
            classify(429, "rate_limited", Some("7")),
            Attempted::Transient { retry_after: Some(d), .. } if d == chrono::Duration::seconds(7)
        ));
        assert!(matches!(
            classify(404, "channel_not_found", None),
            Attempted::Permanent { disable_destination: true, .. }
        ));
        assert!(matches!(classify(500, "oops", None), Attempted::Transient { retry_after: None, .. }));
        assert!(matches!(classify(403, "forbidden", None), Attempted::Permanent { disable_destination: false, .. }));
        assert!(matches!(classify(200, "not ok", None), Attempted::Transient { .. }), "200 without ok is not success");
    }

    #[test]
    fn the_payload_always_has_text() {
        assert_eq!(payload("Paid: 1007", None), r#"{"text":"Paid: 1007"}"#);
        let blocks = serde_json::json!([{"type": "section"}]);
        assert_eq!(payload("x", Some(&blocks)), r#"{"blocks":[{"type":"section"}],"text":"x"}"#);
    }
}
