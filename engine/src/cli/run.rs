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
use invoiceflow::quickbooks::send::InvoiceSender;
use invoiceflow::quickbooks::tokens::TokenKeeper;
use invoiceflow::quickbooks::watcher::Watcher;
use invoiceflow::quickbooks::{Companies, Watch};
use invoiceflow::rulebook::{LiveRules, Refreshed, Reloaded};
use invoiceflow::run::{Engine, Routes, Tick};
use invoiceflow::server::{self, ApiOptions};
use invoiceflow::store::{DeliveryQuery, IntentQuery, Store};
use invoiceflow_connectors::Connector;
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

/// How this node dispatches, from the arguments and the configuration.
fn dispatcher(args: &RunArgs, env: &Env, node: String) -> Dispatcher {
    Dispatcher {
        node,
        lease: Duration::seconds(i64::from(args.lease)),
        batch: 100,
        concurrency: 32,
        alerts: invoiceflow::run::alert_route(&env.config),
    }
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

pub(crate) async fn run<S: Store + invoiceflow::store::QuickBooksStore + Clone + 'static>(
    args: RunArgs,
    env: &Env,
    store: &S,
) -> anyhow::Result<ExitCode> {
    let routes = Routes::new(&env.config)?;
    let node = args.node.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        format!("{}-{}", if host.is_empty() { "node" } else { &host }, std::process::id())
    });
    if !args.once {
        return run_until_stopped(args, env, store, &routes, node).await;
    }
    let rules = super::rules::runnable(&env.config)?;
    let quickbooks = Companies::from_config(&env.config)?;
    let (client, keeper) = (invoiceflow_connectors::http::client(true)?, TokenKeeper::default());
    let sender =
        InvoiceSender { watch: Watch { store, client: &client, keeper: &keeper, node: &node }, companies: &quickbooks };
    let engine = Engine {
        store,
        rules: rules.as_ref().map(|(host, rules)| (host, rules.as_slice())),
        workflows: &env.config.workflows,
        locale: env.config.rules.locale,
        routes: &routes,
        dispatcher: dispatcher(&args, env, node.clone()),
        quickbooks: (!quickbooks.is_empty()).then_some(&sender as &dyn Connector),
    };
    let mut draw = jitter(u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15);
    let delivered =
        DeliveryQuery { status: Some("delivered".into()), of: IntentQuery { limit: u32::MAX, ..Default::default() } };
    let already: std::collections::HashSet<i64> =
        store.deliveries(&delivered).await?.into_iter().map(|d| d.seq).collect();
    let mut tick: Tick = engine.plan(&env.clock).await?;
    tick.dispatched = engine.dispatch(|| env.clock.clone(), &mut draw, || true).await?;
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

