//! Import benchmark: generates canonical records, then times `invoiceflow import` as a child
//! process on SQLite (and on PostgreSQL when `BENCH_DATABASE_URL` or `TEST_DATABASE_URL` names a
//! server), printing records/s and the child's peak resident memory.
//!
//! Run: `cargo bench -p invoiceflow --bench import` (1,000,000 records; `BENCH_RECORDS=N` for
//! another count). Targets on a 2-core machine: ≥ 50,000 records/s on SQLite, peak RSS ≤ 150 MB.

use std::path::Path;
use std::time::Instant;

mod common;

use common::{Run, generate};

fn import(database: &str, file: &Path) -> Result<Run, String> {
    let file = file.to_string_lossy();
    common::run(&["--database", database, "--now", "2026-11-25", "import", &file], common::Out::Capture)
}

fn report(backend: &str, pass: &str, count: u64, run: &Run) {
    println!(
        "{backend:<10} {pass:<10} {count:>9} records  {:>7.2} s  {:>9.0} records/s  peak RSS {:>6.1} MB   ({})",
        run.seconds,
        count as f64 / run.seconds,
        run.peak_kib as f64 / 1024.0,
        run.stdout
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
