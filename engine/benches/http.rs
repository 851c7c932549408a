//! The core path, end to end: a record change arrives over HTTP (`POST /v1/records`), a rule sees
//! the invoice's status become paid, and a Slack post reaches a receiver on 127.0.0.1 — with the
//! change, the rule's decision and the delivery persisted in SQLite on the way. Clients post one
//! change per request, 10 then 50 at a time; prints changes/s, the answer's latency and the
//! end-to-end latency (post sent → Slack post received), p50 and p99, and any post lost.
//!
//! Run: `cargo bench -p invoiceflow --bench http` (`BENCH_CHANGES=N` per round, default 20,000;
//! `BENCH_DUMP=PATH` writes each change's timings to `PATH.10` and `PATH.50`).
//! Target on a 2-core machine: ≥ 2,000 changes/s on SQLite, p99 ≤ 50 ms at 10 clients, none lost.

mod common;

use common::{ms, percentile};

use std::collections::HashMap;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RULE: &str = "name = \"Payment received\"\non = { change = \"status\", to = \"paid\" }\n\
then = '''\nslack(\"finance\", `paid #${invoice.number}`)\n'''\n";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let changes: usize = std::env::var("BENCH_CHANGES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return println!("cannot start tokio: {e}"),
    };
    if let Err(e) = runtime.block_on(bench(changes)) {
        println!("http bench FAILED: {e}");
    }
}

type Received = Arc<Mutex<HashMap<u64, Instant>>>;

async fn bench(changes: usize) -> Result<(), Box<dyn std::error::Error>> {
    // The Slack-like receiver: when each post arrived, by invoice number.
    let received: Received = Arc::default();
    let kept = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let kept = Arc::clone(&kept);
            async move {
                let at = Instant::now();
                if let Some(n) = body.split('#').nth(1).and_then(|t| t.trim_end_matches(['"', '}']).parse().ok()) {
                    kept.lock().map(|mut k| k.insert(n, at)).ok();
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("rules"))?;
    if std::env::var_os("BENCH_NO_RULES").is_none() {
        std::fs::write(dir.path().join("rules/payment-received.toml"), RULE)?;
    }
    let config = dir.path().join("invoiceflow.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"sqlite://{}\"\n[destinations.finance]\nslack = \"http://{hook}/hook\"\n\
             allow_private = true\nper_second = 1000000\n",
            dir.path().join("bench.db").display()
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    let rounds = [10usize, 50];
    let total = changes * rounds.len();
    let mut records = String::with_capacity(total * 200);
    for i in 0..total {
        records.push_str(&invoice(i, "1250.00", "2026-11-01T10:00:00Z"));
        records.push('\n');
    }
    let file = dir.path().join("invoices.jsonl");
    std::fs::write(&file, records)?;
    let imported = common::run(&["--config", &config, "import", &file.to_string_lossy()], common::Out::Capture)?;
    println!("imported {total} unpaid invoices in {:.1} s (not timed)", imported.seconds);

    let wrap: Vec<String> =
        std::env::var("BENCH_WRAP").map(|w| w.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    let mut command = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(common::BIN);
            c
        }
        None => Command::new(common::BIN),
    };
    let mut child = command
        .args(["--config", &config, "run", "--listen", "127.0.0.1:0", "--plan-every", "600"])
        .env("INVOICEFLOW_API_TOKEN", "bench-token")
        .env("INVOICEFLOW_LOG", std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(match std::env::var_os("BENCH_LOG_FILE") {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        })
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let api = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).ok_or("no address printed")?;
    let url = format!("http://{api}/v1/records");
    let client = invoiceflow_connectors::http::client(true)?;
    // The first planning pass reads the import's changes; the API answers meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;

    for (round, clients) in rounds.into_iter().enumerate() {
        let first = round * changes;
        let per_client = changes / clients;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut sent = Vec::with_capacity(per_client);
                for k in 0..per_client {
                    let n = first + c * per_client + k;
                    let body = invoice(n, "0.00", "2026-11-25T10:00:00Z");
                    let t0 = Instant::now();
                    let answer = client
                        .post(&url)
                        .bearer_auth("bench-token")
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await;
                    let ok = matches!(&answer, Ok(r) if r.status().is_success());
                    sent.push((n as u64, t0, t0.elapsed(), ok));
                }
                sent
            }));
        }
        let mut sent = Vec::with_capacity(changes);
        for t in tasks {
            sent.extend(t.await?);
        }
        let posting = started.elapsed().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(20);
        let expected = sent.iter().filter(|s| s.3).count();
        while Instant::now() < deadline
            && sent.iter().filter(|s| received.lock().map(|r| r.contains_key(&s.0)).unwrap_or(false)).count() < expected
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = received.lock().map_err(|_| "poisoned")?.clone();
        let mut answers: Vec<Duration> = sent.iter().map(|s| s.2).collect();
        let mut ends: Vec<Duration> = sent.iter().filter_map(|s| got.get(&s.0).map(|at| *at - s.1)).collect();
        let last = sent.iter().filter_map(|s| got.get(&s.0)).max().map_or(0.0, |at| (*at - started).as_secs_f64());
        if let Some(path) = std::env::var_os("BENCH_DUMP") {
            // Per change: sent (ms after the round started), answered after, received after.
            let mut rows = String::from("sent_ms,answer_ms,end_ms\n");
            for s in &sent {
                let end = got.get(&s.0).map_or(f64::NAN, |at| ms(*at - s.1));
                rows.push_str(&format!("{:.2},{:.2},{end:.2}\n", ms(s.1 - started), ms(s.2)));
            }
            std::fs::write(format!("{}.{clients}", path.to_string_lossy()), rows)?;
        }
        answers.sort();
        ends.sort();
        let failed = sent.len() - expected;
        println!(
            "{clients} clients: {} changes posted in {posting:.2} s = {:.0} changes/s; all delivered after {last:.2} s = {:.0}/s end to end; \
             answer p50 {:.1} ms p99 {:.1} ms; change → Slack post p50 {:.1} ms p99 {:.1} ms; {} posts refused, {} lost",
            sent.len(),
            sent.len() as f64 / posting,
            ends.len() as f64 / last.max(f64::EPSILON),
            ms(percentile(&answers, 50)),
            ms(percentile(&answers, 99)),
            ms(percentile(&ends, 50)),
            ms(percentile(&ends, 99)),
            failed,
            expected - ends.len(),
        );
    }
    let cpu = |path: String| -> f64 {
        let stat = std::fs::read_to_string(path).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
        ticks / 100.0
    };
    println!(
        "CPU seconds: engine {:.1}, clients and receiver {:.1}",
        cpu(format!("/proc/{}/stat", child.id())),
        cpu("/proc/self/stat".into())
    );
    // SIGTERM: a graceful stop (and a profiler wrapping the engine writes its report).
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    Ok(())
}

/// Invoice `n`, sent, with `balance` left, as of `updated_at`.
fn invoice(n: usize, balance: &str, updated_at: &str) -> String {
    format!(
        r#"{{"type":"invoice","id":"b{n}","account":"acme","number":"{n}","customer":"Customer {}","amount":"1250.00","balance":"{balance}","currency":"USD","txn_date":"2026-11-01","due_date":"2026-12-01","email_status":"EmailSent","updated_at":"{updated_at}"}}"#,
        n % 500
    )
}