/// The engine until SIGTERM or Ctrl-C, as loops side by side sharing the store:
///
/// - the planner: a planning pass every `--plan-every` seconds (the rules directory re-read
///   first) and — as soon as posted records changed something — the change-triggered rules, a
///   page of changes at a time;
/// - the dispatcher: the outbox, as soon as the planner decided something and every second;
/// - the QuickBooks watcher (with companies configured): webhook notifications fetched as they
///   arrive, change-data-capture sweeps on their schedule; what it applies wakes the planner;
/// - the store's upkeep.
///
/// On a stop, the planner stops, the dispatcher finishes the round under way (claiming no other)
/// within [`FINISH`] — past that, the deliveries it still holds are released for another node —
/// and the HTTP API lets its requests finish within [`DRAIN`].
async fn run_until_stopped<S: Store + invoiceflow::store::QuickBooksStore + Clone + 'static>(
    args: RunArgs,
    env: &Env,
    store: &S,
    routes: &Routes,
    node: String,
) -> anyhow::Result<ExitCode> {
    // Before anything says the engine is up: SIGHUP's and SIGTERM's default actions would end the
    // process.
    let hangups = Hangups::new();
    let shutdown = Shutdown::new();
    let live = match LiveRules::open(&env.config)? {
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
    let inbox = Arc::new(Notify::new());
    let outbox = Notify::new();
    let quickbooks = Companies::from_config(&env.config)?;
    let client = invoiceflow_connectors::http::client(true)?;
    let keeper = TokenKeeper::default();
    let (stop, stopped) = watch::channel(false);
    let server = if args.no_server {
        None
    } else {
        Some(start_server(&args, env, store, &running, (&wake, &inbox), stopped.clone()).await?)
    };
    let dispatcher = dispatcher(&args, env, node.clone());
    tracing::info!(node = %node, "invoiceflow run: planning every {} s, dispatching as work is decided", args.plan_every);
    let signal = async {
        shutdown.wait().await;
        tracing::info!("stopping: no new work is claimed; the deliveries under way finish");
        let _ = stop.send(true);
        Ok(())
    };
    let planning = Planner {
        args: &args,
        env,
        store,
        routes,
        dispatcher: &dispatcher,
        running: &running,
        wake: &wake,
        outbox: &outbox,
    }
    .run(live, hangups, server, stopped.clone());
    let sender =
        InvoiceSender { watch: Watch { store, client: &client, keeper: &keeper, node: &node }, companies: &quickbooks };
    let sending = (!quickbooks.is_empty()).then_some(&sender as &dyn Connector);
    let dispatching = dispatch_loop(env, store, routes, &running, (&dispatcher, sending), &outbox, stopped.clone());
    let upkeep = maintain(store, stopped.clone());
    let watcher = Watcher {
        watch: Watch { store, client: &client, keeper: &keeper, node: &node },
        companies: &quickbooks,
        clock: &running,
        inbox: &inbox,
        changed: &wake,
        alerts: dispatcher.alerts.as_ref(),
    };
    let watching = async {
        watcher.run(stopped.clone()).await;
        Ok(())
    };
    let ended = tokio::try_join!(signal, planning, dispatching, upkeep, watching);
    let _ = stop.send(true);
    let released = store.release(&node).await.unwrap_or(0);
    if released > 0 {
        tracing::warn!(released, "deliveries left unfinished are released for another node");
    }
    let server = ended?.1;
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

/// How long the deliveries under way may take to finish once the engine is told to stop (an
/// attempt times out after 15 s).
const FINISH: std::time::Duration = std::time::Duration::from_secs(20);

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// What the planning loop works with.
struct Planner<'a, S> {
    args: &'a RunArgs,
    env: &'a Env,
    store: &'a S,
    routes: &'a Routes,
    dispatcher: &'a Dispatcher,
    running: &'a RunningClock,
    wake: &'a Notify,
    outbox: &'a Notify,
}

impl<S: Store> Planner<'_, S> {
    /// Plans until stopped; returns the HTTP server's task, to be drained.
    async fn run(
        self,
        mut live: Option<LiveRules>,
        mut hangups: Hangups,
        mut server: Option<ServerTask>,
        mut stopped: watch::Receiver<bool>,
    ) -> anyhow::Result<Option<ServerTask>> {
        let mut next_plan = tokio::time::Instant::now();
        let (mut woken, mut reread) = (false, false);
        let watching = stopped.clone();
        while !*stopped.borrow() {
            let clock = self.running.clock();
            let planning = tokio::time::Instant::now() >= next_plan;
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
                store: self.store,
                rules: live.as_ref().map(|l| (l.host(), l.rules())),
                workflows: &self.env.config.workflows,
                locale: self.env.config.rules.locale,
                routes: self.routes,
                dispatcher: self.dispatcher.clone(),
                quickbooks: None,
            };
            let mut more = false;
            if planning {
                let tick = engine.plan(&clock).await.context("planning")?;
                if tick != Tick::default() {
                    tracing::info!(?tick, "planned");
                }
                if tick.decided + tick.steps > 0 {
                    self.outbox.notify_one();
                }
                next_plan = tokio::time::Instant::now() + std::time::Duration::from_secs(self.args.plan_every);
            } else if woken && let Some((host, rules)) = engine.rules {
                let (done, rest) = invoiceflow::evaluate::changes_page(self.store, host, rules, &clock, engine.locale)
                    .await
                    .context("evaluating changes")?;
                if done.intents > 0 {
                    self.outbox.notify_one();
                }
                more = rest;
            }
            (woken, reread) = (more, false);
            if more {
                // More changes wait than a page: evaluate the next at once.
                continue;
            }
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                // Wakes while this pass ran left one permit: the next pass serves them all.
                () = self.wake.notified() => woken = true,
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
                    server = None;
                    let why = match ended {
                        // Stopped with the engine: it drained its requests.
                        Ok(Ok(())) if *watching.borrow() => break,
                        Ok(Ok(())) => "it stopped".to_owned(),
                        Ok(Err(e)) => e.to_string(),
                        Err(e) => e.to_string(),
                    };
                    anyhow::bail!("the HTTP server stopped: {why}");
                }
                () = tokio::time::sleep_until(next_plan) => {}
            }
        }
        Ok(server)
    }
}

