//! A local sink: each delivery appended as one JSON line to a file — what the example
//! configuration and the crash tests deliver to, with no outside service. Each line carries the
//! idempotency key, so a reader can tell a retried attempt from a second delivery.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use invoiceflow_rules::script::Action;
use serde_json::json;

use crate::{Attempted, Attempting, Connector, Delivery};

/// Appends deliveries to a JSON-lines file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    // One writer at a time, so that lines never interleave.
    lock: Mutex<()>,
}

impl FileSink {
    /// A sink appending to `path` (created when missing, with its folder).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), lock: Mutex::new(()) }
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line a delivery becomes: the key, the attempt, the channel, and what a real peer would
    /// receive (Slack's JSON, the webhook's data, the email's headers and text, the task).
    pub fn line(delivery: &Delivery<'_>) -> serde_json::Value {
        let intent = delivery.intent;
        let payload = match &intent.action {
            Action::Slack { text, blocks, .. } => json!({"text": text, "blocks": blocks}),
            Action::Webhook { payload, .. } => payload.clone(),
            Action::Email { to, cc, subject, text, .. } => {
                json!({"to": to, "cc": cc, "subject": subject, "text": text})
            }
            Action::Task { title, notes, assignee, due, approval } => {
                json!({"title": title, "notes": notes, "assignee": assignee, "due": due, "approval": approval})
            }
            Action::SendInvoice { invoice, to } => json!({"invoice": invoice.to_string(), "to": to}),
        };
        json!({
            "key": delivery.key,
            "attempt": delivery.attempt,
            "channel": intent.action.kind(),
            "destination": intent.action.destination(),
            "record": intent.record.to_string(),
            "source": intent.rule,
            "payload": payload,
        })
    }

    fn append(&self, line: &str) -> std::io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(format!("{line}\n").as_bytes())?;
        file.sync_data()
    }
}

impl Connector for FileSink {
    fn deliver<'a>(&'a self, delivery: &'a Delivery<'a>) -> Attempting<'a> {
        Box::pin(async move {
            match self.append(&Self::line(delivery).to_string()) {
                Ok(()) => Attempted::Delivered,
                Err(e) => Attempted::Transient { retry_after: None, detail: format!("{}: {e}", self.path.display()) },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use invoiceflow_rules::script::{Cause, Intent};
    use invoiceflow_rules::{AccountName, RecordId, RecordKey, RecordKind};

    use super::*;

    fn slack(text: &str) -> Intent {
        Intent {
            rule: "payment-received".into(),
            version: "0587fc9c3c4f".into(),
            cause: Cause::Manual,
            record: RecordKey::new(
                RecordKind::Invoice,
                AccountName::new("acme").expect("account"),
                RecordId::new("7").expect("id"),
            )
            .into(),
            seen: serde_json::from_value(json!({"status": "paid"})).expect("seen"),
            action: Action::Slack { destination: "finance".into(), text: text.into(), blocks: None },
        }
    }

    #[tokio::test]
    async fn each_delivery_is_one_line_with_its_key() {
        let dir = tempfile::tempdir().expect("dir");
        let sink = FileSink::new(dir.path().join("out/slack.jsonl"));
        let (a, b) = (slack("Paid: 1007 ✓"), slack("Paid: 1008"));
        assert_eq!(
            sink.deliver(&Delivery { key: "k1", intent: &a, attempt: 1, at: chrono::Utc::now() }).await,
            Attempted::Delivered
        );
        assert_eq!(
            sink.deliver(&Delivery { key: "k2", intent: &b, attempt: 2, at: chrono::Utc::now() }).await,
            Attempted::Delivered
        );
        let text = std::fs::read_to_string(sink.path()).expect("read");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["key"], "k1");
        assert_eq!(lines[0]["payload"]["text"], "Paid: 1007 ✓");
        assert_eq!((lines[1]["attempt"].as_u64(), &lines[1]["destination"]), (Some(2), &json!("finance")));
    }

    #[tokio::test]
    async fn a_sink_that_cannot_write_says_so_as_a_transient_failure() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("file"), "").expect("file");
        // A folder where a file is: the write fails.
        let sink = FileSink::new(dir.path().join("file/slack.jsonl"));
        let intent = slack("x");
        let outcome = sink.deliver(&Delivery { key: "k", intent: &intent, attempt: 1, at: chrono::Utc::now() }).await;
        assert!(matches!(outcome, Attempted::Transient { .. }), "{outcome:?}");
    }
}
