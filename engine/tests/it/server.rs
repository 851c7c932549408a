//! The HTTP API, over real sockets on 127.0.0.1 with a real HTTP client: the routes against a
//! SQLite store in a temporary directory (in this process), and `invoiceflow run` as a child
//! process — records posted and acted on at once, the rules directory edited while it runs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use invoiceflow::clock::RunningClock;
use invoiceflow::config::{Config, Secret};
use invoiceflow::server::{self, ApiOptions, Report};
use invoiceflow::store::{InvoiceQuery, QuickBooksStore, SqliteStore, Store, Stored};
use invoiceflow_connectors::quickbooks::webhook::sign;
use invoiceflow_connectors::secret::SecretString;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::Engine;

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");
const TOKEN: &str = "test-token-4f1c9a7e";
const REALM: &str = "9341";
const VERIFIER: &str = "verifier-5b2e7d1c";
const QBO_INVOICE_239: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/testdata/qbo-invoice-239.json");

/// An HTTP client for loopback: no proxy, and a TLS provider installed (the workspace's reqwest
/// ships none, and building a client asks for one even for plain HTTP).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Invoice `id` of Acme for $500.00, `balance` still due, as the source stamped it at `updated_at`.
fn invoice(id: &str, balance: &str, updated_at: &str) -> Value {
    json!({"type": "invoice", "id": id, "number": format!("10{id}"), "customer": "Acme",
        "recipient": "ap@acme.example", "amount": "500.00", "balance": balance, "currency": "USD",
        "txn_date": "2026-11-10", "due_date": "2026-12-10", "email_status": "EmailSent", "updated_at": updated_at})
}

/// Values as JSON lines.
fn lines(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

/// What an answer said.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    fn report(&self) -> Report {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not a report ({e}): {self:#?}"))
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Answer { status, headers, body: response.text().await.unwrap() }
}

/// Posts `body` to `base`/v1/records with `token` (none: no `Authorization` header).
async fn post(base: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> Answer {
    let mut request =
        client().post(format!("{base}/v1/records")).header("content-type", "application/x-ndjson").body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

async fn get(base: &str, path: &str) -> Answer {
    send(client().get(format!("{base}{path}"))).await
}

/// A Prometheus exposition, parsed: every sample by its name and labels as written. Panics on
/// a line that is neither a comment nor `NAME{LABELS} VALUE`, or a sample of a family with no
/// `# TYPE`.
fn samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut typed = std::collections::BTreeSet::new();
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "{name} has no # TYPE before it");
        out.insert(series.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("not a number: {line:?}")));
    }
    out
}

/// The API in this process over a SQLite store in a temporary directory, on a free port.
struct Api {
    dir: tempfile::TempDir,
    store: SqliteStore,
    wake: Arc<Notify>,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Api {
    /// With `server_section` as `[server]` of the configuration and `token` configured.
    async fn start(server_section: &str, token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoiceflow.toml");
        std::fs::write(&path, format!("[server]\n{server_section}\n")).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        let wake = Arc::new(Notify::new());
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().to_utc();
        let options = ApiOptions {
            token: token.map(Secret::new),
            max_body: config.server.max_body,
            companies: config.companies.clone(),
            clock: RunningClock::starting_at(at, config.companies.clone()),
            wake: Arc::clone(&wake),
            webhooks: Some(server::WebhookOptions {
                verifiers: vec![(REALM.into(), SecretString::new(VERIFIER))],
                wake: Arc::clone(&wake),
            }),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(server::serve(listener, server::router(store.clone(), options), async {
            let _ = stopped.await;
        }));
        Self { dir, store, wake, base, stop: Some(stop), served }
    }

    async fn stored(&self) -> Vec<Stored> {
        self.store.invoices(&InvoiceQuery { limit: 100, ..Default::default() }).await.unwrap()
    }

    async fn ids(&self) -> Vec<String> {
        self.stored().await.iter().map(|s| s.record.key().id.as_str().to_owned()).collect()
    }

    /// Stops the server; it ends without error.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.served).await.unwrap().unwrap().unwrap();
    }
}

/// Posts `body` to the webhook endpoint with `signature` (none: no header).
async fn webhook(base: &str, signature: Option<String>, body: &str) -> Answer {
    let mut request = client().post(format!("{base}/v1/quickbooks/webhook")).body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("intuit-signature", signature);
    }
    send(request).await
}

