//! The engine as child processes, for the crash and multi-node tests: ten thousand payment
//! reminders falling due at once, `invoiceflow run` started (and SIGKILLed) on SQLite or on a
//! private PostgreSQL schema, what its sink received and what its outbox says.
//!
//! The workload: 10,000 invoices of company `acme` (UTC) across seven customers, sent, unpaid, due
//! 2026-11-28, so that the payment-due workflow's first stage (3 days before, at 09:00) falls due
//! for every one of them on 2026-11-25 at 09:00: one email each, written by the `[email] file`
//! sink as a JSON line carrying its idempotency key and attempt number. The workflow is switched
//! on by a pass at 08:59 (nothing of the past is sent); the engines' clocks then start at 09:00:30
//! and run with real time, a restarted engine's from where the first one's would be now.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");

/// Invoices, hence reminders to deliver.
pub const REMINDERS: usize = 10_000;

/// How long a test waits for every reminder to be delivered before it fails.
pub const DEADLINE: Duration = Duration::from_secs(180);

const CUSTOMERS: usize = 7;
const IMPORTED_AT: &str = "2026-11-25T08:00:00Z";
const SWITCHED_ON_AT: &str = "2026-11-25T08:59:00Z";
/// Where the engines' clocks start: just after the step, due at 09:00 UTC.
const STARTS_AT: &str = "2026-11-25T09:00:30Z";

/// A small seeded generator (xorshift64*): the random moments, replayable from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The seed: `INVOICEFLOW_TEST_SEED` replays a run; otherwise drawn from the clock.
pub fn seed() -> u64 {
    std::env::var("INVOICEFLOW_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    })
}

/// A connection of the test's own to the engines' database.
enum Db {
    Sqlite(SqlitePool),
    Postgres { pool: PgPool, admin: PgPool, schema: String },
}

/// The same query on either backend, every row decoded as `$row`.
macro_rules! fetch {
    ($db:expr, $row:ty, $sql:expr $(, $bind:expr)*) => {
        match $db {
            Db::Sqlite(pool) => sqlx::query_as::<_, $row>($sql)$(.bind($bind))*.fetch_all(pool).await,
            Db::Postgres { pool, .. } => sqlx::query_as::<_, $row>($sql)$(.bind($bind))*.fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("query {:?}: {e}", $sql))
    };
}

/// One attempt row of the outbox (`delivery_attempts`), with its delivery's key.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub key: String,
    pub attempt: i32,
    pub node: String,
    pub outcome: String,
}

/// A temporary directory (configuration, records, engine logs), one for the sink, and a database
/// holding the workload, its reminders not yet due.
pub struct Workload {
    files: Option<Files>,
    root: PathBuf,
    sink: PathBuf,
    config: PathBuf,
    database: String,
    db: Db,
    expected: BTreeSet<String>,
    /// When the engines' clocks started at [`STARTS_AT`].
    origin: Option<Instant>,
    /// `SQLite` or `PostgreSQL`, for messages.
    pub backend: &'static str,
}

/// The temporary directories, removed at the end of a passing test.
struct Files {
    dir: TempDir,
    sink_dir: TempDir,
}

impl Workload {
    /// The workload in a SQLite file.
    pub async fn sqlite() -> Self {
        let dir = TempDir::new().expect("temporary directory");
        let database = format!("sqlite://{}", dir.path().join("invoiceflow.db").display());
        let options = SqliteConnectOptions::from_str(&database).unwrap().busy_timeout(Duration::from_secs(30));
        // Opened at its first query, once the import has made the file.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_lazy_with(options);
        Self::prepare(dir, database, "SQLite", Db::Sqlite(pool))
    }

    /// The workload in a schema of its own on `TEST_DATABASE_URL`; `None` (the test is skipped)
    /// without it.
    pub async fn postgres(test: &str) -> Option<Self> {
        let (admin, schema, database) = postgres_schema(test).await?;
        let options = PgConnectOptions::from_str(&std::env::var("TEST_DATABASE_URL").unwrap())
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let pool = PgPoolOptions::new().max_connections(2).connect_with(options).await.unwrap();
        let dir = TempDir::new().expect("temporary directory");
        Some(Self::prepare(dir, database, "PostgreSQL", Db::Postgres { pool, admin, schema }))
    }

