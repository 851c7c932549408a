//! Argument parsing and the shared set-up of every command: configuration, clock, store.

/// Prints a line to standard output; a closed pipe (`| head`) ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

mod actions;
mod destinations;
mod history;
mod holders;
mod import;
mod invoices;
mod outbox;
mod output;
mod quickbooks;
mod rules;
mod run;
mod tasks;
mod timeline;
mod workflows;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use invoiceflow::clock::{Clock, Now};
use invoiceflow::config::Config;
use invoiceflow::store::{AnyStore, Store};
use invoiceflow::with_store;
use invoiceflow_rules::{AccountName, HolderKind};

/// invoiceflow — watch the invoice properties of your deals as they change in QuickBooks Online,
/// and act on them.
#[derive(Debug, Parser)]
#[command(name = "invoiceflow", version, about, long_about = None, args_override_self = true)]
pub struct Args {
    /// Configuration file (default: none; every key has a default).
    #[arg(long, global = true, env = "INVOICEFLOW_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database URL, overriding the configuration: sqlite://PATH or postgres://…
    #[arg(long, global = true, env = "INVOICEFLOW_DATABASE_URL", value_name = "URL")]
    database: Option<String>,
    /// Work as if it were this moment: RFC 3339 (2026-11-25T09:00:00Z) or a date (2026-11-25,
    /// meaning that day in every company's time zone).
    #[arg(long, global = true, value_name = "TIME", value_parser = Now::parse)]
    now: Option<Now>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import records: JSON lines or JSON documents, canonical or QuickBooks API JSON.
    Import(import::ImportArgs),
    /// List invoices with their status today.
    Invoices(invoices::InvoicesArgs),
    /// A deal's invoice properties, and linking invoices to deals.
    #[command(subcommand)]
    Deals(holders::HolderCommand),
    /// A contact's invoice properties, and linking invoices to contacts.
    #[command(subcommand)]
    Contacts(holders::HolderCommand),
    /// A CRM company's invoice properties, and linking invoices to companies.
    #[command(subcommand)]
    Companies(holders::HolderCommand),
    /// The history of watched property changes.
    Changes(invoices::ChangesArgs),
    /// Record the status changes time made (sent → overdue when the due date passes) for today.
    Refresh,
    /// Create or upgrade the database schema.
    Migrate,
    /// What rules decided (action intents), and why: rule, version, change or schedule slot,
    /// and the record values they saw; then the failed evaluations.
    Actions(actions::ActionsArgs),
    /// Evaluate one rule on one record and say what it would do, and why (or why not).
    Explain(actions::ExplainArgs),
    /// The four standard reminder workflows and their effective settings.
    Workflows(workflows::WorkflowsArgs),
    /// What would fire between two dates — the workflows and the scheduled rules — using the
    /// stored data as the days pass, sending nothing.
    Simulate(workflows::SimulateArgs),
    /// Check the rule files: syntax, property names, destinations, schedules; a dry run of each.
    Check(rules::CheckArgs),
    /// Run the test cases written next to the rules (`NAME.test.toml`).
    Test(rules::DirArgs),
    /// The deliveries of what rules and workflows decided: list, retry, cancel.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Where actions go: list the destinations, enable one a peer's answer disabled.
    #[command(subcommand)]
    Destinations(destinations::DestinationsCommand),
    /// The QuickBooks companies: connecting one, their connection, sync and lag; a sync by hand.
    #[command(subcommand)]
    Quickbooks(quickbooks::QuickBooksCommand),
    /// The task manager: tasks made by rules, workflows or by hand — list, show, create, done,
    /// approve, reject.
    #[command(subcommand)]
    Tasks(tasks::TaskCommand),
    /// The engine: statuses, rules, schedules, reminder steps and the outbox, until SIGTERM.
    Run(run::RunArgs),
    /// What became of each decision: deliveries with their status and why, skipped steps and
    /// slots with why, and the provenance of each.
    History(history::HistoryArgs),
}

/// What every command works with.
pub(crate) struct Env {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    /// Whether `--now` was given: a running engine then starts at that moment and its clock
    /// advances with real time (tests and replays start from a known instant).
    pub(crate) fixed_now: bool,
}

impl Env {
    pub(crate) fn parse_account(text: &str) -> anyhow::Result<AccountName> {
        AccountName::new(text).map_err(|e| anyhow::anyhow!("company name {text:?} {e}"))
    }
}

/// Runs the parsed command; the exit code says whether anything was rejected.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(url) = args.database {
        config.database_url = url;
    }
    // Rules are checked and tested without a database.
    match &args.command {
        Command::Check(a) => return rules::check_command(a, &config).await,
        Command::Test(a) => return rules::test(a, &config),
        _ => {}
    }
    let clock = Clock { now: args.now.unwrap_or_else(Now::system), companies: config.companies.clone() };
    let store = AnyStore::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&config.database_url)))?;
    let env = Env { config, clock, fixed_now: args.now.is_some() };
    with_store!(&store, s => {
        s.migrate().await.context("cannot migrate the database")?;
        let code = dispatch(args.command, &env, s).await;
        s.close().await;
        code
    })
}

async fn dispatch<S: Store + invoiceflow::store::QuickBooksStore + Clone + 'static>(
    command: Command,
    env: &Env,
    store: &S,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Import(a) => import::run(a, env, store).await,
        Command::Invoices(a) => invoices::list(a, env, store).await,
        Command::Deals(c) => holders::run(HolderKind::Deal, c, env, store).await,
        Command::Contacts(c) => holders::run(HolderKind::Contact, c, env, store).await,
        Command::Companies(c) => holders::run(HolderKind::Company, c, env, store).await,
        Command::Changes(a) => invoices::changes(a, store).await,
        Command::Refresh => {
            let outcome = store.refresh(&env.clock.moment()).await?;
            out!("refreshed: {} status changes recorded", outcome.events);
            rules::evaluate_changes(env, store).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            out!("database {} is up to date", redact(&env.config.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Actions(a) => actions::list(a, store).await,
        Command::Workflows(a) => workflows::list(&a, env),
        Command::Simulate(a) => workflows::simulate(a, env, store).await,
        Command::Explain(a) => actions::explain(a, env, store).await,
        Command::Check(a) => rules::check_command(&a, &env.config).await,
        Command::Test(a) => rules::test(&a, &env.config),
        Command::Outbox(c) => outbox::run(c, env, store).await,
        Command::Destinations(c) => destinations::run(c, env, store).await,
        Command::Tasks(c) => tasks::run(c, env, store).await,
        Command::Quickbooks(c) => quickbooks::run(c, env, store).await,
        Command::Run(a) => run::run(a, env, store).await,
        Command::History(a) => history::run(a, store).await,
    }
}

/// A database URL without its password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
