//! `invoiceflow history`: what happened to each decision — every delivery with its status
//! (delivered; retrying, and when next; failed or dead, and why; cancelled, and why) and its
//! provenance, and every reminder step or schedule slot skipped, and why.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use invoiceflow::store::{DeliveryQuery, FiringQuery, IntentQuery, Store};
use invoiceflow_rules::workflow::config::WorkflowKind;
use serde_json::json;

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Only this record: ID, or ACCOUNT/ID when the id is in several companies.
    #[arg(long, value_name = "RECORD")]
    record: Option<String>,
    /// The record's kind: invoice (default), bill, payment, deposit.
    #[arg(long, default_value = "invoice")]
    kind: String,
    /// Only this rule (its file name) or workflow (workflow:payment_due).
    #[arg(long, value_name = "RULE")]
    rule: Option<String>,
    /// At most this many lines.
    #[arg(long, default_value_t = 200)]
    limit: u32,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

/// One line of history.
struct Entry {
    at: DateTime<Utc>,
    text: String,
    json: serde_json::Value,
}

pub(crate) async fn run<S: Store>(args: HistoryArgs, store: &S) -> anyhow::Result<ExitCode> {
    let kind = invoiceflow_rules::script::def::parse_kind(&args.kind)
        .ok_or_else(|| anyhow::anyhow!("--kind {:?}: invoice, bill, payment or deposit", args.kind))?;
    let record = match &args.record {
        Some(text) => Some(super::holders::resolve(store, kind, text).await?.record.key().clone()),
        None => None,
    };
    let mut entries = Vec::new();
    let query = DeliveryQuery {
        status: None,
        of: IntentQuery { rule: args.rule.clone(), record: record.clone(), after_seq: None, limit: args.limit },
    };
    for d in store.deliveries(&query).await? {
        let what = super::actions::describe(&d.intent.action);
        let state = match d.status.as_str() {
            "pending" if d.attempts == 0 => format!("waiting, first try {}", d.next_at.format("%Y-%m-%d %H:%M UTC")),
            "pending" => format!(
                "retrying ({} attempts), next try {}{}",
                d.attempts,
                d.next_at.format("%Y-%m-%d %H:%M UTC"),
                d.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default()
            ),
            "delivered" => format!(
                "delivered at {} ({} attempt{})",
                d.updated_at.format("%Y-%m-%d %H:%M UTC"),
                d.attempts,
                if d.attempts == 1 { "" } else { "s" }
            ),
            other => format!("{other}: {}", d.reason.as_deref().unwrap_or("no reason recorded")),
        };
        entries.push(Entry {
            at: d.decided_at,
            text: format!("{:<9} {what}\n{:>20} ← {} on {} — {state}", d.status, "", d.intent.rule, d.intent.record),
            json: json!({"at": d.decided_at, "kind": "delivery", "status": d.status, "source": d.intent.rule,
                "record": d.intent.record.to_string(), "key": d.key, "action": d.intent.action, "attempts": d.attempts,
                "next_at": (d.status == "pending").then_some(d.next_at), "reason": d.reason, "cause": d.intent.cause}),
        });
    }
    let workflow = args.rule.as_deref().and_then(|r| r.strip_prefix("workflow:")).and_then(WorkflowKind::parse);
    if args.rule.is_none() || workflow.is_some() {
        let firings = store.firings(&FiringQuery { workflow, record: record.clone(), limit: args.limit }).await?;
        for f in firings.into_iter().filter(|f| !f.sent) {
            let why = f.reason.clone().unwrap_or_default();
            entries.push(Entry {
                at: f.decided_at,
                text: format!("{:<9} {} of workflow:{} on {} (due {}) — {why}", "skipped", f.step, f.workflow, f.record, f.due_at.format("%Y-%m-%d %H:%M UTC")),
                json: json!({"at": f.decided_at, "kind": "step", "status": "skipped", "source": format!("workflow:{}", f.workflow),
                    "record": f.record.to_string(), "key": f.key, "step": f.step, "due_at": f.due_at, "reason": f.reason}),
            });
        }
    }
    if record.is_none() && workflow.is_none() {
        for s in store.slot_skips(args.rule.as_deref(), args.limit).await? {
            let zone = s.zone.as_deref().map(|z| format!(" ({z})")).unwrap_or_default();
            entries.push(Entry {
                at: s.slot,
                text: format!("{:<9} slot {} of rule {}{zone} — {}", "skipped", s.slot.format("%Y-%m-%d %H:%M UTC"), s.rule, s.reason),
                json: json!({"at": s.slot, "kind": "slot", "status": "skipped", "source": s.rule, "zone": s.zone, "reason": s.reason}),
            });
        }
    }
    entries.sort_by_key(|e| e.at);
    for e in entries {
        if args.json {
            out!("{}", e.json);
        } else {
            out!("{}  {}", e.at.format("%Y-%m-%d %H:%M"), e.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}
