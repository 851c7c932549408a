//! `invoiceflow run`: the engine — statuses, rules, slots, reminder steps and the outbox, tick
//! after tick until SIGTERM or Ctrl-C (`--once`: one tick, then what it delivered) — with its
//! HTTP API (records in, health, metrics) and the rules directory reloaded as it is edited.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Duration;
use clap::Args;
use invoiceflow::clock::RunningClock;
use invoiceflow::dispatch::Dispatcher;
use invoiceflow::rulebook::{LiveRules, Refreshed, Reloaded};
use invoiceflow::run::{Engine, Routes, Tick};
use invoiceflow::server::{self, ApiOptions};
use invoiceflow::store::{DeliveryQuery, IntentQuery, Store};
use tokio::sync::{Notify, watch};

use super::Env;

/// How long the requests in flight may take to finish once the engine is told to stop.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// One tick, then print what was delivered and stop (with `--now`, at that moment; without
    /// `--once`, `--now` is where the engine's clock starts, running on from there).
    #[arg(long)]
    once: bool,
    /// This node's name in leases and attempts (default: host name and process id).
    #[arg(long)]
    node: Option<String>,
    /// Seconds between planning passes (statuses, rules, slots, reminder steps); the outbox is
    /// dispatched every second.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    plan_every: u64,
    /// Serve the HTTP API on this address instead of `[server] listen` (default 127.0.0.1:8080);
    /// port 0 takes a free port. The address is printed once listening.
    #[arg(long, value_name = "IP:PORT", conflicts_with_all = ["no_server", "once"])]
    listen: Option<SocketAddr>,
    /// Serve no HTTP API (records then come in by `invoiceflow import` only). `--once` serves none
    /// either.
    #[arg(long)]
    no_server: bool,
    /// Seconds a node holds the deliveries it claims: one not finished by then (the node died)
    /// is taken over by any node, this one after a restart included.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    lease: u32,
}

/// A small, seeded source of jitter for retry times (no need for a cryptographic one).
fn jitter(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(crate) async fn run<S: Store + Clone + 'static>(args: RunArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let routes = Routes::new(&env.config)?;
    let node = args.node.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        format!("{}-{}", if host.is_empty() { "node" } else { &host }, std::process::id())
    });
    if !args.once {
        return run_until_stopped(args, env, store, &routes, node).await;
    }
    let rules = super::rules::runnable(&env.config)?;
    let engine = Engine {
        store,
        rules: rules.as_ref().map(|(host, rules)| (host, rules.as_slice())),
        workflows: &env.config.workflows,
        locale: env.config.rules.locale,
        routes: &routes,
        dispatcher: Dispatcher {
            node: node.clone(),
            lease: Duration::seconds(i64::from(args.lease)),
            batch: 100,
            concurrency: 32,
        },
    };
    let mut draw = jitter(u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15);
    let delivered =
        DeliveryQuery { status: Some("delivered".into()), of: IntentQuery { limit: u32::MAX, ..Default::default() } };
    let already: std::collections::HashSet<i64> =
        store.deliveries(&delivered).await?.into_iter().map(|d| d.seq).collect();
    let mut tick: Tick = engine.plan(&env.clock).await?;
    tick.dispatched = engine.dispatch(|| env.clock.clone(), &mut draw).await?;
    for d in store.deliveries(&delivered).await?.iter().filter(|d| !already.contains(&d.seq)) {
        let to = d.destination.clone().unwrap_or_else(|| super::actions::describe(&d.intent.action));
        out!("delivered {:<6} {:<40} ← {} on {}", d.channel, to, d.intent.rule, d.intent.record);
    }
    let r = tick.dispatched;
    out!(
        "tick: {} status changes, {} actions decided by rules, {} reminder steps; {} delivered, {} to retry, {} failed, {} cancelled",
        tick.refreshed,
        tick.decided,
        tick.steps,
        r.delivered,
        r.retrying,
        r.failed,
        r.cancelled
    );
    Ok(ExitCode::SUCCESS)
}