    /// Writes the configuration (email to a file in [`sink_dir`]) and the invoices into `dir`,
    /// imports them and switches the workflow on.
    fn prepare(dir: TempDir, database: String, backend: &'static str, db: Db) -> Self {
        let sink_dir = sink_dir();
        let root = dir.path().to_path_buf();
        let sink = sink_dir.path().join("email.jsonl");
        let config = root.join("invoiceflow.toml");
        let toml = format!(
            "[company]\ntime_zone = \"UTC\"\n\n[email]\nfile = {}\n\n[workflows.payment_due]\nenabled = true\n",
            Value::String(sink.display().to_string())
        );
        std::fs::write(&config, toml).unwrap();
        let mut records = String::new();
        let mut expected = BTreeSet::new();
        for n in 0..REMINDERS {
            let id = (n + 1).to_string();
            let customer = n % CUSTOMERS;
            let invoice = json!({
                "id": id, "account": "acme", "number": format!("INV-{id:0>5}"),
                "customer": format!("Customer {customer}"), "recipient": format!("ap{customer}@example.com"),
                "amount": format!("{}.{:02}", 100 + n % 900, n % 100), "txn_date": "2026-10-29",
                "due_date": "2026-11-28", "email_status": "EmailSent", "updated_at": "2026-10-29T15:00:00Z",
            });
            records.push_str(&invoice.to_string());
            records.push('\n');
            expected.insert(format!("workflow:payment_due:invoice acme/{id}:day-3:2026-11-25:0"));
        }
        let file = root.join("invoices.jsonl");
        std::fs::write(&file, records).unwrap();
        let w = Self {
            files: Some(Files { dir, sink_dir }),
            root,
            sink,
            config,
            database,
            db,
            expected,
            origin: None,
            backend,
        };
        let out = w.cli(&["--now", IMPORTED_AT, "import", &file.display().to_string()]);
        assert!(out.starts_with(&format!("imported {REMINDERS}, updated 0")), "import: {out}");
        let out = w.cli(&["--now", SWITCHED_ON_AT, "run", "--once"]);
        assert!(out.contains("0 reminder steps; 0 delivered"), "the pass switching the workflow on: {out}");
        w
    }

    /// The keys the reminders must be delivered under, computed from the invoices generated
    /// (workflow, record, step, nominal local date, action).
    pub fn expected(&self) -> &BTreeSet<String> {
        &self.expected
    }

    /// The JSON-lines file the engines deliver the emails to.
    pub fn sink_path(&self) -> PathBuf {
        self.sink.clone()
    }

    /// Starts `invoiceflow run --node NODE --lease LEASE`, its clock at [`STARTS_AT`] plus the
    /// time since the first engine started, its output in `NODE.log`.
    pub fn spawn(&mut self, node: &str, lease: u32) -> Engine {
        let origin = *self.origin.get_or_insert_with(Instant::now);
        let starts: DateTime<Utc> = STARTS_AT.parse().unwrap();
        let now = starts + chrono::Duration::from_std(origin.elapsed()).unwrap();
        let log = std::fs::File::create(self.log_path(node)).expect("engine log");
        let child = Command::new(BIN)
            .args(["--config", &self.config.display().to_string(), "--database", &self.database])
            .args(["--now", &now.to_rfc3339_opts(SecondsFormat::Micros, true)])
            .args(["run", "--no-server", "--node", node, "--lease", &lease.to_string()])
            .current_dir(&self.root)
            .env_remove("INVOICEFLOW_CONFIG")
            .env_remove("INVOICEFLOW_DATABASE_URL")
            .env("INVOICEFLOW_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start invoiceflow run");
        Engine { node: node.to_owned(), child }
    }

