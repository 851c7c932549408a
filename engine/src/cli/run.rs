//! `invoiceflow run`: the engine — statuses, rules, slots, reminder steps and the outbox, tick
//! after tick until SIGTERM or Ctrl-C (`--once`: one tick, then what it delivered).

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Duration;
use clap::Args;
use invoiceflow::clock::{Clock, Now};
use invoiceflow::dispatch::Dispatcher;
use invoiceflow::run::{Engine, Routes, Tick};
use invoiceflow::store::{DeliveryQuery, IntentQuery, Store};

use super::Env;

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

pub(crate) async fn run<S: Store>(args: RunArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let routes = Routes::new(&env.config)?;
    let rules = super::rules::runnable(&env.config)?;
    let node = args.node.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        format!("{}-{}", if host.is_empty() { "node" } else { &host }, std::process::id())
    });
    let engine = Engine {
        store,
        rules: rules.as_ref().map(|(host, rules)| (host, rules.as_slice())),
        workflows: &env.config.workflows,
        locale: env.config.rules.locale,
        routes: &routes,
        dispatcher: Dispatcher { node: node.clone(), lease: Duration::seconds(i64::from(args.lease)), batch: 100 },
    };
    let mut draw = jitter(u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15);
    if args.once {
        let delivered = DeliveryQuery {
            status: Some("delivered".into()),
            of: IntentQuery { limit: u32::MAX, ..Default::default() },
        };
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
        return Ok(ExitCode::SUCCESS);
    }
    tracing::info!(node = %node, "invoiceflow run: planning every {} s, dispatching every second", args.plan_every);
    let mut stop = Box::pin(shutdown());
    let started = (env.clock.now.instant(), std::time::Instant::now());
    let mut next_plan = std::time::Instant::now();
    let clock = || {
        let now = if env.fixed_now {
            // `--now`: the engine starts at that moment, and its clock runs from there.
            let elapsed = Duration::from_std(started.1.elapsed()).unwrap_or_else(|_| Duration::zero());
            Now::At(started.0 + elapsed)
        } else {
            Now::system()
        };
        Clock { now, companies: env.config.companies.clone() }
    };
    loop {
        if std::time::Instant::now() >= next_plan {
            let tick = engine.plan(&clock()).await.context("planning")?;
            if tick != Tick::default() {
                tracing::info!(?tick, "planned");
            }
            next_plan = std::time::Instant::now() + std::time::Duration::from_secs(args.plan_every);
        }
        let round = engine.dispatch(&clock, &mut draw).await.context("dispatching")?;
        if round.claimed > 0 {
            tracing::info!(?round, "dispatched");
        }
        tokio::select! {
            () = &mut stop => {
                tracing::info!(
                    "stopping: nothing is being delivered now; leases of unfinished work run out in {} s",
                    args.lease
                );
                return Ok(ExitCode::SUCCESS);
            }
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
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
