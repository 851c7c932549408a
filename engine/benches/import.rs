//! Import benchmark: generates canonical records, then times `invoiceflow import` as a child
//! process on SQLite (and on PostgreSQL when `BENCH_DATABASE_URL` or `TEST_DATABASE_URL` names a
//! server), printing records/s and the child's peak resident memory.
//!
//! Run: `cargo bench -p invoiceflow --bench import` (1,000,000 records; `BENCH_RECORDS=N` for
//! another count). Targets on a 2-core machine: ≥ 50,000 records/s on SQLite, peak RSS ≤ 150 MB.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");

/// A deterministic generator (SplitMix64): the same count always gives the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn cents(c: u64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

fn generate(path: &Path, count: u64) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(7);
    let base = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    for i in 1..=count {
        let amount = 5_000 + rng.below(2_000_000);
        let balance = match rng.below(10) {
            0..=1 => 0,
            2 => amount / 2,
            _ => amount,
        };
        let txn = base + chrono::Duration::days(rng.below(330) as i64);
        let due = txn + chrono::Duration::days([15, 30, 30, 60][rng.below(4) as usize]);
        let currency = ["USD", "USD", "USD", "EUR", "CAD"][rng.below(5) as usize];
        let email = ["EmailSent", "EmailSent", "NeedToSend", "NotSet"][rng.below(4) as usize];
        let customer = rng.below(20_000);
        writeln!(
            out,
            r#"{{"id":"inv-{i:07}","account":"realm-{}","number":"{}","deal_id":"deal-{:05}","customer":"Customer {customer}","recipient":"ap{customer}@example.com","amount":"{}","balance":"{}","currency":"{currency}","txn_date":"{txn}","due_date":"{due}","email_status":"{email}","updated_at":"{}T{:02}:{:02}:00Z"}}"#,
            1 + rng.below(3),
            1000 + i,
            rng.below(50_000),
            cents(amount),
            cents(balance),
            txn + chrono::Duration::days(1),
            rng.below(24),
            rng.below(60),
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Peak resident memory of a running process, in KiB (`VmHWM`), read from /proc.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Run {
    seconds: f64,
    peak_kib: u64,
    summary: String,
}

fn import(database: &str, file: &Path) -> Result<Run, String> {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["--database", database, "--now", "2026-11-25", "import"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {BIN}: {e}"))?;
    let mut peak = 0;
    loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("import failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(Run { seconds, peak_kib: peak, summary: String::from_utf8_lossy(&output.stdout).trim().to_owned() })
}

fn report(backend: &str, pass: &str, count: u64, run: &Run) {
    println!(
        "{backend:<10} {pass:<10} {count:>9} records  {:>7.2} s  {:>9.0} records/s  peak RSS {:>6.1} MB   ({})",
        run.seconds,
        count as f64 / run.seconds,
        run.peak_kib as f64 / 1024.0,
        run.summary
    );
}

fn bench(backend: &str, database: &str, file: &Path, count: u64) {
    for pass in ["first", "re-import"] {
        match import(database, file) {
            Ok(run) => report(backend, pass, count, &run),
            Err(e) => {
                println!("{backend:<10} {pass:<10} FAILED: {e}");
                return;
            }
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let count: u64 = std::env::var("BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return println!("cannot create a temporary directory: {e}"),
    };
    let file = dir.path().join("records.jsonl");
    let started = Instant::now();
    match generate(&file, count) {
        Ok(bytes) => println!(
            "generated {count} canonical records ({:.0} MB) in {:.1} s",
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        ),
        Err(e) => return println!("cannot generate records: {e}"),
    }
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    bench("sqlite", &sqlite, &file, count);
    match std::env::var("BENCH_DATABASE_URL").or_else(|_| std::env::var("TEST_DATABASE_URL")) {
        Ok(url) => match fresh_postgres_database(&url) {
            Ok(db_url) => bench("postgres", &db_url, &file, count),
            Err(e) => println!("postgres   skipped: {e}"),
        },
        Err(_) => println!("postgres   skipped: neither BENCH_DATABASE_URL nor TEST_DATABASE_URL is set"),
    }
}

/// Recreates the database `invoiceflow_bench` on the server `url` names; returns its URL.
fn fresh_postgres_database(url: &str) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let admin = invoiceflow::store::PgStore::connect(url).await.map_err(|e| e.to_string())?;
        admin.raw_execute("DROP DATABASE IF EXISTS invoiceflow_bench").await.map_err(|e| e.to_string())?;
        admin.raw_execute("CREATE DATABASE invoiceflow_bench").await.map_err(|e| e.to_string())?;
        admin.close().await;
        Ok::<(), String>(())
    })?;
    let (base, _) = url.rsplit_once('/').ok_or_else(|| format!("cannot find the database name in {url}"))?;
    Ok(format!("{base}/invoiceflow_bench"))
}