    fn log_path(&self, node: &str) -> PathBuf {
        self.root.join(format!("{node}.log"))
    }

    /// The keys of the deliveries node `node` holds a lease on and has not finished: after the
    /// node is killed, those it may have been sending.
    pub async fn leased_by(&self, node: &str) -> BTreeSet<String> {
        let rows = fetch!(
            &self.db,
            (String,),
            "SELECT i.key FROM deliveries d JOIN intents i ON i.seq = d.intent_seq \
             WHERE d.status = 'pending' AND d.lease_owner = $1",
            node
        );
        rows.into_iter().map(|(k,)| k).collect()
    }

    /// Deliveries in the outbox, and how many of them are delivered.
    pub async fn progress(&self) -> (i64, i64) {
        let rows = fetch!(
            &self.db,
            (i64, i64),
            "SELECT count(*), coalesce(sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) FROM deliveries"
        );
        rows[0]
    }

    /// Every attempt the outbox recorded.
    pub async fn attempts(&self) -> Vec<AttemptRow> {
        fetch!(
            &self.db,
            (String, i32, String, String),
            "SELECT i.key, a.attempt, a.node, a.outcome FROM delivery_attempts a \
             JOIN intents i ON i.seq = a.intent_seq ORDER BY a.seq"
        )
        .into_iter()
        .map(|(key, attempt, node, outcome)| AttemptRow { key, attempt, node, outcome })
        .collect()
    }

    /// `invoiceflow outbox list --json`: the outbox as a user sees it.
    pub fn outbox_list(&self) -> Vec<Value> {
        let out = self.cli(&["outbox", "list", "--json", "--limit", "1000000"]);
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
    }

    /// Runs `invoiceflow --config CONFIG --database DATABASE ARGS…` to success; its standard output.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(["--config", &self.config.display().to_string(), "--database", &self.database])
            .args(args)
            .current_dir(&self.root)
            .env_remove("INVOICEFLOW_CONFIG")
            .env_remove("INVOICEFLOW_DATABASE_URL")
            .env_remove("INVOICEFLOW_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run invoiceflow");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "invoiceflow {args:?} in {}: {}\n{stdout}\n{}",
            self.root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Waits until the outbox holds the [`REMINDERS`] deliveries, all delivered, while `engines`
    /// run (one that exits fails the test); reads `sink` meanwhile. Fails past [`DEADLINE`].
    pub async fn wait_until_delivered(&self, engines: &mut [&mut Engine], sink: &mut Sink) {
        let started = Instant::now();
        loop {
            sink.read();
            let (total, delivered) = self.progress().await;
            if total == REMINDERS as i64 && delivered == total {
                return;
            }
            for engine in engines.iter_mut() {
                engine.assert_running(self);
            }
            assert!(
                started.elapsed() < DEADLINE,
                "not everything delivered after {DEADLINE:?}: {delivered} of {total} deliveries delivered, \
                 {} sink lines\n{}",
                sink.lines.len(),
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where the files are, and the end of each engine's log: for failure messages.
    pub fn report(&self) -> String {
        let mut text = format!(
            "{} workload in {} (database {}, sink {})",
            self.backend,
            self.root.display(),
            self.database,
            self.sink.display()
        );
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .map(|d| {
                d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension() == Some("log".as_ref())).collect()
            })
            .unwrap_or_default();
        logs.sort();
        for log in logs {
            let content = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            text.push_str(&format!("\n--- {} (last lines) ---\n", log.display()));
            text.push_str(&lines[lines.len().saturating_sub(12)..].join("\n"));
        }
        text
    }

    /// Closes the connections; on PostgreSQL drops the schema. (A failed test keeps both the
    /// directory and the schema, for a look.)
    pub async fn finish(self) {
        match &self.db {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres { pool, admin, schema } => {
                pool.close().await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
                    .execute(admin)
                    .await
                    .unwrap();
                admin.close().await;
            }
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(files) = self.files.take()
        {
            eprintln!("kept for a look: {} and {}", files.dir.keep().display(), files.sink_dir.keep().display());
            if let Db::Postgres { schema, .. } = &self.db {
                eprintln!("and PostgreSQL schema {schema}");
            }
        }
    }
}

/// Makes a schema of its own for `test` on `TEST_DATABASE_URL`: an admin pool, the schema's name,
/// and a database URL whose connections use it. `None`, with the usual message, without the URL.
pub async fn postgres_schema(test: &str) -> Option<(PgPool, String, String)> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL not set ({test} on PostgreSQL)");
        return None;
    };
    let schema = format!("{test}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    let admin = PgPoolOptions::new().max_connections(1).connect_with(PgConnectOptions::from_str(&url).unwrap()).await;
    let admin = admin.unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL {url}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\""))).execute(&admin).await.unwrap();
    // libpq's `options`: every connection of the engine starts in the schema.
    let separator = if url.contains('?') { '&' } else { '?' };
    let database = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    Some((admin, schema, database))
}

