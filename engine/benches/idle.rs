//! Idle memory: `invoiceflow run` on the example configuration (its rules, its destinations in
//! local files, the HTTP API listening), a few seconds after it started and with nothing to do;
//! prints its resident memory.
//!
//! Run: `cargo bench -p invoiceflow --bench idle` (the release build), or the build to deploy:
//! `cargo build --profile dist -p invoiceflow && BENCH_BIN=target/dist/invoiceflow cargo bench -p
//! invoiceflow --bench idle`. Target: ≤ 30 MB.

mod common;

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Err(e) = idle() {
        println!("idle bench FAILED: {e}");
    }
}

fn idle() -> Result<(), Box<dyn std::error::Error>> {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let dir = tempfile::tempdir()?;
    let status = Command::new("cp").arg("-r").arg(examples.join("rules")).arg(dir.path()).status()?;
    if !status.success() {
        return Err("cannot copy the example rules".into());
    }
    let config = dir.path().join("invoiceflow.toml");
    std::fs::copy(examples.join("invoiceflow.toml"), &config)?;
    let config = config.to_string_lossy().into_owned();
    let data = examples.join("data").to_string_lossy().into_owned();
    common::run(&["--config", &config, "import", &data], common::Out::Capture)?;
    // A relative BENCH_BIN is the workspace's (cargo runs benches in the package's directory).
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = std::env::var("BENCH_BIN").map_or_else(|_| common::BIN.into(), |b| workspace.join(b));
    let bin = std::fs::canonicalize(&bin)?;
    let mut child = Command::new(&bin)
        .args(["--config", &config, "run", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("INVOICEFLOW_API_TOKEN", "bench-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    std::thread::sleep(Duration::from_secs(5));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    let field =
        |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_default();
    println!(
        "{}: invoiceflow run, idle 5 s after start (example configuration, HTTP API on): RSS {}, peak {} (target ≤ 30 MB)",
        bin.display(),
        field("VmRSS:"),
        field("VmHWM:")
    );
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