#[tokio::test]
async fn quickbooks_webhooks_are_queued_once_when_signed_and_refused_otherwise() {
    let api = Api::start("", Some(TOKEN)).await;
    let body = json!({"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {"entities": [
        {"name": "Invoice", "id": "239", "operation": "Update", "lastUpdated": "2026-11-25T11:59:00.000Z"},
        {"name": "Customer", "id": "7", "operation": "Update", "lastUpdated": "2026-11-25T11:59:00.000Z"}]}}]})
    .to_string();
    let signed = || Some(sign(&SecretString::new(VERIFIER), body.as_bytes()));
    let pending = || async { api.store.inbox_gauge(Some(REALM)).await.unwrap().pending };

    // Unsigned, signed by another token, or signed over another body: 401, nothing queued.
    assert_eq!(webhook(&api.base, None, &body).await.status, 401);
    assert_eq!(webhook(&api.base, Some(sign(&SecretString::new("other"), body.as_bytes())), &body).await.status, 401);
    let tampered = body.replace("239", "240");
    let refused = webhook(&api.base, signed(), &tampered).await;
    assert_eq!((refused.status, refused.json()["error"].as_str()), (401, Some("missing or invalid intuit-signature")));
    assert_eq!(pending().await, 0);

    // Signed: the invoice is queued, the customer (not watched) ignored, and the engine woken.
    let taken = webhook(&api.base, signed(), &body).await;
    assert_eq!(taken.status, 200, "{taken:#?}");
    assert_eq!(taken.json(), json!({"queued": 1, "ignored": 1}));
    tokio::time::timeout(Duration::from_secs(5), api.wake.notified()).await.expect("woken");
    assert_eq!(pending().await, 1);
    // QuickBooks sends it again: kept once.
    assert_eq!(webhook(&api.base, signed(), &body).await.status, 200);
    assert_eq!(pending().await, 1);

    // The CloudEvents shape is taken too; a company the signature does not speak for is not.
    let events = json!([
        {"specversion": "1.0", "id": "e1", "type": "qbo.payment.created.v1", "time": "2026-11-25T11:59:30Z",
         "intuitentityid": "55", "intuitaccountid": REALM},
        {"specversion": "1.0", "id": "e2", "type": "qbo.invoice.updated.v1", "time": "2026-11-25T11:59:30Z",
         "intuitentityid": "1", "intuitaccountid": "1111"}])
    .to_string();
    let taken = webhook(&api.base, Some(sign(&SecretString::new(VERIFIER), events.as_bytes())), &events).await;
    assert_eq!(taken.json(), json!({"queued": 1, "ignored": 1}));
    assert_eq!(api.store.inbox_gauge(None).await.unwrap().pending, 2);

    // Signed but in neither shape: 400 naming the problem.
    let junk = r#"{"hello":"world"}"#;
    let bad = webhook(&api.base, Some(sign(&SecretString::new(VERIFIER), junk.as_bytes())), junk).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("eventNotifications"), "{bad:#?}");
    api.stop().await;
}

