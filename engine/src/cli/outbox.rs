//! `invoiceflow outbox list|retry|cancel`: the deliveries waiting, made, given up or cancelled.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use invoiceflow::store::{DeliveryQuery, IntentQuery, Store};

use super::Env;

/// What to do with the outbox.
#[derive(Debug, Subcommand)]
pub(crate) enum OutboxCommand {
    /// The deliveries, oldest first, with their status and why.
    List(ListArgs),
    /// Try a delivery again now (a dead, expired or cancelled one too; not a delivered one).
    Retry(SeqArgs),
    /// Cancel a pending delivery. One being tried right now may still land.
    Cancel(CancelArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only in this status: pending, delivered, dead, expired, cancelled.
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SeqArgs {
    /// The delivery's number (the first column of `outbox list`).
    seq: i64,
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The delivery's number (the first column of `outbox list`).
    seq: i64,
    /// Why, kept with it.
    #[arg(long, default_value = "cancelled by hand")]
    reason: String,
}

const STATUSES: [&str; 5] = ["pending", "delivered", "dead", "expired", "cancelled"];

pub(crate) async fn run<S: Store>(command: OutboxCommand, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let now = env.clock.now.instant();
    match command {
        OutboxCommand::List(args) => {
            if let Some(status) = &args.status
                && !STATUSES.contains(&status.as_str())
            {
                anyhow::bail!("no status {status:?}: {}", STATUSES.join(", "));
            }
            let query = DeliveryQuery {
                status: args.status.clone(),
                of: IntentQuery { limit: args.limit, ..Default::default() },
            };
            for d in store.deliveries(&query).await? {
                if args.json {
                    out!("{}", serde_json::to_string(&d)?);
                    continue;
                }
                let when = match d.status.as_str() {
                    "pending" => format!("next {}", d.next_at.format("%Y-%m-%d %H:%M UTC")),
                    _ => String::new(),
                };
                let why = d.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
                let tries = if d.attempts == 1 { "1 attempt".to_owned() } else { format!("{} attempts", d.attempts) };
                out!(
                    "{:>6}  {:<9}  {:<12} {:<28} {:<30} {tries}  {when}{why}",
                    d.seq,
                    d.status,
                    d.channel,
                    d.intent.record.to_string(),
                    d.intent.rule,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry(args) => {
            if store.retry_delivery(args.seq, now).await? {
                out!("delivery {} is pending again", args.seq);
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!("no delivery {} to retry (unknown, delivered, or being tried right now)", args.seq)
            }
        }
        OutboxCommand::Cancel(args) => {
            if store.cancel_delivery(args.seq, &args.reason, now).await? {
                out!("delivery {} cancelled", args.seq);
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!("no pending delivery {} (unknown, or no longer pending)", args.seq)
            }
        }
    }
}
