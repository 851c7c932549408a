//! `invoiceflow quickbooks connect|status|sync`: connecting a company through Intuit's consent
//! page, the connected companies — connected or needing reconnection, last sync, lag, errors — and
//! a change-data-capture sweep run by hand.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use invoiceflow::clock::RunningClock;
use invoiceflow::quickbooks::connect::{self, CallbackServer, Connecting, LocalRedirect};
use invoiceflow::quickbooks::tokens::TokenKeeper;
use invoiceflow::quickbooks::{Companies, Watch, sync};
use invoiceflow::store::{ConnectionState, QuickBooksStore, Store};
use serde_json::json;

use super::Env;

/// What to do with the QuickBooks companies.
#[derive(Debug, Subcommand)]
pub(crate) enum QuickBooksCommand {
    /// Connect a company (again): print Intuit's consent address, wait for the browser to come
    /// back to the redirect URI, and store the company's tokens.
    Connect(ConnectArgs),
    /// Each configured company: connected or needing reconnection (and why), last sync, the
    /// webhook notifications waiting and since when, errors.
    Status(StatusArgs),
    /// Back-fill now, by change data capture, what changed since the last sync (or `--since`).
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The company (`[quickbooks.NAME]`); default: the only one with a client_id.
    company: Option<String>,
    /// Seconds to wait for the browser to come back from Intuit.
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
    /// The `code` of the address Intuit sent the browser to, when the redirect URI is not on
    /// this machine: exchanged at once, without listening.
    #[arg(long, value_name = "CODE", requires = "realm_id")]
    code: Option<String>,
    /// The `realmId` of that same address.
    #[arg(long, value_name = "ID", requires = "code")]
    realm_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The company (`[quickbooks.NAME]`); default: every company.
    company: Option<String>,
    /// From this time (RFC 3339, at most 30 days ago) instead of the last sync point.
    #[arg(long, value_name = "TIME")]
    since: Option<DateTime<Utc>>,
}

pub(crate) async fn run<S: Store + QuickBooksStore>(
    command: QuickBooksCommand,
    env: &Env,
    store: &S,
) -> anyhow::Result<ExitCode> {
    match command {
        QuickBooksCommand::Connect(args) => connect(args, env, store).await,
        QuickBooksCommand::Status(args) => status(&args, env, store).await,
        QuickBooksCommand::Sync(args) => sync_now(args, env, store).await,
    }
}