/// The engine until SIGTERM or Ctrl-C: a planning pass every `--plan-every` seconds (the rules
/// directory re-read first), the outbox every second, and — when posted records changed
/// something — the change-triggered rules and the outbox at once.
async fn run_until_stopped<S: Store + Clone + 'static>(
    args: RunArgs,
    env: &Env,
    store: &S,
    routes: &Routes,
    node: String,
) -> anyhow::Result<ExitCode> {
    // Before anything says the engine is up: SIGHUP's default action would end the process.
    let mut hangups = Hangups::new();
    let mut live = match LiveRules::open(&env.config)? {
        Some((live, loaded)) => {
            loaded.into_iter().for_each(log_reloaded);
            Some(live)
        }
        None => None,
    };
    let companies = env.config.companies.clone();
    let running = if env.fixed_now {
        // `--now`: the engine starts at that moment, and its clock runs from there.
        RunningClock::starting_at(env.clock.now.instant(), companies)
    } else {
        RunningClock::system(companies)
    };
    let wake = Arc::new(Notify::new());
    let (stop_server, server_stopped) = watch::channel(false);
    let mut server = if args.no_server {
        None
    } else {
        Some(start_server(&args, env, store, &running, &wake, server_stopped).await?)
    };
    let dispatcher =
        Dispatcher { node: node.clone(), lease: Duration::seconds(i64::from(args.lease)), batch: 100, concurrency: 32 };
    let mut draw = jitter(u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15);
    tracing::info!(node = %node, "invoiceflow run: planning every {} s, dispatching every second", args.plan_every);
    let mut stop = Box::pin(shutdown());
    let mut next_plan = std::time::Instant::now();
    let (mut woken, mut reread) = (false, false);
    loop {
        let clock = running.clock();
        let planning = std::time::Instant::now() >= next_plan;
        if let Some(live) = live.as_mut()
            && (planning || reread)
        {
            match live.refresh(reread) {
                Ok(refreshed) => log_refreshed(refreshed),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the rules directory: the rules running keep running")
                }
            }
        }
        let engine = Engine {
            store,
            rules: live.as_ref().map(|l| (l.host(), l.rules())),
            workflows: &env.config.workflows,
            locale: env.config.rules.locale,
            routes,
            dispatcher: dispatcher.clone(),
        };
        if planning {
            let tick = engine.plan(&clock).await.context("planning")?;
            if tick != Tick::default() {
                tracing::info!(?tick, "planned");
            }
            next_plan = std::time::Instant::now() + std::time::Duration::from_secs(args.plan_every);
        } else if woken && let Some((host, rules)) = engine.rules {
            let done = invoiceflow::evaluate::changes(store, host, rules, &clock, engine.locale)
                .await
                .context("evaluating changes")?;
            tracing::debug!(?done, "changes evaluated on a wake-up");
        }
        (woken, reread) = (false, false);
        let round = engine.dispatch(|| running.clock(), &mut draw).await.context("dispatching")?;
        if round.claimed > 0 {
            tracing::info!(?round, "dispatched");
        }
        tokio::select! {
            () = &mut stop => break,
            // Wakes while this pass ran left one permit: the next pass serves them all.
            () = wake.notified() => woken = true,
            () = hangups.next() => {
                tracing::info!("SIGHUP: reading the rules directory again");
                reread = true;
            }
            ended = async {
                match server.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => {
                let why = match ended {
                    Ok(Ok(())) => "it stopped".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                anyhow::bail!("the HTTP server stopped: {why}");
            }
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
    tracing::info!("stopping: nothing is being delivered now; leases of unfinished work run out in {} s", args.lease);
    let _ = stop_server.send(true);
    if let Some(task) = server {
        match tokio::time::timeout(DRAIN, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the HTTP server stopped with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server failed"),
            Err(_) => tracing::warn!("requests still in flight after {} s are dropped", DRAIN.as_secs()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Binds the API's address, prints it, and serves until `stopped` turns true.
async fn start_server<S: Store + Clone + 'static>(
    args: &RunArgs,
    env: &Env,
    store: &S,
    clock: &RunningClock,
    wake: &Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let config = &env.config.server;
    let token = config.token.load(&env.config.path, |var| std::env::var(var).ok())?;
    if token.is_none() {
        tracing::warn!(
            "no API token configured: POST /v1/records refuses every request (set INVOICEFLOW_API_TOKEN, \
             or [server] token_env or token_file)"
        );
    }
    let listen = args.listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (choose another address with --listen or [server] listen, or --no-server)")
    })?;
    let address = listener.local_addr().context("the address listened on")?;
    let options = ApiOptions {
        token,
        max_body: config.max_body,
        companies: env.config.companies.clone(),
        clock: clock.clone(),
        wake: Arc::clone(wake),
    };
    let router = server::router(store.clone(), options);
    let task = tokio::spawn(server::serve(listener, router, async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    out!("invoiceflow run: HTTP API on http://{address} (POST /v1/records, GET /healthz, GET /metrics)");
    Ok(task)
}

/// Logs what a refresh of the rules directory picked up.
fn log_refreshed(refreshed: Refreshed) {
    match refreshed {
        Refreshed::Rules(changes) => changes.into_iter().for_each(log_reloaded),
        Refreshed::Library(changes) => {
            tracing::info!("the rules library changed: every rule checked again");
            changes.into_iter().for_each(log_reloaded);
        }
        Refreshed::LibraryRejected(e) => {
            tracing::error!("the rules library does not compile: the previous library and every rule keep running\n{e}")
        }
    }
}

fn log_reloaded(change: Reloaded) {
    match change {
        Reloaded::Added { rule, version } => tracing::info!(%rule, %version, "rule added"),
        Reloaded::Updated { rule, from, to } if from == to => tracing::info!(%rule, version = %to, "rule recompiled"),
        Reloaded::Updated { rule, from, to } => tracing::info!(%rule, %from, %to, "rule updated"),
        Reloaded::Removed { rule } => tracing::info!(%rule, "rule removed"),
        Reloaded::Rejected { rule, kept, errors } => {
            let running = match &kept {
                Some(version) => format!("version {version} keeps running"),
                None => "not running".to_owned(),
            };
            tracing::error!(%rule, "rule {rule} does not compile: {running}\n{}", errors.join("\n"));
        }
    }
}

/// SIGHUP, as a stream of wake-ups (never, off Unix or when it cannot be listened to).
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn new() -> Self {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .inspect_err(
                    |e| tracing::warn!(error = %e, "cannot listen to SIGHUP: rules are re-read at each tick only"),
                )
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = self.signal.as_mut()
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
