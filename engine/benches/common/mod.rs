//! What the benchmarks share: the canonical record generator and a child-process runner that
//! reads the child's peak resident memory.

#![allow(dead_code, reason = "each benchmark uses part of it")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");

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

/// Writes `count` canonical invoices (three companies, 50,000 deals) to `path`; returns its size.
pub fn generate(path: &Path, count: u64) -> std::io::Result<u64> {
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
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How a child run went.
pub struct Run {
    /// Wall time.
    pub seconds: f64,
    /// Peak resident memory, KiB.
    pub peak_kib: u64,
    /// Its standard output, trimmed (when captured).
    pub stdout: String,
    /// Lines of standard output (when counted).
    pub lines: u64,
}

/// Where a child's standard output goes.
pub enum Out {
    /// Kept, for a short output.
    Capture,
    /// Read through a pipe and counted by lines, not kept: for a long output.
    CountLines,
}

/// Runs the binary with `args`, sampling its peak memory; standard output is read while it runs.
pub fn run(args: &[&str], out: Out) -> Result<Run, String> {
    use std::io::Read as _;
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {BIN}: {e}"))?;
    let mut pipe = child.stdout.take().ok_or("no standard output")?;
    let reader = std::thread::spawn(move || -> std::io::Result<(Vec<u8>, u64)> {
        let mut kept = Vec::new();
        let mut lines = 0;
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = pipe.read(&mut buf)?;
            if n == 0 {
                return Ok((kept, lines));
            }
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            if matches!(out, Out::Capture) {
                kept.extend_from_slice(&buf[..n]);
            }
        }
    });
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
    let (kept, lines) = reader.join().map_err(|_| "the output reader stopped")?.map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("{args:?} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(Run { seconds, peak_kib: peak, stdout: String::from_utf8_lossy(&kept).trim().to_owned(), lines })
}

/// The `p`-th percentile (nearest rank) of `sorted`; zero when empty.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() * p).div_ceil(100)).saturating_sub(1).min(sorted.len() - 1)]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
