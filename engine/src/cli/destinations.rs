//! `invoiceflow destinations list|enable`: where actions go, and the destinations a peer's answer
//! disabled (Slack's `channel_not_found`, a webhook's HTTP 410) until an admin enables them again.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use invoiceflow::config::{Destination, Target};
use invoiceflow::store::Store;
use serde_json::json;

use super::Env;

/// What to do with the destinations.
#[derive(Debug, Subcommand)]
pub(crate) enum DestinationsCommand {
    /// The configured destinations, each enabled or disabled (since when, and why).
    List(ListArgs),
    /// Enable a destination a peer's answer disabled, once it is fixed; then `outbox retry` what
    /// failed meanwhile.
    Enable(NameArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The destination's name (`[destinations.NAME]`).
    name: String,
}

/// Where a destination goes, as safe to print: a URL's path and query hold its secret (Slack's
/// webhook token), so only the scheme and host are shown.
fn shown(target: &Target) -> String {
    match target {
        Target::File(path) => format!("file {}", path.display()),
        Target::Url { url, .. } => match url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split(['/', '?']).next().unwrap_or_default();
                format!("{scheme}://{host}/…")
            }
            None => "…".to_owned(),
        },
    }
}

pub(crate) async fn run<S: Store>(command: DestinationsCommand, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    match command {
        DestinationsCommand::List(args) => {
            let disabled = store.disabled_destinations().await?;
            for (name, d) in &env.config.destinations {
                let (kind, to) = match d {
                    Destination::Slack { target, .. } => ("slack", shown(target)),
                    Destination::Webhook { target, .. } => ("webhook", shown(target)),
                    Destination::Email { to } => ("email", to.join(", ")),
                };
                let off = disabled.iter().find(|x| &x.name == name);
                if args.json {
                    out!(
                        "{}",
                        json!({"name": name, "kind": kind, "to": to, "enabled": off.is_none(),
                            "disabled_at": off.map(|o| o.disabled_at), "reason": off.map(|o| &o.reason)})
                    );
                    continue;
                }
                let state = match off {
                    None => "enabled".to_owned(),
                    Some(o) => format!("DISABLED since {} — {}", o.disabled_at.format("%Y-%m-%d %H:%M UTC"), o.reason),
                };
                out!("{name:<16} {kind:<8} {to:<40} {state}");
            }
            Ok(ExitCode::SUCCESS)
        }
        DestinationsCommand::Enable(args) => {
            if !env.config.destinations.contains_key(&args.name) {
                anyhow::bail!("no destination {:?} in the configuration", args.name);
            }
            if store.enable_destination(&args.name).await? {
                out!(
                    "destination {} enabled; `invoiceflow outbox list --status dead` shows what failed meanwhile",
                    args.name
                );
            } else {
                out!("destination {} was not disabled", args.name);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