async fn connect<S: QuickBooksStore>(args: ConnectArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let account = args.company.as_deref().map(Env::parse_account).transpose()?;
    let company = Connecting::from_config(&env.config, account.as_ref())?;
    let who = format!("{} (realm {})", company.account, company.realm_id);
    let client = invoiceflow_connectors::http::client(true)?;
    let clock = if env.fixed_now {
        RunningClock::starting_at(env.clock.now.instant(), env.config.companies.clone())
    } else {
        RunningClock::system(env.config.companies.clone())
    };
    let tokens = match (args.code, args.realm_id) {
        (Some(code), Some(realm_id)) => {
            let consent = connect::Consent { code, realm_id };
            connect::finish(store, &client, &company, &consent, clock.clock().now.instant()).await?
        }
        _ => {
            let redirect = &company.app.redirect_uri;
            let state = connect::random_state()?;
            let url = company.app.authorization_url(&state);
            let Some(local) = LocalRedirect::of(redirect) else {
                out!(
                    "The redirect URI {redirect} is not on this machine (listening needs http://localhost:PORT/PATH),"
                );
                out!("so invoiceflow cannot read Intuit's answer itself. Open this address in a browser, sign in to");
                out!("QuickBooks and connect {who}:");
                out!("");
                out!("  {url}");
                out!("");
                out!("then copy `code` and `realmId` from the address the browser is sent to, and run:");
                out!("  invoiceflow quickbooks connect {} --code CODE --realm-id REALM_ID", company.account);
                return Ok(ExitCode::SUCCESS);
            };
            let server = CallbackServer::bind(&local).await?;
            out!("Open this address in a browser, sign in to QuickBooks and connect {who}:");
            out!("");
            out!("  {url}");
            out!("");
            out!("Waiting up to {} s for the browser to come back to {redirect} …", args.timeout);
            let timeout = std::time::Duration::from_secs(args.timeout);
            connect::by_browser(store, &client, &company, server, &state, timeout, &clock).await?
        }
    };
    out!(
        "{who}: connected; tokens stored; access token valid until {}",
        tokens.access_expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    Ok(ExitCode::SUCCESS)
}

async fn status<S: Store + QuickBooksStore>(args: &StatusArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let connections = store.connections().await?;
    let now = env.clock.now.instant();
    if env.config.quickbooks_api.is_empty() && !args.json {
        out!("no QuickBooks company is configured: add [quickbooks.NAME] with realm_id and client_id (see README)");
    }
    for (company, api) in &env.config.quickbooks_api {
        let c = connections.iter().find(|c| &c.company == company);
        let inbox = store.inbox_gauge(Some(&api.realm_id)).await?;
        let lag = inbox.oldest.map(|t| (now - t).num_seconds().max(0));
        let state = match (c.map(|c| c.state), &api.access_token) {
            (_, Some(_)) => "fixed token".to_owned(),
            (None, None) => "not connected".to_owned(),
            (Some(ConnectionState::Connected), None) => "connected".to_owned(),
            (Some(ConnectionState::NeedsReconnect), None) => {
                format!("NEEDS RECONNECT — {}", c.and_then(|c| c.reason.clone()).unwrap_or_default())
            }
        };
        if args.json {
            out!(
                "{}",
                json!({"company": company.as_str(), "realm_id": api.realm_id, "state": state,
                    "synced_through": c.and_then(|c| c.synced_through), "last_sync_at": c.and_then(|c| c.last_sync_at),
                    "last_webhook_at": c.and_then(|c| c.last_webhook_at), "pending_notifications": inbox.pending,
                    "lag_seconds": lag, "errors": c.map_or(0, |c| c.errors),
                    "last_error": c.and_then(|c| c.last_error.as_ref().map(|e| &e.0))})
            );
            continue;
        }
        let when =
            |t: Option<DateTime<Utc>>| t.map_or("never".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        out!("{company} (realm {}): {state}", api.realm_id);
        if api.oauth.is_some() && !matches!(c.map(|c| c.state), Some(ConnectionState::Connected)) {
            out!("  run `invoiceflow quickbooks connect {company}` to connect it");
        }
        out!(
            "  last sync {}; last webhook {}",
            when(c.and_then(|c| c.last_sync_at)),
            when(c.and_then(|c| c.last_webhook_at))
        );
        out!(
            "  {} notification(s) waiting{}",
            inbox.pending,
            lag.map_or(String::new(), |s| format!(", the oldest for {s} s"))
        );
        if let Some((error, at)) = c.and_then(|c| c.last_error.clone()) {
            out!("  {} error(s); last at {}: {error}", c.map_or(0, |c| c.errors), when(Some(at)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sync_now<S: Store + QuickBooksStore>(args: SyncArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let companies = Companies::from_config(&env.config)?;
    let chosen: Vec<_> = match &args.company {
        Some(name) => {
            let account =
                invoiceflow_rules::AccountName::new(name.as_str()).map_err(|e| anyhow::anyhow!("{name:?}: {e}"))?;
            vec![companies.by_name(&account).with_context(|| {
                format!("{name} is not a QuickBooks company invoiceflow can call: give [quickbooks.{name}] a realm_id and client_id (or access_token_env)")
            })?]
        }
        None => companies.iter().collect(),
    };
    if chosen.is_empty() {
        anyhow::bail!("no QuickBooks company to sync: give [quickbooks.NAME] a realm_id and client_id (see README)");
    }
    let client = invoiceflow_connectors::http::client(true)?;
    let keeper = TokenKeeper::default();
    let node = format!("sync-{}", std::process::id());
    let mut failed = false;
    for company in chosen {
        let bar =
            indicatif::ProgressBar::new_spinner().with_message(format!("{}: asking QuickBooks…", company.account));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let watch = Watch { store, client: &client, keeper: &keeper, node: &node };
        let swept = sync::sweep(&watch, company, &env.clock, args.since).await;
        bar.finish_and_clear();
        match swept {
            Ok(s) => {
                let received: Vec<String> =
                    s.received.iter().filter(|(_, n)| *n > 0).map(|(e, n)| format!("{n} {e}")).collect();
                let a = s.applied;
                out!(
                    "{}: since {}: received {}; {} new, {} updated, {} unchanged, {} stale{}",
                    company.account,
                    s.since.map_or("-".into(), |t| t.to_rfc3339()),
                    if received.is_empty() { "nothing".to_owned() } else { received.join(", ") },
                    a.imported,
                    a.updated,
                    a.unchanged,
                    a.stale,
                    if s.refused > 0 { format!("; {} refused (see the log)", s.refused) } else { String::new() }
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("{}: {e}", company.account);
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
