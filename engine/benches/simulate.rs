//! Simulate benchmark: 1,000,000 generated invoices with the four reminder workflows switched on,
//! imported into SQLite (not timed), then `invoiceflow simulate` over 90 days timed as a child
//! process, its timeline read through a pipe; prints firings/s, wall time and peak resident memory.
//!
//! Run: `cargo bench -p invoiceflow --bench simulate` (`BENCH_RECORDS=N` for another count;
//! `BENCH_KEEP=DIR` keeps the database and configuration in DIR, to profile the command again).
//! Targets on a 2-core machine: ≤ 5 s wall, peak RSS ≤ 500 MB.

use std::time::Instant;

mod common;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let count: u64 = std::env::var("BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return println!("cannot create a temporary directory: {e}"),
    };
    let kept = std::env::var_os("BENCH_KEEP").map(std::path::PathBuf::from);
    let dir_path = kept.clone().unwrap_or_else(|| dir.path().to_path_buf());
    if let Err(e) = std::fs::create_dir_all(&dir_path) {
        return println!("cannot create {}: {e}", dir_path.display());
    }
    let file = dir_path.join("records.jsonl");
    let started = Instant::now();
    if let Err(e) = common::generate(&file, count) {
        return println!("cannot generate records: {e}");
    }
    println!("generated {count} canonical invoices in {:.1} s", started.elapsed().as_secs_f64());
    let config = dir_path.join("invoiceflow.toml");
    let settings = format!(
        "database_url = \"sqlite://{}\"\n[company]\ntime_zone = \"America/New_York\"\n\
         [workflows.payment_due]\nenabled = true\n[workflows.vendor_payment]\nenabled = true\n\
         [workflows.bank_deposit]\nenabled = true\n[workflows.unsent_invoice]\nenabled = true\n",
        dir_path.join("bench.db").display()
    );
    if let Err(e) = std::fs::write(&config, settings) {
        return println!("cannot write the configuration: {e}");
    }
    let config = config.to_string_lossy().into_owned();
    let records = file.to_string_lossy().into_owned();
    match common::run(&["--config", &config, "--now", "2026-06-01", "import", &records], common::Out::Capture) {
        Ok(run) => println!("imported in {:.1} s ({})", run.seconds, run.stdout),
        Err(e) => return println!("import FAILED: {e}"),
    }
    let args = [
        "--config",
        &config,
        "--now",
        "2026-06-01",
        "simulate",
        "--from",
        "2026-06-01",
        "--to",
        "2026-08-29",
        "--json",
    ];
    // The timeline is read through a pipe and its lines counted, as a consumer would read it.
    match common::run(&args, common::Out::CountLines) {
        Ok(run) => {
            let firings = run.lines;
            println!(
                "simulate   90 days  {count:>9} invoices  {firings:>9} firings  {:>6.2} s  {:>9.0} firings/s  peak RSS {:>6.1} MB",
                run.seconds,
                firings as f64 / run.seconds,
                run.peak_kib as f64 / 1024.0
            );
        }
        Err(e) => println!("simulate FAILED: {e}"),
    }
}
