//! The connectors against real protocol peers started by each test: an SMTP server speaking SMTP
//! over TCP, and HTTP servers on 127.0.0.1 acting as Slack, as a webhook receiver that checks the
//! signature, and as the QuickBooks API and Intuit's token endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on purpose")]

mod email;
mod http_peer;
mod quickbooks;
mod quickbooks_api;
mod slack;
mod smtp_peer;
mod webhook;

use chrono::{DateTime, Utc};
use invoiceflow_rules::script::{Action, Cause, Intent};
use invoiceflow_rules::{AccountName, RecordId, RecordKey, RecordKind};

/// An intent of company `acme-us` on invoice 239 carrying `action`.
pub fn intent(rule: &str, action: Action) -> Intent {
    Intent {
        rule: rule.into(),
        version: "0587fc9c3c4f".into(),
        cause: Cause::Manual,
        record: RecordKey::new(
            RecordKind::Invoice,
            AccountName::new("acme-us").unwrap(),
            RecordId::new("239").unwrap(),
        )
        .into(),
        seen: serde_json::from_value(serde_json::json!({"status": "overdue"})).unwrap(),
        action,
    }
}

/// 2026-11-25 09:00 UTC.
pub fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc()
}
