//! What the engine's integration tests share: canonical records written through the store as an
//! import would, at the clock's instant; `invoiceflow run` as a child process; a Slack-like HTTP
//! receiver.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use invoiceflow::clock::Clock;
use invoiceflow::store::{Moment, Store};
use invoiceflow_rules::parse::{Incoming, Item, ParseContext, parse_value};
use invoiceflow_rules::{AccountName, Currency};
use serde_json::Value;

/// Parses canonical JSON records of company `account` (home currency USD), as received at the
/// clock's instant, and applies them with the clock's calendar. A refused record fails the test.
pub async fn import<S: Store>(store: &S, clock: &Clock, account: &str, values: &[Value]) {
    let now = clock.now.instant();
    let account = AccountName::new(account).unwrap();
    let usd = |_: &AccountName| Currency::USD;
    let ctx = ParseContext { account: &account, home_currency: &usd, received_at: now };
    let records: Vec<Incoming> = values
        .iter()
        .flat_map(|v| parse_value(v.clone(), &ctx))
        .map(|i| match i {
            Item::Record(r) => r,
            other => panic!("refused: {other:?}"),
        })
        .collect();
    store.apply(records, &Moment { now, calendar: clock }).await.unwrap();
}

// ---- `invoiceflow run` as a child process ----

/// The `invoiceflow run` child: its output collected as it comes, killed if the test fails.
pub struct Engine {
    /// The process.
    pub child: Child,
    /// Its HTTP API, `http://IP:PORT` once [`Engine::listening`] read it.
    pub base: String,
    /// What it printed so far.
    pub stdout: Arc<Mutex<String>>,
    /// What it logged so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Engine {
    /// `invoiceflow run` in `dir` with `config`, at 12:00 UTC on 2026-11-25, planning every
    /// `plan_every` seconds, its API on a free port of 127.0.0.1, logging at info, both streams
    /// piped: add what the test needs, then [`Engine::start`] it.
    pub fn command(dir: &std::path::Path, config: &str, plan_every: u64) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_invoiceflow"));
        command
            .args(["--config", config, "--now", "2026-11-25T12:00:00Z", "run"])
            .args(["--listen", "127.0.0.1:0", "--plan-every", &plan_every.to_string()])
            .current_dir(dir)
            .env_remove("INVOICEFLOW_CONFIG")
            .env_remove("INVOICEFLOW_DATABASE_URL")
            .env("INVOICEFLOW_LOG", "invoiceflow=info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    /// Collects the output of `child`, started with both streams piped.
    pub fn start(mut child: Child) -> Self {
        let collect = |stream: Box<dyn std::io::Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = Arc::clone(&text);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut text = sink.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self { child, base: String::new(), stdout, stderr }
    }

    /// Waits for the line saying where the HTTP API listens, and keeps its address in `base`.
    pub fn listening(mut self) -> Self {
        let line = self.wait_for(&self.stdout, "HTTP API on http://", Duration::from_secs(30));
        let address = line.split("http://").nth(1).unwrap().split_whitespace().next().unwrap();
        self.base = format!("http://{address}");
        self
    }

    /// Waits until `stream` holds a line containing `needle`, and returns that line.
    pub fn wait_for(&self, stream: &Mutex<String>, needle: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = stream.lock().unwrap().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                started.elapsed() < within,
                "no line with {needle:?} within {within:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Counts the lines of standard error holding `needle`.
    pub fn count_in_log(&self, needle: &str) -> usize {
        self.stderr.lock().unwrap().lines().filter(|l| l.contains(needle)).count()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status within 15 s.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "still running 15 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- a Slack-like receiver ----

/// A Slack-like HTTP receiver on 127.0.0.1, in a thread: each request answered with the next
/// scripted `(status, body)` (then `200 ok`), each body kept.
pub struct Receiver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Receiver {
    /// Listens, with `script` to answer.
    pub fn start(script: &[(u16, &str)]) -> Self {
        use std::io::{BufRead as _, BufReader, Read as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut script: std::collections::VecDeque<(u16, String)> =
            script.iter().map(|(s, b)| (*s, (*b).to_owned())).collect();
        let kept = std::sync::Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                kept.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                let (status, answer) = script.pop_front().unwrap_or((200, "ok".to_owned()));
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = reader.get_mut().write_all(response.as_bytes());
            }
        });
        Self { port, bodies }
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}