/// Where the sink's file goes: in memory (`/dev/shm`) where there is such a place. The sink syncs
/// each line to disk (`sync_data`), which matters to a machine that loses power, not to a process
/// killed (the kernel keeps what it wrote) — and costs 3 to 4 ms a line on the project's machine,
/// more than the engine's own work per delivery on SQLite.
fn sink_dir() -> TempDir {
    TempDir::new_in("/dev/shm").or_else(|_| TempDir::new()).expect("temporary directory for the sink")
}

/// An `invoiceflow run` child process; killed (SIGKILL) when dropped.
pub struct Engine {
    pub node: String,
    child: Child,
}

impl Engine {
    /// SIGKILL, and reaped.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Fails the test with the engine's log if it has exited.
    #[track_caller]
    pub fn assert_running(&mut self, workload: &Workload) {
        let exited: Option<ExitStatus> = self.child.try_wait().expect("child status");
        if let Some(status) = exited {
            panic!("engine {} exited by itself ({status})\n{}", self.node, workload.report());
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line the sink received.
#[derive(Debug, Clone)]
pub struct Line {
    pub key: String,
    pub attempt: u64,
}

/// The sink file, read as it grows.
pub struct Sink {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    pub lines: Vec<Line>,
}

impl Sink {
    pub fn new(path: PathBuf) -> Self {
        Self { path, offset: 0, partial: Vec::new(), lines: Vec::new() }
    }

    /// Reads the lines appended since the last call; the number of lines so far.
    pub fn read(&mut self) -> usize {
        let Ok(mut file) = std::fs::File::open(&self.path) else { return 0 };
        file.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut bytes = Vec::new();
        self.offset += file.read_to_end(&mut bytes).unwrap() as u64;
        self.partial.extend_from_slice(&bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&raw[..end]);
            let number = self.lines.len() + 1;
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} line {number} is not JSON ({e}): {text}", self.path.display()));
            let key = value["key"].as_str().unwrap_or_else(|| panic!("line {number} without a key: {text}"));
            let attempt =
                value["attempt"].as_u64().unwrap_or_else(|| panic!("line {number} without an attempt: {text}"));
            self.lines.push(Line { key: key.to_owned(), attempt });
        }
        self.lines.len()
    }
}

/// A node killed, and what it may have been sending then.
#[derive(Debug, Clone)]
pub struct Killed {
    pub node: String,
    /// Since the first engine started.
    pub at: Duration,
    /// Sink lines when it was killed.
    pub lines: usize,
    /// The deliveries it held a lease on, unfinished.
    pub in_flight: BTreeSet<String>,
}

/// What [`verify`] found.
#[derive(Debug)]
pub struct Verified {
    /// Lines in the sink.
    pub lines: usize,
    /// Lines repeating a key already received: re-sends of an in-flight attempt.
    pub duplicates: usize,
    /// Deliveries recorded per node (its attempt rows).
    pub by_node: BTreeMap<String, usize>,
}

/// Checks what the sink received and what the outbox says once everything is delivered:
///
/// - the keys received are exactly the expected ones: none lost, none unexpected;
/// - a key received more than once was in flight (leased, unfinished) at a kill, once per repeat
///   at most, and carries the same attempt number as the first time (the attempt never recorded,
///   re-sent): no second delivery;
/// - the outbox (`outbox list --json`) holds exactly the expected deliveries, all delivered after
///   one attempt, and its attempt log one successful attempt each.
pub async fn verify(w: &Workload, sink: &Sink, kills: &[Killed]) -> Verified {
    let expected = w.expected();
    assert_eq!(expected.len(), REMINDERS);
    let received: BTreeSet<&str> = sink.lines.iter().map(|l| l.key.as_str()).collect();
    let lost: Vec<&String> = expected.iter().filter(|k| !received.contains(k.as_str())).collect();
    let unexpected: Vec<&&str> = received.iter().filter(|k| !expected.contains(**k)).collect();
    assert!(
        lost.is_empty() && unexpected.is_empty(),
        "the sink's keys are not the expected ones: {} lost (first: {:?}), {} unexpected (first: {:?})\n{}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>(),
        unexpected.len(),
        unexpected.iter().take(5).collect::<Vec<_>>(),
        w.report()
    );

    let mut first: BTreeMap<&str, u64> = BTreeMap::new();
    let mut repeats: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, line) in sink.lines.iter().enumerate() {
        match first.get(line.key.as_str()) {
            None => {
                first.insert(&line.key, line.attempt);
            }
            Some(attempt) => {
                assert_eq!(
                    *attempt,
                    line.attempt,
                    "line {}: key {} received again with another attempt number: a second delivery, not a \
                     re-send of the same attempt\n{}",
                    n + 1,
                    line.key,
                    w.report()
                );
                *repeats.entry(&line.key).or_default() += 1;
            }
        }
    }
    for (key, n) in &repeats {
        let in_flight = kills.iter().filter(|k| k.in_flight.contains(*key)).count();
        assert!(
            *n <= in_flight,
            "key {key} received {} times, but in flight at only {in_flight} of the kills ({:?}): a second \
             delivery\n{}",
            n + 1,
            kills.iter().map(|k| (&k.node, k.in_flight.len())).collect::<Vec<_>>(),
            w.report()
        );
    }

