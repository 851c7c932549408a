//! What evaluating a rule returns: action intents, each with the provenance that answers "why did
//! this go out?". Intents are data; the engine stores them in its outbox and the connectors
//! deliver them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountName, RecordKey};

/// One thing a rule asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// An email through the SMTP connector.
    Email {
        /// Addresses (a named email destination is expanded when the rule is evaluated).
        to: Vec<String>,
        /// Copies.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cc: Vec<String>,
        /// Subject line.
        subject: String,
        /// Plain-text body.
        text: String,
        /// HTML body, when the rule gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        html: Option<String>,
    },
    /// A message to a Slack-style incoming webhook.
    Slack {
        /// The destination's name in the configuration.
        destination: String,
        /// The message (always sent, also the notification text when blocks are given).
        text: String,
        /// Block Kit blocks, when the rule gives them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocks: Option<serde_json::Value>,
    },
    /// A JSON payload to a signed webhook.
    Webhook {
        /// The destination's name in the configuration.
        destination: String,
        /// The `data` of the delivery.
        payload: serde_json::Value,
    },
    /// A task in invoiceflow's task manager.
    Task {
        /// What to do.
        title: String,
        /// Details.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
        /// Who should do it (a name or an email address).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<String>,
        /// When it is due.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<NaiveDate>,
        /// Whether it needs an approval (approve / reject) rather than being done.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        approval: bool,
    },
    /// QuickBooks sends the invoice with its own template (`POST …/invoice/{id}/send`).
    SendInvoice {
        /// The invoice.
        invoice: RecordKey,
        /// Overrides `BillEmail` (QuickBooks' `sendTo`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
}

impl Action {
    /// The named destination it goes to (Slack and webhooks), if any.
    pub fn destination(&self) -> Option<&str> {
        match self {
            Self::Slack { destination, .. } | Self::Webhook { destination, .. } => Some(destination),
            Self::Email { .. } | Self::Task { .. } | Self::SendInvoice { .. } => None,
        }
    }

    /// The action's kind, as rule tests and logs name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Slack { .. } => "slack",
            Self::Webhook { .. } => "webhook",
            Self::Task { .. } => "task",
            Self::SendInvoice { .. } => "send_invoice",
        }
    }
}

/// What started an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Cause {
    /// A stored change event.
    Change {
        /// The event's sequence number in the store (0 when not stored, as in `invoiceflow test`).
        event: i64,
        /// The property.
        property: String,
        /// Its value before.
        from: Option<String>,
        /// Its value after.
        to: Option<String>,
    },
    /// A schedule slot: the instant the cron expression named.
    Schedule {
        /// The slot.
        slot: DateTime<Utc>,
    },
    /// A step of a reminder workflow fell due.
    Workflow {
        /// The step (`stage-2`, `repeat-1`).
        step: String,
        /// Its nominal local date (what its key says).
        nominal: NaiveDate,
        /// When it fell due, moved into the send window.
        due: DateTime<Utc>,
    },
    /// Evaluated by hand (`invoiceflow explain`).
    Manual,
    /// An alert: a delivery failed for good, or its destination was disabled.
    Failure {
        /// The delivery (`invoiceflow outbox list`).
        delivery: i64,
    },
    /// An alert: QuickBooks refused a company's tokens; it must be connected again.
    Disconnected {
        /// Why, as QuickBooks said it.
        reason: String,
    },
}

/// What an intent is about: a record (every rule's and workflow's action), or a whole company
/// (an alert about its QuickBooks connection). Stored as the record key it holds, so that
/// intents stored before companies could be a subject read back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum About {
    /// A record.
    Record(RecordKey),
    /// A company.
    Company {
        /// Its name.
        company: AccountName,
    },
}

impl About {
    /// The record, when it is about one.
    pub fn record(&self) -> Option<&RecordKey> {
        match self {
            Self::Record(key) => Some(key),
            Self::Company { .. } => None,
        }
    }

    /// The company it belongs to.
    pub fn account(&self) -> &AccountName {
        match self {
            Self::Record(key) => &key.account,
            Self::Company { company } => company,
        }
    }
}

impl From<RecordKey> for About {
    fn from(key: RecordKey) -> Self {
        Self::Record(key)
    }
}

impl std::fmt::Display for About {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Record(key) => key.fmt(f),
            Self::Company { company } => write!(f, "company {company}"),
        }
    }
}

/// An action with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The rule's id (its file name without extension).
    pub rule: String,
    /// The rule's version: a hash of its file.
    pub version: String,
    /// What started the evaluation.
    pub cause: Cause,
    /// The record (or, for an alert about a connection, the company).
    pub record: About,
    /// The record's values the rule saw (status, amount, balance, due date, …).
    pub seen: super::seen::Seen,
    /// The action.
    pub action: Action,
}
