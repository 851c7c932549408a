//! QuickBooks webhooks, end to end: signed notifications (one invoice each) posted to
//! `invoiceflow run` at `POST /v1/quickbooks/webhook`, queued durably and acknowledged, then
//! drained by the QuickBooks watcher — the named invoices fetched in batches from a fake QuickBooks
//! Online that keeps QuickBooks' limits (10 requests in flight, 10 a second, 500 a minute per
//! company; 429 past them) and answers each request after a realistic latency — and their change
//! (open → paid) stored. 10,000 changes per company and round: 10 then 50 clients for one company,
//! then 50 clients for two companies at once. Prints notifications acknowledged/s, the
//! acknowledgement's latency, the lag from a webhook's 200 to its change stored (p50, p99, max),
//! when the last change was stored, the QuickBooks queries made, and anything refused or lost.
//!
//! A change counts as stored when a read-only connection to the engine's SQLite database sees
//! its status event (polled every 10 ms, so a lag is over-stated by up to that much): the store's
//! own timestamps are the drain round's start, before the fetch.
//!
//! Run: `cargo bench -p invoiceflow --bench webhooks` (`BENCH_CHANGES=N` per company and round,
//! default 10,000; `BENCH_LATENCY_MS=N` the fake's time per request, default 150;
//! `BENCH_LOG_FILE=PATH` keeps the engine's log, `BENCH_LOG` its filter, default `invoiceflow=info`,
//! which the start sweep's line needs). Exits 1 when a webhook was refused, a change
//! lost, QuickBooks' limits broken, or a company's changes took more than 60 s to be stored.
//! Targets on a 2-core machine: ≥ 2,000 notifications acknowledged/s; 10,000 changes of a company
//! stored within 60 s of the first webhook (QuickBooks allows 10 requests a second: batching must
//! keep up).

mod common;

use common::{ms, percentile};
// The fake's unit-test modules compile here without their `#[test]` functions (no test harness).
#[allow(unused_imports, reason = "the fake's test modules, whose tests do not run in a benchmark")]
#[path = "../tests/fake_quickbooks/mod.rs"]
mod fake_quickbooks;