#[tokio::test]
async fn records_need_the_configured_bearer_token() {
    let api = Api::start("", Some(TOKEN)).await;
    let body = lines(&[invoice("1", "500.00", "2026-11-20T10:00:00Z")]);
    let missing = post(&api.base, None, body.clone()).await;
    assert_eq!(missing.status, 401, "{missing:#?}");
    assert!(missing.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"), "{missing:#?}");
    assert!(missing.json()["error"].as_str().unwrap().contains("missing bearer token"), "{missing:#?}");
    let wrong = post(&api.base, Some("test-token-4f1c9a7f"), body.clone()).await;
    assert_eq!(wrong.status, 401, "{wrong:#?}");
    assert_eq!(wrong.json()["error"], "invalid bearer token");
    let basic =
        send(client().post(format!("{}/v1/records", api.base)).basic_auth("admin", Some(TOKEN)).body(body.clone()))
            .await;
    assert_eq!(basic.status, 401, "only a bearer token is taken: {basic:#?}");
    assert!(api.ids().await.is_empty(), "nothing refused was applied");
    let right = post(&api.base, Some(TOKEN), body).await;
    assert_eq!(right.status, 200, "{right:#?}");
    assert_eq!(api.ids().await, ["1"]);
    api.stop().await;
}

#[tokio::test]
async fn without_a_configured_token_records_are_refused_not_open() {
    let api = Api::start("", None).await;
    let answer = post(&api.base, Some("anything"), lines(&[invoice("1", "500.00", "2026-11-20T10:00:00Z")])).await;
    assert_eq!(answer.status, 503, "{answer:#?}");
    let error = answer.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("no API token is configured") && error.contains("INVOICEFLOW_API_TOKEN"), "{error}");
    assert!(api.ids().await.is_empty());
    assert_eq!(get(&api.base, "/healthz").await.status, 200, "the rest of the API works");
    api.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_applies_nothing() {
    let api = Api::start("max_body = \"2 KiB\"", Some(TOKEN)).await;
    let records: Vec<Value> = (0..20).map(|i| invoice(&i.to_string(), "500.00", "2026-11-20T10:00:00Z")).collect();
    let body = lines(&records);
    assert!(body.len() > 2048, "{} bytes", body.len());
    let answer = post(&api.base, Some(TOKEN), body).await;
    assert_eq!(answer.status, 413, "{answer:#?}");
    assert!(answer.json()["error"].as_str().unwrap().contains("2048 bytes"), "{answer:#?}");
    assert!(api.ids().await.is_empty(), "none of the body was applied");
    let small = post(&api.base, Some(TOKEN), lines(&records[..2])).await;
    assert_eq!(small.status, 200, "within the limit: {small:#?}");
    api.stop().await;
}

#[tokio::test]
async fn malformed_records_are_422_naming_line_and_field_and_the_valid_ones_are_applied() {
    let api = Api::start("", Some(TOKEN)).await;
    let mut bad_amount = invoice("2", "500.00", "2026-11-20T10:00:00Z");
    bad_amount["amount"] = json!("12,5");
    let body = format!(
        "{}{}{}{{\"id\": \"4\", \"customer\": \n",
        lines(&[invoice("1", "500.00", "2026-11-20T10:00:00Z")]),
        lines(&[bad_amount]),
        lines(&[invoice("3", "500.00", "2026-11-20T10:00:00Z")]),
    );
    let answer = post(&api.base, Some(TOKEN), body).await;
    assert_eq!(answer.status, 422, "{answer:#?}");
    let report = answer.report();
    assert_eq!((report.applied, report.imported, report.rejected), (2, 2, 2), "{report:#?}");
    let amount = &report.rejections[0];
    assert_eq!((amount.line, amount.field.as_str()), (2, "amount"), "{report:#?}");
    assert!(amount.reason.contains("\"12,5\" is not a decimal number"), "{report:#?}");
    let cut = &report.rejections[1];
    assert_eq!((cut.line, cut.field.as_str()), (4, "(record)"), "{report:#?}");
    assert!(cut.reason.contains("incomplete"), "{report:#?}");
    assert_eq!(api.ids().await, ["1", "3"], "the valid records of the body are applied");

    // The corrected body posted again: what was applied is unchanged, the rest is imported.
    let fixed = lines(&[
        invoice("1", "500.00", "2026-11-20T10:00:00Z"),
        invoice("2", "500.00", "2026-11-20T10:00:00Z"),
        invoice("3", "500.00", "2026-11-20T10:00:00Z"),
    ]);
    let again = post(&api.base, Some(TOKEN), fixed).await;
    assert_eq!(again.status, 200, "{again:#?}");
    let report = again.report();
    assert_eq!((report.applied, report.imported, report.unchanged, report.rejected), (3, 1, 2, 0), "{report:#?}");
    api.stop().await;
}

#[tokio::test]
async fn valid_records_are_applied_and_wake_the_engine() {
    let api = Api::start("", Some(TOKEN)).await;
    let answer = post(&api.base, Some(TOKEN), lines(&[invoice("7", "500.00", "2026-11-20T10:00:00Z")])).await;
    assert_eq!(answer.status, 200, "{answer:#?}");
    let report = answer.report();
    assert_eq!((report.applied, report.imported, report.rejected), (1, 1, 0), "{report:#?}");
    assert!(report.rejections.is_empty());
    tokio::time::timeout(Duration::from_secs(5), api.wake.notified()).await.expect("the engine is woken");
    let stored = api.stored().await;
    assert_eq!((stored[0].record.key().id.as_str(), stored[0].status.as_str()), ("7", "sent"));

    let paid = post(&api.base, Some(TOKEN), lines(&[invoice("7", "0.00", "2026-11-24T10:00:00Z")])).await;
    assert_eq!((paid.status, paid.report().updated), (200, 1), "{paid:#?}");
    assert_eq!(api.stored().await[0].status, "paid");
    api.stop().await;
}

#[tokio::test]
async fn quickbooks_json_is_taken_for_the_company_named_as_import_takes_it() {
    let api = Api::start("", Some(TOKEN)).await;
    let body = std::fs::read(QBO_INVOICE_239).unwrap();
    let answer = send(
        client()
            .post(format!("{}/v1/records?account=acme-us", api.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:#?}");
    assert_eq!(answer.report().imported, 1);
    let stored = api.stored().await;
    assert_eq!((stored[0].record.key().account.as_str(), stored[0].record.key().id.as_str()), ("acme-us", "239"));

    let bad =
        send(client().post(format!("{}/v1/records?acount=x", api.base)).bearer_auth(TOKEN).body(body.clone())).await;
    assert_eq!(bad.status, 400, "a misspelt parameter is refused: {bad:#?}");
    let form = send(
        client()
            .post(format!("{}/v1/records", api.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("id=1"),
    )
    .await;
    assert_eq!(form.status, 415, "{form:#?}");
    assert!(form.json()["error"].as_str().unwrap().contains("--data-binary"), "{form:#?}");
    api.stop().await;
}

#[tokio::test]
async fn healthz_says_whether_the_database_answers() {
    let api = Api::start("", Some(TOKEN)).await;
    let ok = get(&api.base, "/healthz").await;
    assert_eq!((ok.status, ok.json()["status"].as_str()), (200, Some("ok")), "{ok:#?}");
    api.store.close().await;
    let down = get(&api.base, "/healthz").await;
    assert_eq!(down.status, 503, "{down:#?}");
    assert_eq!(down.json()["error"], "the database does not answer");
    api.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_what_was_received() {
    let api = Api::start("", Some(TOKEN)).await;
    let mut bad = invoice("2", "500.00", "2026-11-20T10:00:00Z");
    bad["due_date"] = json!("2026-13-01");
    post(&api.base, Some(TOKEN), lines(&[invoice("1", "500.00", "2026-11-20T10:00:00Z"), bad])).await;
    post(&api.base, None, "").await;
    let answer = get(&api.base, "/metrics").await;
    assert_eq!(answer.status, 200, "{answer:#?}");
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let samples = samples(&answer.body);
    for (series, value) in [
        ("invoiceflow_deliveries{channel=\"slack\",status=\"delivered\"}", 0.0),
        ("invoiceflow_deliveries{channel=\"email\",status=\"pending\"}", 0.0),
        ("invoiceflow_queue_depth", 0.0),
        ("invoiceflow_due_lag_seconds", 0.0),
        ("invoiceflow_evaluation_errors_total", 0.0),
        ("invoiceflow_records_received_total{outcome=\"imported\"}", 1.0),
        ("invoiceflow_records_received_total{outcome=\"rejected\"}", 1.0),
        ("invoiceflow_http_requests_total{route=\"/v1/records\",code=\"422\"}", 1.0),
        ("invoiceflow_http_requests_total{route=\"/v1/records\",code=\"401\"}", 1.0),
    ] {
        assert_eq!(samples.get(series), Some(&value), "{series} in\n{}", answer.body);
    }
    assert!(samples["invoiceflow_changes_unevaluated"] >= 1.0, "no engine ran: the creation waits\n{}", answer.body);
    api.stop().await;
}

#[tokio::test]
async fn an_internal_error_is_a_generic_500_with_the_details_only_in_the_log() {
    let api = Api::start("", Some(TOKEN)).await;
    // The schema damaged under the running server, by another connection to the same file.
    let url = format!("sqlite://{}", api.dir.path().join("t.db").display());
    let other = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE records RENAME TO records_moved").execute(&other).await.unwrap();
    other.close().await;
    let answer = post(&api.base, Some(TOKEN), lines(&[invoice("1", "500.00", "2026-11-20T10:00:00Z")])).await;
    assert_eq!(answer.status, 500, "{answer:#?}");
    assert_eq!(answer.json(), json!({"error": "internal error"}), "no detail leaves: {answer:#?}");
    api.stop().await;
}

// ---- `invoiceflow run` as a child process ----

/// A sandbox: a configuration sending the `finance` Slack destination into `sent/slack.jsonl`,
/// a rules directory, and a SQLite database.
struct Sandbox {
    dir: tempfile::TempDir,
}

const PAID_RULE: &str = "name = \"Paid\"\non = { change = \"status\", to = \"paid\" }\n\
    then = 'slack(\"finance\", `VERSION: invoice ${invoice.number} paid`)'\n";

impl Sandbox {
    fn new(rule_version: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("invoiceflow.toml"),
            "database_url = \"sqlite://invoiceflow.db\"\n[rules]\ndir = \"rules\"\n\
             [destinations.finance]\nslack = \"file:sent/slack.jsonl\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        let sandbox = Self { dir };
        sandbox.write_rule(&PAID_RULE.replace("VERSION", rule_version));
        sandbox
    }

    fn rule_path(&self) -> PathBuf {
        self.dir.path().join("rules/paid.toml")
    }

    /// Replaces the rule file as editors do: written beside it, then renamed over it, so that
    /// the engine never reads half a file.
    fn write_rule(&self, text: &str) {
        let temporary = self.dir.path().join("rules/paid.toml.tmp");
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, self.rule_path()).unwrap();
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("invoiceflow.toml")
    }

    /// Starts `invoiceflow run` listening on a free port, planning every `plan_every` seconds.
    fn run(&self, plan_every: u64) -> Engine {
        let child = Engine::command(self.dir.path(), self.config().to_str().unwrap(), plan_every)
            .env("INVOICEFLOW_API_TOKEN", TOKEN)
            .spawn()
            .unwrap();
        Engine::start(child).listening()
    }

    /// The Slack posts delivered so far, as their text.
    fn slack_posts(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("sent/slack.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["payload"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Polls the Slack sink until a post holds `text`, for at most `within`; returns how long it
    /// took.
    async fn wait_for_post(&self, text: &str, within: Duration) -> Duration {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.slack_posts().iter().any(|p| p.contains(text)) {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no Slack post holding {text:?} within {within:?}; posts: {:?}", self.slack_posts())
    }

    fn invoiceflow(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(["--config", self.config().to_str().unwrap()])
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("INVOICEFLOW_DATABASE_URL")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

trait OpenAndPay {
    async fn open_and_pay(&self, id: &str);
}

impl OpenAndPay for Engine {
    /// Posts an open invoice `id`, then the same invoice paid.
    async fn open_and_pay(&self, id: &str) {
        let open = post(&self.base, Some(TOKEN), lines(&[invoice(id, "500.00", "2026-11-20T10:00:00Z")])).await;
        assert_eq!(open.status, 200, "{open:#?}");
        let paid = post(&self.base, Some(TOKEN), lines(&[invoice(id, "0.00", "2026-11-24T10:00:00Z")])).await;
        assert_eq!((paid.status, paid.report().updated), (200, 1), "{paid:#?}");
    }
}

#[tokio::test]
async fn a_paid_invoice_posted_reaches_slack_at_once_and_metrics_agree_with_the_outbox() {
    let sandbox = Sandbox::new("v1");
    // Planning every 10 minutes: only the wake-up of a post can explain a prompt post.
    let engine = sandbox.run(600);
    engine.open_and_pay("42").await;
    let took = sandbox.wait_for_post("v1: invoice 1042 paid", Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "the change was acted on {took:?} after the post");
    assert_eq!(sandbox.slack_posts().len(), 1);

    // The post reaches the sink a moment before the attempt is recorded.
    let started = Instant::now();
    let (outbox, delivered_slack) = loop {
        let outbox: Vec<Value> = sandbox
            .invoiceflow(&["outbox", "list", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let delivered = outbox.iter().filter(|d| d["channel"] == "slack" && d["status"] == "delivered").count();
        if delivered == 1 || started.elapsed() > Duration::from_secs(5) {
            break (outbox, delivered);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(delivered_slack, 1, "{outbox:#?}");
    let metrics = get(&engine.base, "/metrics").await;
    let samples = samples(&metrics.body);
    assert_eq!(samples["invoiceflow_deliveries{channel=\"slack\",status=\"delivered\"}"], delivered_slack as f64);
    let total: f64 = samples.iter().filter(|(k, _)| k.starts_with("invoiceflow_deliveries{")).map(|(_, v)| v).sum();
    assert_eq!(total, outbox.len() as f64, "{}", metrics.body);
    assert_eq!(samples["invoiceflow_queue_depth"], 0.0);
    assert_eq!(samples["invoiceflow_changes_unevaluated"], 0.0);
    assert_eq!(samples["invoiceflow_records_received_total{outcome=\"updated\"}"], 1.0);
    assert_eq!(get(&engine.base, "/healthz").await.status, 200);

    let status = engine.terminate();
    assert!(status.success(), "a graceful stop: {status:?}");
}

#[tokio::test]
async fn an_edited_rule_acts_in_the_running_engine_and_a_broken_edit_keeps_the_previous_version() {
    let sandbox = Sandbox::new("v1");
    let engine = sandbox.run(1);
    engine.open_and_pay("1").await;
    sandbox.wait_for_post("v1: invoice 101 paid", Duration::from_secs(10)).await;

    sandbox.write_rule(&PAID_RULE.replace("VERSION", "v2"));
    engine.wait_for(&engine.stderr, "rule updated", Duration::from_secs(15));
    engine.open_and_pay("2").await;
    sandbox.wait_for_post("v2: invoice 102 paid", Duration::from_secs(10)).await;

    sandbox.write_rule(&PAID_RULE.replace("VERSION", "v3").replace("slack(", "slack(("));
    let line = engine.wait_for(&engine.stderr, "rule paid does not compile", Duration::from_secs(15));
    assert!(line.contains("keeps running"), "{line}");
    let at = format!("{}:3:", sandbox.rule_path().display());
    engine.wait_for(&engine.stderr, &at, Duration::from_secs(1));
    engine.open_and_pay("3").await;
    sandbox.wait_for_post("v2: invoice 103 paid", Duration::from_secs(10)).await;
    assert!(!sandbox.slack_posts().iter().any(|p| p.contains("v3")), "{:?}", sandbox.slack_posts());
    assert_eq!(engine.count_in_log("rule paid does not compile"), 1, "a broken text is reported once");
    assert!(engine.terminate().success());
}

#[tokio::test]
async fn sighup_reads_the_rules_again_at_once() {
    let sandbox = Sandbox::new("v1");
    // No planning tick after the first for 10 minutes: only SIGHUP can explain a reload.
    let engine = sandbox.run(600);
    engine.wait_for(&engine.stderr, "planning every 600 s", Duration::from_secs(10));
    sandbox.write_rule(&PAID_RULE.replace("VERSION", "v2"));
    engine.signal("HUP");
    engine.wait_for(&engine.stderr, "rule updated", Duration::from_secs(10));
    engine.open_and_pay("5").await;
    sandbox.wait_for_post("v2: invoice 105 paid", Duration::from_secs(10)).await;
    assert!(engine.terminate().success(), "SIGHUP does not stop the engine");
}
