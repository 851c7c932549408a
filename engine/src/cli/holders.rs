//! `invoiceflow deals|contacts|companies show|link|unlink`: a CRM object's five invoice properties
//! and the invoices it holds.

use std::process::ExitCode;

use clap::Subcommand;
use invoiceflow::store::{LinkChange, Store, Stored};
use invoiceflow_rules::deal::{Candidate, project};
use invoiceflow_rules::status::invoice_status;
use invoiceflow_rules::{Holder, HolderId, HolderKind, RecordId, RecordKind};
use serde_json::json;

use super::Env;
use super::output::as_invoice;

#[derive(Debug, Subcommand)]
pub(crate) enum HolderCommand {
    /// The five invoice properties (amount, recipient, number, status, due date), the invoice they
    /// come from, and why the others were not used.
    Show {
        /// Its CRM id.
        id: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add an existing invoice (ID, or ACCOUNT/ID when ids repeat across companies).
    Link {
        /// Its CRM id.
        id: String,
        /// The invoice.
        invoice: String,
    },
    /// Remove an invoice, whether its own field or `link` put it there.
    Unlink {
        /// Its CRM id.
        id: String,
        /// The invoice.
        invoice: String,
    },
}

/// Finds the one record `text` names: `ID` or `ACCOUNT/ID`.
pub(crate) async fn resolve<S: Store>(store: &S, kind: RecordKind, text: &str) -> anyhow::Result<Stored> {
    let (account, id) = match text.split_once('/') {
        Some((a, i)) => (Some(Env::parse_account(a)?), i),
        None => (None, text),
    };
    let id = RecordId::new(id).map_err(|e| anyhow::anyhow!("{kind} id {id:?} {e}"))?;
    let mut found = store.find(kind, &id, account.as_ref()).await?;
    match found.len() {
        0 => anyhow::bail!("no {kind} {text} is stored (import it first, or check the id with `invoiceflow invoices`)"),
        1 => Ok(found.remove(0)),
        _ => {
            let accounts: Vec<String> = found.iter().map(|s| format!("{}/{id}", s.record.key().account)).collect();
            anyhow::bail!("{kind} id {id} exists in several companies; name one: {}", accounts.join(", "))
        }
    }
}

pub(crate) async fn run<S: Store>(
    kind: HolderKind,
    command: HolderCommand,
    env: &Env,
    store: &S,
) -> anyhow::Result<ExitCode> {
    let holder = |id: &str| -> anyhow::Result<Holder> {
        Ok(Holder { kind, id: HolderId::new(id).map_err(|e| anyhow::anyhow!("{kind} id {id:?} {e}"))? })
    };
    match command {
        HolderCommand::Show { id, json } => show(holder(&id)?, json, env, store).await,
        HolderCommand::Link { id, invoice } => set_link(holder(&id)?, &invoice, true, env, store).await,
        HolderCommand::Unlink { id, invoice } => set_link(holder(&id)?, &invoice, false, env, store).await,
    }
}

/// `link` (`linked`) or `unlink`: one invoice, one holder, and what it changed.
async fn set_link<S: Store>(h: Holder, invoice: &str, linked: bool, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let stored = resolve(store, RecordKind::Invoice, invoice).await?;
    let key = stored.record.key();
    let now = env.clock.now.instant();
    let change = if linked { store.link(&h, key, now).await? } else { store.unlink(&h, key, now).await? };
    let (account, id) = (&key.account, &key.id);
    match (linked, change) {
        (true, LinkChange::Done) => out!("linked invoice {account}/{id} to {h}"),
        (true, LinkChange::AlreadySo) => out!("invoice {account}/{id} was already linked to {h}"),
        (false, LinkChange::Done) => out!("unlinked invoice {account}/{id} from {h}"),
        (false, LinkChange::AlreadySo) => out!("invoice {account}/{id} was not linked to {h}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn show<S: Store>(holder: Holder, as_json: bool, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let stored = invoiceflow::deals::invoices_of(store, &holder).await?;
    let candidates: Vec<Candidate<'_>> = stored
        .iter()
        .filter_map(as_invoice)
        .map(|invoice| Candidate {
            invoice,
            status: invoice_status(invoice, env.clock.today_of(&invoice.key.account)),
            home_currency: env.config.companies.get(&invoice.key.account).home_currency,
        })
        .collect();
    let projection = project(&candidates);
    let status_of = |key: &invoiceflow_rules::RecordKey| candidates.iter().find(|c| &c.invoice.key == key);
    if as_json {
        let props = projection.properties.as_ref().map(|p| {
            json!({
                "amount": p.amount.amount_string(),
                "currency": p.amount.currency.code(),
                "recipient": p.recipient,
                "number": p.number,
                "status": p.status.as_str(),
                "due_date": p.due_date.map(|d| d.to_string()),
            })
        });
        let invoices: Vec<_> = projection
            .invoices
            .iter()
            .map(|(key, verdict)| {
                let c = status_of(key);
                json!({
                    "account": key.account.as_str(),
                    "id": key.id.as_str(),
                    "number": c.and_then(|c| c.invoice.number.clone()),
                    "status": c.map(|c| c.status.as_str()),
                    "updated_at": c.map(|c| c.invoice.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    "used": matches!(verdict, invoiceflow_rules::deal::Verdict::Used),
                    "verdict": verdict,
                    "reason": verdict.explain(),
                })
            })
            .collect();
        let source = projection.source.as_ref().map(|k| json!({"account": k.account.as_str(), "id": k.id.as_str()}));
        out!(
            "{}",
            json!({"kind": holder.kind.as_str(), "id": holder.id.as_str(), "properties": props, "source": source, "invoices": invoices})
        );
        return Ok(ExitCode::SUCCESS);
    }
    out!("{holder}");
    match (&projection.properties, &projection.source) {
        (Some(p), Some(source)) => {
            out!("  invoice amount     {} {}", p.amount.amount_string(), p.amount.currency);
            out!("  invoice recipient  {}", p.recipient);
            out!("  invoice number     {}", p.number.as_deref().unwrap_or("-"));
            out!("  invoice status     {}", p.status);
            out!("  invoice due date   {}", p.due_date.map(|d| d.to_string()).unwrap_or_else(|| "-".into()));
            out!("  from invoice       {}/{}", source.account, source.id);
        }
        _ if stored.is_empty() => {
            out!("  no invoices linked (link one with `invoiceflow {}s link {} INVOICE`)", holder.kind, holder.id)
        }
        _ => out!("  no invoice properties: no linked invoice is eligible"),
    }
    if !projection.invoices.is_empty() {
        out!("invoices:");
        for (key, verdict) in &projection.invoices {
            let c = status_of(key);
            out!(
                "  {:<20} {:<8} {:<15} {}",
                format!("{}/{}", key.account, key.id),
                c.and_then(|c| c.invoice.number.clone()).unwrap_or_else(|| "-".into()),
                c.map(|c| c.status.as_str()).unwrap_or("-"),
                if matches!(verdict, invoiceflow_rules::deal::Verdict::Used) {
                    format!("used: {}", verdict.explain())
                } else {
                    format!("not used: {}", verdict.explain())
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