use std::collections::HashMap;
use std::io::{BufRead as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_quickbooks::{Endpoint, FakeQuickBooks, InvoiceSpec, Kind, SIGNATURE_HEADER, notification_body, sign};

const VERIFIER: &str = "bench-verifier-5b2e7d1c";

/// The companies: `[quickbooks.NAME]` and realm id.
const COMPANIES: [(&str, &str); 2] = [("acme", "9341453050298464"), ("beta", "4620816365196842")];

/// Each round: its clients and the companies (indexes into `COMPANIES`) it changes at once.
const ROUNDS: [(usize, &[usize]); 3] = [(10, &[0]), (50, &[0]), (50, &[0, 1])];

/// How often the store is looked at for changes applied.
const POLL: Duration = Duration::from_millis(10);

/// Targets.
const TARGET_ACKS_PER_SECOND: f64 = 2_000.0;
const TARGET_STORED_WITHIN: Duration = Duration::from_secs(60);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let number = |name: &str, default: u64| std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let changes = number("BENCH_CHANGES", 10_000) as usize;
    let latency = Duration::from_millis(number("BENCH_LATENCY_MS", 150));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return println!("cannot start tokio: {e}"),
    };
    match runtime.block_on(bench(changes, latency)) {
        Ok(true) => {}
        Ok(false) => {
            println!("webhooks bench FAILED (see above)");
            std::process::exit(1);
        }
        Err(e) => {
            println!("webhooks bench FAILED: {e}");
            std::process::exit(1);
        }
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// When each change was first seen stored, by (company, invoice id).
type Stored = Arc<Mutex<HashMap<(String, String), Instant>>>;

/// One webhook to post.
struct Change {
    company: usize,
    id: String,
    body: String,
    signature: String,
}

/// One webhook posted: which change, when it was sent and answered, and whether it was taken.
struct Sent {
    change: usize,
    sent: Instant,
    acked: Instant,
    ok: bool,
}

async fn bench(changes: usize, latency: Duration) -> Result<bool, Error> {
    // Every company gets `changes` fresh open invoices for each round it is in.
    let per_company: Vec<usize> =
        (0..COMPANIES.len()).map(|c| ROUNDS.iter().filter(|r| r.1.contains(&c)).count() * changes).collect();
    let fake = FakeQuickBooks::start().await;
    fake.enforce_limits(true);
    fake.set_latency(latency);
    // QuickBooks' clock an hour behind the engine's: whatever the fake stamps is in the past.
    fake.set_now(chrono::Utc::now() - chrono::Duration::hours(1));
    let mut tokens = Vec::new();
    for (c, (_, realm)) in COMPANIES.iter().enumerate() {
        fake.add_company(realm);
        for n in 1..=per_company[c] {
            let (id, number) = (n.to_string(), (1000 + n).to_string());
            let spec = InvoiceSpec {
                id: Some(&id),
                number: Some(&number),
                amount: "1250.00",
                balance: "1250.00",
                email_status: "EmailSent",
                ..Default::default()
            };
            fake.put(realm, Kind::Invoice, spec.json());
        }
        tokens.push(fake.grant(realm).access_token);
    }

    let dir = tempfile::tempdir()?;
    let database = dir.path().join("bench.db");
    let mut config = format!("database_url = \"sqlite://{}\"\n", database.display());
    for (c, (name, realm)) in COMPANIES.iter().enumerate() {
        config.push_str(&format!(
            "\n[quickbooks.{name}]\nrealm_id = \"{realm}\"\napi_base = \"{}\"\naccess_token_env = \"QBO_TOKEN_{c}\"\n\
             webhook_verifier_env = \"QBO_VERIFIER\"\n",
            fake.base_url()
        ));
    }
    let config_path = dir.path().join("invoiceflow.toml");
    std::fs::write(&config_path, config)?;
    let mut command = Command::new(common::BIN);
    command
        .args(["--config", &config_path.to_string_lossy(), "run", "--listen", "127.0.0.1:0", "--plan-every", "600"])
        .env("QBO_VERIFIER", VERIFIER)
        .env("INVOICEFLOW_API_TOKEN", "unused-here")
        .env("INVOICEFLOW_LOG", std::env::var("BENCH_LOG").unwrap_or_else(|_| "invoiceflow=info".into()))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (c, token) in tokens.iter().enumerate() {
        command.env(format!("QBO_TOKEN_{c}"), token);
    }
    let started = Instant::now();
    let mut engine = Engine(command.spawn()?);
    let log = engine.log()?;
    let stdout = engine.0.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let api = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).ok_or("no address printed")?;
    let url = format!("http://{api}/v1/quickbooks/webhook");

    // The sweep as the engine starts reads every invoice, open.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let lines = log.lock().map_err(|_| "poisoned")?.clone();
        if let Some(failed) = lines.iter().find(|l| l.contains("QuickBooks sweep failed")) {
            return Err(format!("the start sweep failed: {failed}").into());
        }
        if lines.iter().filter(|l| l.contains("QuickBooks swept")).count() >= COMPANIES.len() {
            break;
        }
        if Instant::now() > deadline {
            return Err("no \"QuickBooks swept\" within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&database).read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    let open = invoices(&pool, false).await?;
    println!(
        "fake QuickBooks: limits enforced (10 requests in flight, 10/s, 500/min per company; 429 past them), \
         {} ms per request; the engine's start sweep read {} open invoices in {:.1} s ({} requests; not timed)",
        latency.as_millis(),
        open.values().sum::<i64>(),
        started.elapsed().as_secs_f64(),
        fake.count(Endpoint::Any),
    );
    for (c, (name, _)) in COMPANIES.iter().enumerate() {
        let known = open.get(*name).copied().unwrap_or(0);
        if known != per_company[c] as i64 {
            return Err(format!("{name}: {known} open invoices after the start sweep, not {}", per_company[c]).into());
        }
    }

    let stored: Stored = Arc::default();
    let watching = tokio::spawn(watch_store(pool.clone(), Arc::clone(&stored)));
    let client = invoiceflow_connectors::http::client(true)?;
    let mut used = vec![0usize; COMPANIES.len()];
    let engine_stat = format!("/proc/{}/stat", engine.0.id());
    let mut cpu = (0.0, 0.0);
    let mut green = true;
    let mut rates = Vec::new();
    for (clients, companies) in ROUNDS {
        // Paid in QuickBooks a minute on; QuickBooks says so by webhook, one invoice a body.
        fake.advance(chrono::Duration::minutes(1));
        let stamp = fake.now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let mut round = Vec::with_capacity(changes * companies.len());
        for k in 0..changes {
            for &c in companies {
                let (realm, id) = (COMPANIES[c].1, (used[c] + k + 1).to_string());
                fake.update(realm, Kind::Invoice, &id, |i| i["Balance"] = serde_json::json!(0));
                let body = notification_body(realm, &[("Invoice", &id, "Update", &stamp)]);
                let signature = sign(VERIFIER, body.as_bytes());
                round.push(Change { company: c, id, body, signature });
            }
        }
        for &c in companies {
            used[c] += changes;
        }
        let round = Arc::new(round);
        let (logged, violations) = (fake.requests().len(), fake.limit_violations());
        let before = stored.lock().map_err(|_| "poisoned")?.len();

        let cpu_at_start = (cpu_seconds(&engine_stat), cpu_seconds("/proc/self/stat"));
        let first = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..clients {
            let (client, url, round) = (client.clone(), url.clone(), Arc::clone(&round));
            tasks.push(tokio::spawn(async move {
                let mut sent = Vec::with_capacity(round.len() / clients + 1);
                for (n, change) in round.iter().enumerate().skip(t).step_by(clients) {
                    let at = Instant::now();
                    let answer = client
                        .post(&url)
                        .header(SIGNATURE_HEADER, &change.signature)
                        .header("content-type", "application/json")
                        .body(change.body.clone())
                        .send()
                        .await;
                    let ok = match answer {
                        Ok(r) if r.status().is_success() => r.text().await.is_ok_and(|t| t.contains("\"queued\":1")),
                        _ => false,
                    };
                    sent.push(Sent { change: n, sent: at, acked: Instant::now(), ok });
                }
                sent
            }));
        }
        let mut sent = Vec::with_capacity(round.len());
        for t in tasks {
            sent.extend(t.await?);
        }
        let posting = first.elapsed().as_secs_f64();
        let key = |s: &Sent| (COMPANIES[round[s.change].company].0.to_owned(), round[s.change].id.clone());
        let expected = sent.iter().filter(|s| s.ok).count();
        let give_up = first + TARGET_STORED_WITHIN + Duration::from_secs(15);
        // Each round changes other invoices: the count of changes seen says when to look closer.
        while stored.lock().map_err(|_| "poisoned")?.len() < before + expected
            && Instant::now() < give_up
            && !watching.is_finished()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cpu.0 += cpu_seconds(&engine_stat) - cpu_at_start.0;
        cpu.1 += cpu_seconds("/proc/self/stat") - cpu_at_start.1;

        let at = stored.lock().map_err(|_| "poisoned")?.clone();
        let mut acks: Vec<Duration> = sent.iter().map(|s| s.acked - s.sent).collect();
        acks.sort();
        let refused = sent.len() - expected;
        let rate = sent.len() as f64 / posting;
        rates.push((clients, rate));
        let requests = fake.requests().split_off(logged);
        let throttled = requests.iter().filter(|r| r.status == 429).count();
        let violated = fake.limit_violations() - violations;
        let names: Vec<&str> = companies.iter().map(|&c| COMPANIES[c].0).collect();
        println!(
            "{clients} clients, {}: {} webhooks acknowledged in {posting:.2} s = {rate:.0}/s; ack p50 {:.1} ms p99 {:.1} ms; \
             {refused} refused; {throttled} answered 429, {violated} past QuickBooks' limits",
            names.join(" + "),
            sent.len(),
            ms(percentile(&acks, 50)),
            ms(percentile(&acks, 99)),
        );
        green &= refused == 0 && throttled == 0 && violated == 0;
        for &c in companies {
            let (name, realm) = COMPANIES[c];
            let mine: Vec<&Sent> = sent.iter().filter(|s| s.ok && round[s.change].company == c).collect();
            let mut lags: Vec<Duration> =
                mine.iter().filter_map(|s| at.get(&key(s)).map(|t| t.saturating_duration_since(s.acked))).collect();
            lags.sort();
            let last = mine.iter().filter_map(|s| at.get(&key(s))).max().map_or(Duration::ZERO, |t| *t - first);
            let queries =
                requests.iter().filter(|r| r.endpoint == Endpoint::Query && r.realm.as_deref() == Some(realm)).count();
            let lost = mine.len() - lags.len();
            println!(
                "  {name}: webhook 200 → change stored p50 {:.0} ms p99 {:.0} ms max {:.0} ms; all {} stored {:.2} s after \
                 the first webhook; {queries} queries ({:.0} invoices a query); {lost} lost",
                ms(percentile(&lags, 50)),
                ms(percentile(&lags, 99)),
                ms(lags.last().copied().unwrap_or_default()),
                lags.len(),
                last.as_secs_f64(),
                lags.len() as f64 / queries.max(1) as f64,
            );
            green &= lost == 0 && last <= TARGET_STORED_WITHIN;
        }
    }
    if watching.is_finished() {
        watching.await??;
        return Err("the store poller stopped".into());
    }
    watching.abort();

    let paid = invoices(&pool, true).await?;
    let mut totals = Vec::new();
    for (c, (name, _)) in COMPANIES.iter().enumerate() {
        let got = paid.get(*name).copied().unwrap_or(0);
        totals.push(format!("{name} {got} of {}", used[c]));
        green &= got == used[c] as i64;
    }
    println!("paid in the store: {}", totals.join(", "));
    let slowest = rates.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    println!(
        "targets: ≥ {TARGET_ACKS_PER_SECOND:.0} acknowledged/s — {} (slowest round {slowest:.0}/s); \
         each company's changes stored within {} s of its first webhook — {}",
        if slowest >= TARGET_ACKS_PER_SECOND { "met" } else { "MISSED" },
        TARGET_STORED_WITHIN.as_secs(),
        if green { "met" } else { "MISSED or failed (see above)" },
    );
    println!(
        "CPU seconds while webhooks were posted and drained: engine {:.1}, clients, fake QuickBooks and store poller {:.1}",
        cpu.0, cpu.1,
    );
    pool.close().await;
    drop(engine);
    Ok(green)
}

/// Invoices per company stored paid (`paid`) or not.
async fn invoices(pool: &sqlx::SqlitePool, paid: bool) -> Result<HashMap<String, i64>, Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT account, count(*) FROM records WHERE kind = 'invoice' AND (status = 'paid') = ?1 GROUP BY account",
    )
    .bind(paid)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Notes when each invoice's change to paid is first seen in the store, until aborted.
async fn watch_store(pool: sqlx::SqlitePool, stored: Stored) -> Result<(), Error> {
    let mut after = 0i64;
    loop {
        let at = Instant::now();
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, account, record_id FROM events \
             WHERE seq > ?1 AND property = 'status' AND new_value = 'paid' ORDER BY seq",
        )
        .bind(after)
        .fetch_all(&pool)
        .await?;
        if let Some(last) = rows.last() {
            after = last.0;
            let mut stored = stored.lock().map_err(|_| "poisoned")?;
            for (_, account, id) in rows {
                stored.entry((account, id)).or_insert(at);
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `invoiceflow run`, stopped (SIGTERM, then SIGKILL after 20 s) when dropped.
struct Engine(Child);

impl Engine {
    /// Collects the engine's log lines as they come (and copies them to `BENCH_LOG_FILE`).
    fn log(&mut self) -> Result<Arc<Mutex<Vec<String>>>, Error> {
        let stderr = self.0.stderr.take().ok_or("no stderr")?;
        let mut copy = match std::env::var_os("BENCH_LOG_FILE") {
            Some(path) => Some(std::fs::File::create(path)?),
            None => None,
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(file) = copy.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line);
                }
            }
        });
        Ok(lines)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User and system CPU seconds of the process whose `stat` file is `path`.
fn cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}
