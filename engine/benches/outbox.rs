//! Outbox benchmark: deliveries per second from the SQLite outbox to a signed-webhook receiver on
//! 127.0.0.1 — each one leased, signed, posted over HTTP, answered 204, and recorded with its
//! attempt row, as `invoiceflow run` does it.
//!
//! Run: `cargo bench -p invoiceflow --bench outbox` (`BENCH_DELIVERIES=N`, default 20,000).
//! Target on a 2-core machine: ≥ 5,000 deliveries/s on SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use invoiceflow::clock::{Clock, Now};
use invoiceflow::config::Config;
use invoiceflow::dispatch::{Dispatcher, Round};
use invoiceflow::run::{Engine, Routes};
use invoiceflow::store::{NewIntent, SqliteStore, Store};
use invoiceflow_rules::script::{Action, Cause, Intent};
use invoiceflow_rules::{AccountName, RecordId, RecordKey, RecordKind};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let count: u64 = std::env::var("BENCH_DELIVERIES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return println!("cannot start tokio: {e}"),
    };
    if let Err(e) = runtime.block_on(bench(count)) {
        println!("outbox bench FAILED: {e}");
    }
}

async fn bench(count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("secret"), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    let path = dir.path().join("invoiceflow.toml");
    std::fs::write(
        &path,
        format!(
            "[destinations.sink]\nwebhook = \"http://{addr}/hook\"\nsecret_file = \"secret\"\nallow_private = true\n"
        ),
    )?;
    let config = Config::load(Some(&path))?;
    let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    store.migrate().await?;
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")?.to_utc();
    let filled = Instant::now();
    let account = AccountName::new("acme-us")?;
    for page in 0..count.div_ceil(1000) {
        let intents: Vec<NewIntent> = (page * 1000..((page + 1) * 1000).min(count))
            .map(|n| {
                Ok(NewIntent {
                    key: format!("bench:{n}"),
                    intent: Intent {
                        rule: "payment-received".into(),
                        version: "1".into(),
                        cause: Cause::Manual,
                        record: RecordKey::new(RecordKind::Invoice, account.clone(), RecordId::new(n.to_string())?)
                            .into(),
                        seen: serde_json::from_value(serde_json::json!({"status": "paid"}))?,
                        action: Action::Webhook {
                            destination: "sink".into(),
                            payload: serde_json::json!({"invoice": n.to_string(), "status": "paid"}),
                        },
                    },
                })
            })
            .collect::<Result<_, Box<dyn std::error::Error>>>()?;
        store.save_evaluations("bench", i64::try_from(page)?, &intents, &[], now).await?;
    }
    println!("{count} deliveries in the outbox in {:.1} s (not timed)", filled.elapsed().as_secs_f64());

    let routes = Routes::new(&config)?;
    let engine = Engine {
        quickbooks: None,
        store: &store,
        rules: None,
        workflows: &config.workflows,
        locale: config.rules.locale,
        routes: &routes,
        dispatcher: Dispatcher {
            node: "bench".into(),
            lease: Duration::seconds(60),
            batch: 100,
            concurrency: 32,
            alerts: None,
        },
    };
    let clock = Clock { now: Now::At(now), companies: config.companies.clone() };
    let started = Instant::now();
    let mut total = Round::default();
    while total.delivered + total.failed + total.retrying < count {
        let round = engine.dispatch(|| clock.clone(), || 0.5, || true).await?;
        if round.claimed == 0 {
            break;
        }
        total += round;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "dispatched {} deliveries in {seconds:.2} s: {:.0} deliveries/s (target ≥ 5,000); {} retrying, {} failed; the receiver got {}",
        total.delivered,
        total.delivered as f64 / seconds,
        total.retrying,
        total.failed,
        received.load(Ordering::Relaxed)
    );
    Ok(())
}
