//! `invoiceflow invoices` and `invoiceflow changes`.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Args;
use invoiceflow::store::{EventQuery, InvoiceQuery, Store};
use invoiceflow_rules::status::invoice_status;
use invoiceflow_rules::{Holder, HolderId, HolderKind, InvoiceStatus, RecordKey, RecordKind};

use super::output::{as_invoice, fit, invoice_json};
use super::{Env, holders::resolve};

#[derive(Debug, Args)]
pub(crate) struct InvoicesArgs {
    /// Only invoices with this status today: awaiting_send, sent, partially_paid, paid, overdue, voided.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<InvoiceStatus>,
    /// Only invoices linked to this deal.
    #[arg(long, value_name = "DEAL")]
    deal: Option<String>,
    /// Only this QuickBooks company's invoices.
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_status(text: &str) -> Result<InvoiceStatus, String> {
    InvoiceStatus::parse(text).ok_or_else(|| {
        let names: Vec<&str> = InvoiceStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("{text:?} is not a status; use one of {}", names.join(", "))
    })
}

const PAGE: u32 = 1000;

pub(crate) async fn list<S: Store>(args: InvoicesArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let holder = match &args.deal {
        Some(d) => Some(Holder {
            kind: HolderKind::Deal,
            id: HolderId::new(d.as_str()).map_err(|e| anyhow::anyhow!("deal id {d:?} {e}"))?,
        }),
        None => None,
    };
    let account = args.account.as_deref().map(Env::parse_account).transpose()?;
    let mut query = InvoiceQuery { holder, account, after: None, limit: PAGE };
    let mut shown = 0u64;
    if !args.json {
        out!(
            "{:<22} {:<10} {:<15} {:>14} {:>14} {:<10} {:<30} DEAL",
            "INVOICE",
            "NUMBER",
            "STATUS",
            "AMOUNT",
            "BALANCE",
            "DUE",
            "RECIPIENT"
        );
    }
    loop {
        let page = store.invoices(&query).await?;
        let Some(last) = page.last() else { break };
        query.after = Some((last.record.key().account.clone(), last.record.key().id.clone()));
        let keys: Vec<RecordKey> = page.iter().map(|s| s.record.key().clone()).collect();
        let mut holders: HashMap<RecordKey, Vec<Holder>> = HashMap::new();
        for (key, holder) in store.holders_of(&keys).await? {
            holders.entry(key).or_default().push(holder);
        }
        for stored in &page {
            let Some(inv) = as_invoice(stored) else { continue };
            let status = invoice_status(inv, env.clock.today_of(&inv.key.account));
            if args.status.is_some_and(|s| s != status) {
                continue;
            }
            let linked = holders.get(&inv.key).map(Vec::as_slice).unwrap_or_default();
            shown += 1;
            if args.json {
                out!("{}", invoice_json(inv, status, linked));
            } else {
                let deal =
                    linked.iter().find(|h| h.kind == HolderKind::Deal).map(|h| h.id.to_string()).unwrap_or_default();
                out!(
                    "{:<22} {:<10} {:<15} {:>14} {:>14} {:<10} {:<30} {}",
                    fit(&format!("{}/{}", inv.key.account, inv.key.id), 22),
                    fit(inv.number.as_deref().unwrap_or("-"), 10),
                    status.as_str(),
                    format!("{} {}", inv.amount.amount_string(), inv.amount.currency),
                    format!("{} {}", inv.balance.amount_string(), inv.balance.currency),
                    inv.due_date.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
                    fit(inv.recipient(), 30),
                    deal
                );
            }
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    if !args.json {
        out!("{shown} invoices");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct ChangesArgs {
    /// Only this invoice's changes (ID, or ACCOUNT/ID when ids repeat across companies).
    #[arg(long, value_name = "INVOICE")]
    record: Option<String>,
    /// The kind of record `--record` names.
    #[arg(long, default_value = "invoice", value_parser = ["invoice", "bill", "payment", "deposit"])]
    kind: String,
    /// At most this many, oldest first.
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn changes<S: Store>(args: ChangesArgs, store: &S) -> anyhow::Result<ExitCode> {
    let kind = RecordKind::parse(&args.kind).unwrap_or(RecordKind::Invoice);
    let record = match &args.record {
        Some(r) => Some(resolve(store, kind, r).await?.record.key().clone()),
        None => None,
    };
    let events = store.events(&EventQuery { record, after_seq: None, limit: args.limit }).await?;
    for e in &events {
        if args.json {
            out!(
                "{}",
                serde_json::json!({
                    "seq": e.seq,
                    "kind": e.record.kind.as_str(),
                    "account": e.record.account.as_str(),
                    "id": e.record.id.as_str(),
                    "property": e.property.as_str(),
                    "old": e.old,
                    "new": e.new,
                    "source_time": e.source_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "ingest_time": e.ingest_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                })
            );
        } else {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "∅".into());
            out!(
                "{}  {} {}/{}  {}: {} → {}  (source {})",
                e.ingest_time.format("%Y-%m-%d %H:%M:%S"),
                e.record.kind,
                e.record.account,
                e.record.id,
                e.property,
                show(&e.old),
                show(&e.new),
                e.source_time.format("%Y-%m-%d %H:%M:%S")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