/// Delivers the outbox until stopped: when the planner decided something, and every second.
async fn dispatch_loop<S: Store>(
    env: &Env,
    store: &S,
    routes: &Routes,
    running: &RunningClock,
    (dispatcher, quickbooks): (&Dispatcher, Option<&dyn Connector>),
    outbox: &Notify,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut draw = jitter(u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15);
    let engine = Engine {
        store,
        rules: None,
        workflows: &env.config.workflows,
        locale: env.config.rules.locale,
        routes,
        dispatcher: dispatcher.clone(),
        quickbooks,
    };
    let watching = stopped.clone();
    while !*stopped.borrow() {
        let overdue = async {
            let mut s = stopped.clone();
            let _ = s.wait_for(|stop| *stop).await;
            tokio::time::sleep(FINISH).await;
        };
        tokio::select! {
            round = engine.dispatch(|| running.clock(), &mut draw, || !*watching.borrow()) => {
                let round = round.context("dispatching")?;
                if round.claimed > 0 {
                    tracing::info!(?round, "dispatched");
                }
            }
            () = overdue => {
                tracing::warn!("deliveries still under way {} s after the stop are abandoned", FINISH.as_secs());
                break;
            }
        }
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            () = outbox.notified() => {}
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
    Ok(())
}

/// The store's upkeep ([`Store::maintain`]) until stopped: every 100 ms while the database is
/// being written, every 250 ms otherwise (a burst of writes fills SQLite's WAL in about half a
/// second). A failure is logged and tried again; the work goes on
/// without it.
async fn maintain<S: Store>(store: &S, mut stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut busy = false;
    loop {
        let pause = std::time::Duration::from_millis(if busy { 100 } else { 250 });
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
        busy = store.maintain().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "store upkeep failed; tried again in a second");
            false
        });
    }
}

/// Binds the API's address, prints it, and serves until `stopped` turns true.
async fn start_server<S: Store + invoiceflow::store::QuickBooksStore + Clone + 'static>(
    args: &RunArgs,
    env: &Env,
    store: &S,
    clock: &RunningClock,
    (wake, inbox): (&Arc<Notify>, &Arc<Notify>),
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
        webhooks: webhook_options(env, inbox)?,
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

/// The webhook endpoint's verifier tokens, read now (a missing one names its key), and the watcher's
/// inbox to wake; none configured: the endpoint stays off.
fn webhook_options(env: &Env, inbox: &Arc<Notify>) -> anyhow::Result<Option<server::WebhookOptions>> {
    let mut verifiers = Vec::new();
    for (company, api) in &env.config.quickbooks_api {
        if let Some(source) = &api.webhook_verifier {
            let token = source
                .read()
                .map_err(|reason| anyhow::anyhow!("quickbooks.{company}.webhook_verifier_env: {reason}"))?;
            verifiers.push((api.realm_id.clone(), token));
        }
    }
    Ok((!verifiers.is_empty()).then(|| server::WebhookOptions { verifiers, wake: Arc::clone(inbox) }))
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

/// SIGTERM and SIGINT (Ctrl-C), listened to from the moment it is made: a stop asked while the
/// engine starts is still graceful.
struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::terminate())
                .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
                .inspect_err(|e| tracing::warn!(error = %e, "cannot listen to SIGTERM and SIGINT"))
                .ok();
            Self { signals }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves on SIGTERM or Ctrl-C.
    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