    let outbox = w.outbox_list();
    let listed: BTreeSet<&str> = outbox.iter().filter_map(|d| d["key"].as_str()).collect();
    assert_eq!(outbox.len(), REMINDERS, "outbox list: {} deliveries\n{}", outbox.len(), w.report());
    assert!(listed.iter().copied().eq(expected.iter().map(String::as_str)), "outbox list: other keys than expected");
    let odd: Vec<&Value> = outbox.iter().filter(|d| d["status"] != "delivered" || d["attempts"] != 1).collect();
    assert!(
        odd.is_empty(),
        "{} deliveries not delivered after exactly one attempt, e.g. {}\n{}",
        odd.len(),
        odd[0],
        w.report()
    );

    let attempts = w.attempts().await;
    let mut per_key: BTreeMap<&str, Vec<&AttemptRow>> = BTreeMap::new();
    for a in &attempts {
        per_key.entry(&a.key).or_default().push(a);
    }
    let twice: Vec<&Vec<&AttemptRow>> = per_key.values().filter(|rows| rows.len() != 1).collect();
    assert!(
        twice.is_empty(),
        "{} deliveries with more than one recorded attempt (sent by two nodes), e.g. {:?}\n{}",
        twice.len(),
        twice[0],
        w.report()
    );
    assert_eq!(per_key.len(), REMINDERS, "one attempt row per delivery");
    assert!(attempts.iter().all(|a| a.outcome == "delivered" && a.attempt == 1), "attempts: {:?}", &attempts[..3]);
    let mut by_node = BTreeMap::new();
    for a in &attempts {
        *by_node.entry(a.node.clone()).or_default() += 1;
    }
    Verified { lines: sink.lines.len(), duplicates: repeats.values().sum(), by_node }
}
