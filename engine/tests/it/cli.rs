//! The command line, run as a user runs it.
//!
//! Each test runs the real `invoiceflow` binary against its own SQLite file in a temporary
//! directory, always with `--now`, so results do not depend on the day the tests run.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");
const QBO_INVOICE_239: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/testdata/qbo-invoice-239.json");
const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/invoiceflow.toml");
const EXAMPLE_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data");
const EXAMPLE_QUERY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickbooks/acme-us-query.json");

/// What one run of the binary gave.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The import summary without its timing: `imported 1, …, rejected 0`.
    fn summary(&self) -> &str {
        let line =
            self.stdout.lines().find(|l| l.starts_with("imported ")).unwrap_or_else(|| panic!("no summary: {self:#?}"));
        line.rsplit_once(" in ").map_or(line, |(summary, _)| summary)
    }

    /// Standard output as JSON lines.
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Standard output as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Panics with everything it printed unless it exited with `code`.
    #[track_caller]
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

/// A temporary directory holding one SQLite database, and the files a test writes.
struct Sandbox {
    dir: TempDir,
    database: String,
}

impl Sandbox {
    fn new() -> Self {
        let dir = TempDir::new().expect("temporary directory");
        let database = format!("sqlite://{}", dir.path().join("invoiceflow.db").display());
        Self { dir, database }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` in the sandbox and returns its path as text.
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directory");
        }
        std::fs::write(&path, contents).expect("write file");
        path.display().to_string()
    }

    /// Runs `invoiceflow --database <sandbox db> ARGS…`.
    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    /// Runs it with `input` on standard input (closed when `None`).
    fn run_with_stdin(&self, args: &[&str], input: Option<&[u8]>) -> Run {
        let mut child = Command::new(BIN)
            .arg("--database")
            .arg(&self.database)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("INVOICEFLOW_CONFIG")
            .env_remove("INVOICEFLOW_DATABASE_URL")
            .env_remove("INVOICEFLOW_LOG")
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start invoiceflow");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(input).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for invoiceflow");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Imports the example data with the example configuration (`acme-us` and `atelier-fr`).
    fn with_examples() -> Self {
        let sandbox = Self::new();
        let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "import", EXAMPLE_DATA]);
        assert_eq!(run.expect_code(0).summary(), "imported 70, updated 0, unchanged 0, stale 0, rejected 0");
        sandbox
    }

    /// `invoices --json` at `now`, with `extra` arguments.
    fn invoices(&self, now: &str, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["--now", now, "invoices", "--json"];
        args.extend_from_slice(extra);
        self.run(&args).expect_code(0).json_lines()
    }

    /// The ids `invoices --json` lists at `now`, with `extra` arguments.
    fn invoice_ids(&self, now: &str, extra: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = self.invoices(now, extra).iter().map(|i| text(&i["id"])).collect();
        ids.sort();
        ids
    }

    /// `changes --json`, with `extra` arguments.
    fn changes(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["--now", "2026-11-25", "changes", "--json"];
        args.extend_from_slice(extra);
        self.run(&args).expect_code(0).json_lines()
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

/// A valid canonical invoice line.
fn good(id: &str) -> String {
    format!(r#"{{"id":"{id}","customer":"Harbor Lights Bakery","amount":"10.00","txn_date":"2026-11-01"}}"#)
}

/// Imports `good-1`, then `bad` on line 2, then `good-2` and `good-3`; checks the bad line is
/// rejected on stderr as `FILE:2: … field `FIELD`` plus every one of `needles`, that the exit code
/// is 1, and that the three good records are stored. Returns the rejection message.
#[track_caller]
fn assert_rejected_between_good_lines(bad: &str, field: &str, needles: &[&str]) -> String {
    let sandbox = Sandbox::new();
    let contents = format!("{}\n{bad}\n{}\n{}\n", good("good-1"), good("good-2"), good("good-3"));
    let file = sandbox.write("input.jsonl", contents);
    let run = sandbox.run(&["--now", "2026-11-25", "import", &file]);
    run.expect_code(1);
    assert_eq!(run.summary(), "imported 3, updated 0, unchanged 0, stale 0, rejected 1");
    let rejections: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("rejected: ")).collect();
    assert_eq!(rejections.len(), 1, "one rejection expected: {run:#?}");
    let message = rejections[0];
    assert!(message.starts_with(&format!("rejected: {file}:2: ")), "file and line: {message}");
    assert!(message.contains(&format!("field `{field}`")), "field `{field}`: {message}");
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert_eq!(sandbox.invoice_ids("2026-11-25", &[]), ["good-1", "good-2", "good-3"]);
    message.to_owned()
}

#[test]
fn imports_a_real_quickbooks_invoice_and_derives_its_status_from_the_day() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["--now", "2015-08-01", "import", QBO_INVOICE_239]);
    assert_eq!(run.expect_code(0).summary(), "imported 1, updated 0, unchanged 0, stale 0, rejected 0");
    assert!(!run.stderr.contains("rejected"), "{run:#?}");

    let before_due = sandbox.invoices("2015-08-01", &[]);
    assert_eq!(before_due.len(), 1, "{before_due:?}");
    let invoice = &before_due[0];
    assert_eq!(invoice["id"], "239");
    assert_eq!(invoice["number"], "1070");
    assert_eq!(invoice["status"], "awaiting_send");
    assert_eq!(invoice["amount"], "150.00", "amounts are decimal strings");
    assert_eq!(invoice["balance"], "150.00");
    assert_eq!(invoice["currency"], "USD");
    assert_eq!(invoice["due_date"], "2015-08-23");
    assert_eq!(invoice["recipient"], "Amy's Bird Sanctuary", "no BillEmail: the customer's name");
    assert_eq!(invoice["deal_id"], Value::Null);
    assert_eq!(invoice["updated_at"], "2015-07-24T17:35:08Z");

    let after_due = sandbox.invoices("2015-09-01", &[]);
    assert_eq!(after_due.len(), 1);
    assert_eq!(after_due[0]["status"], "overdue");
}

#[test]
fn reimporting_identical_data_changes_nothing() {
    let sandbox = Sandbox::with_examples();
    let events_before = sandbox.changes(&[]);
    assert!(!events_before.is_empty());

    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-26", "import", EXAMPLE_DATA]);
    assert_eq!(run.expect_code(0).summary(), "imported 0, updated 0, unchanged 70, stale 0, rejected 0");
    assert_eq!(sandbox.changes(&[]).len(), events_before.len(), "no new events");

    let run = sandbox.run(&["--now", "2015-08-01", "import", QBO_INVOICE_239]);
    assert_eq!(run.expect_code(0).summary(), "imported 1, updated 0, unchanged 0, stale 0, rejected 0");
    let events = sandbox.changes(&[]).len();
    let run = sandbox.run(&["--now", "2015-08-02", "import", QBO_INVOICE_239]);
    assert_eq!(run.expect_code(0).summary(), "imported 0, updated 0, unchanged 1, stale 0, rejected 0");
    assert_eq!(sandbox.changes(&[]).len(), events);
}

#[test]
fn an_older_version_of_a_record_is_stale_and_ignored() {
    let sandbox = Sandbox::new();
    let newer = r#"{"id":"inv-7","customer":"Blue Heron Dental","amount":"200.00","txn_date":"2026-11-01","updated_at":"2026-11-10T09:00:00Z"}"#;
    let older = r#"{"id":"inv-7","customer":"Blue Heron Dental","amount":"120.00","txn_date":"2026-11-01","updated_at":"2026-11-09T09:00:00Z"}"#;
    let newer = sandbox.write("newer.jsonl", format!("{newer}\n"));
    let older = sandbox.write("older.jsonl", format!("{older}\n"));

    let run = sandbox.run(&["--now", "2026-11-25", "import", &newer]);
    assert_eq!(run.expect_code(0).summary(), "imported 1, updated 0, unchanged 0, stale 0, rejected 0");
    let events = sandbox.changes(&[]).len();

    let run = sandbox.run(&["--now", "2026-11-25", "import", &older]);
    assert_eq!(run.expect_code(0).summary(), "imported 0, updated 0, unchanged 0, stale 1, rejected 0");

    let invoices = sandbox.invoices("2026-11-25", &[]);
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["amount"], "200.00");
    assert_eq!(invoices[0]["updated_at"], "2026-11-10T09:00:00Z");
    assert_eq!(sandbox.changes(&[]).len(), events, "a stale version records no change");
}

#[test]
fn invalid_json_is_rejected_with_its_file_and_line() {
    assert_rejected_between_good_lines(r#"{"id": "x", amount: 5}"#, "(record)", &["invalid JSON"]);
}

#[test]
fn a_record_without_an_id_is_rejected() {
    assert_rejected_between_good_lines(
        r#"{"customer":"Harbor Lights Bakery","amount":"10.00","txn_date":"2026-11-01"}"#,
        "id",
        &["missing"],
    );
}

#[test]
fn a_comma_decimal_amount_is_rejected_suggesting_a_dot() {
    let message = assert_rejected_between_good_lines(
        r#"{"id":"bad","customer":"Harbor Lights Bakery","amount":"12,5","txn_date":"2026-11-01"}"#,
        "amount",
        &["12,5", "dot"],
    );
    assert!(message.contains("record bad"), "names the record: {message}");
}

#[test]
fn a_non_numeric_amount_is_rejected() {
    assert_rejected_between_good_lines(
        r#"{"id":"bad","customer":"Harbor Lights Bakery","amount":"abc","txn_date":"2026-11-01"}"#,
        "amount",
        &["\"abc\" is not a decimal number"],
    );
}

#[test]
fn an_unknown_currency_is_rejected_naming_iso_4217() {
    assert_rejected_between_good_lines(
        r#"{"id":"bad","customer":"Harbor Lights Bakery","amount":"10.00","currency":"XYZ","txn_date":"2026-11-01"}"#,
        "currency",
        &["XYZ", "ISO 4217"],
    );
}

#[test]
fn an_impossible_date_is_rejected() {
    assert_rejected_between_good_lines(
        r#"{"id":"bad","customer":"Harbor Lights Bakery","amount":"10.00","txn_date":"2026-02-30"}"#,
        "txn_date",
        &["2026-02-30", "not a valid calendar date"],
    );
}

#[test]
fn a_quickbooks_fault_is_rejected_naming_fault_and_its_code() {
    let fault = r#"{"Fault":{"Error":[{"Message":"Object Not Found","Detail":"Object Not Found : Something you're trying to use has been made inactive.","code":"610"}],"type":"ValidationFault"},"time":"2015-08-12T11:12:05.125-07:00"}"#;
    assert_rejected_between_good_lines(fault, "Fault", &["ValidationFault", "Object Not Found", "code 610"]);
}

#[test]
fn a_missing_closing_brace_does_not_swallow_the_following_lines() {
    assert_rejected_between_good_lines(
        r#"{"id":"bad","customer":"Harbor Lights Bakery","amount":"10.00","txn_date":"2026-11-01""#,
        "(record)",
        &["incomplete"],
    );
}

#[test]
fn a_record_over_the_size_limit_is_skipped_and_the_next_line_imports() {
    let huge =
        format!(r#"{{"id":"huge","customer":"{}","amount":"10.00","txn_date":"2026-11-01"}}"#, "x".repeat(10 << 20));
    assert!(huge.len() > 10 << 20);
    let message = assert_rejected_between_good_lines(&huge, "(record)", &[&format!("{} bytes", huge.len())]);
    assert!(message.contains("exceeds the") && message.contains("MiB limit"), "{message}");
}

#[test]
fn a_truncated_file_reports_the_incomplete_record_at_the_end() {
    let sandbox = Sandbox::new();
    let cut = r#"{"id":"cut","customer":"Harbor Lights Bakery","amount":"10"#;
    let file = sandbox.write("truncated.jsonl", format!("{}\n{}\n{cut}", good("good-1"), good("good-2")));
    let run = sandbox.run(&["--now", "2026-11-25", "import", &file]);
    run.expect_code(1);
    assert_eq!(run.summary(), "imported 2, updated 0, unchanged 0, stale 0, rejected 1");
    let message = run.stderr.lines().find(|l| l.starts_with("rejected: ")).expect("a rejection");
    assert!(message.starts_with(&format!("rejected: {file}:3: ")), "file and line: {message}");
    assert!(message.contains("incomplete at the end") && message.contains("truncated"), "{message}");
    assert_eq!(sandbox.invoice_ids("2026-11-25", &[]), ["good-1", "good-2"]);
}

#[test]
fn a_file_with_a_byte_order_mark_imports_every_line() {
    let sandbox = Sandbox::new();
    let file = sandbox.write("bom.jsonl", format!("\u{feff}{}\r\n{}\r\n", good("good-1"), good("good-2")));
    let run = sandbox.run(&["--now", "2026-11-25", "import", &file]);
    assert_eq!(run.expect_code(0).summary(), "imported 2, updated 0, unchanged 0, stale 0, rejected 0");
    assert_eq!(sandbox.invoice_ids("2026-11-25", &[]), ["good-1", "good-2"]);
}

#[test]
fn a_json_array_with_one_unindented_record_per_line_imports() {
    let sandbox = Sandbox::new();
    let file =
        sandbox.write("array.json", format!("[\n{},\n{}\n]\n{}\n", good("good-1"), good("good-2"), good("good-3")));
    let run = sandbox.run(&["--now", "2026-11-25", "import", &file]);
    assert_eq!(run.expect_code(0).summary(), "imported 3, updated 0, unchanged 0, stale 0, rejected 0");
    assert_eq!(sandbox.invoice_ids("2026-11-25", &[]), ["good-1", "good-2", "good-3"]);
}

#[test]
fn imports_from_standard_input_with_a_dash() {
    let sandbox = Sandbox::new();
    let input = format!("{}\n{{\"id\":\"bad\"}}\n{}\n", good("in-1"), good("in-2"));
    let run = sandbox.run_with_stdin(&["--now", "2026-11-25", "import", "-"], Some(input.as_bytes()));
    run.expect_code(1);
    assert_eq!(run.summary(), "imported 2, updated 0, unchanged 0, stale 0, rejected 1");
    assert!(run.stderr.contains("rejected: <stdin>:2: record bad: field `amount`: missing"), "{run:#?}");
    assert_eq!(sandbox.invoice_ids("2026-11-25", &[]), ["in-1", "in-2"]);

    let pretty = std::fs::read(QBO_INVOICE_239).expect("sample invoice");
    let run = sandbox.run_with_stdin(&["--now", "2026-11-25", "import", "-"], Some(&pretty));
    assert_eq!(run.expect_code(0).summary(), "imported 1, updated 0, unchanged 0, stale 0, rejected 0");
    assert_eq!(sandbox.invoice_ids("2026-11-25", &[]), ["239", "in-1", "in-2"]);
}

/// examples/data/README.md, "Invoice status on 2026-11-25": (status, acme-us, atelier-fr).
const EXAMPLE_STATUSES: [(&str, usize, usize); 6] = [
    ("awaiting_send", 7, 2),
    ("sent", 12, 3),
    ("partially_paid", 2, 1),
    ("paid", 7, 2),
    ("overdue", 12, 2),
    ("voided", 1, 0),
];

#[test]
fn status_filter_counts_match_the_example_readme() {
    let sandbox = Sandbox::with_examples();
    let config = ["--config", EXAMPLE_CONFIG];
    let all = sandbox.run(&[&config[..], &["--now", "2026-11-25", "invoices"]].concat());
    assert_eq!(all.expect_code(0).stdout.lines().last(), Some("51 invoices"));
    for (status, acme, atelier) in EXAMPLE_STATUSES {
        let filter = [&config[..], &["--status", status]].concat();
        let listed = sandbox.invoices("2026-11-25", &filter);
        assert_eq!(listed.len(), acme + atelier, "{status}");
        assert!(listed.iter().all(|i| i["status"] == status), "{status}: {listed:?}");
        let acme_listed = sandbox.invoices("2026-11-25", &[&filter[..], &["--account", "acme-us"]].concat());
        assert_eq!(acme_listed.len(), acme, "acme-us {status}");
        let atelier_listed = sandbox.invoices("2026-11-25", &[&filter[..], &["--account", "atelier-fr"]].concat());
        assert_eq!(atelier_listed.len(), atelier, "atelier-fr {status}");
    }

    let overdue = sandbox.run(&[&config[..], &["--now", "2026-11-25", "invoices", "--status", "overdue"]].concat());
    assert_eq!(overdue.expect_code(0).stdout.lines().last(), Some("14 invoices"));
    let ids =
        sandbox.invoice_ids("2026-11-25", &[&config[..], &["--status", "overdue", "--account", "acme-us"]].concat());
    for expected in ["97", "103", "105", "106"] {
        assert!(ids.iter().any(|id| id == expected), "{expected} overdue: {ids:?}");
    }
    assert!(!ids.iter().any(|id| id == "108"), "108 is due in 3 days: {ids:?}");

    let bad = sandbox.run(&["--now", "2026-11-25", "invoices", "--status", "late"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("late") && bad.stderr.contains("overdue"), "{bad:#?}");
}

#[test]
fn status_follows_the_day_given_by_now() {
    let sandbox = Sandbox::with_examples();
    let config = ["--config", EXAMPLE_CONFIG, "--status", "overdue", "--account", "acme-us"];
    // 108 is due 2026-11-28: not overdue that day, overdue the day after.
    assert!(!sandbox.invoice_ids("2026-11-28", &config).contains(&"108".to_owned()));
    assert!(sandbox.invoice_ids("2026-11-29", &config).contains(&"108".to_owned()));
}

#[test]
fn deal_filter_lists_the_deals_invoices() {
    let sandbox = Sandbox::with_examples();
    let config = ["--config", EXAMPLE_CONFIG];
    let listed = sandbox.invoices("2026-11-25", &[&config[..], &["--deal", "deal-102"]].concat());
    let mut ids: Vec<String> = listed.iter().map(|i| text(&i["id"])).collect();
    ids.sort();
    assert_eq!(ids, ["101", "103", "121"]);
    assert!(listed.iter().all(|i| i["deal_id"] == "deal-102"), "{listed:?}");

    let overdue =
        sandbox.invoice_ids("2026-11-25", &[&config[..], &["--deal", "deal-102", "--status", "overdue"]].concat());
    assert_eq!(overdue, ["101", "103"]);
    assert!(sandbox.invoices("2026-11-25", &[&config[..], &["--deal", "deal-999"]].concat()).is_empty());
}

#[test]
fn deal_properties_ignore_invoices_in_another_currency() {
    let sandbox = Sandbox::with_examples();
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "deals", "show", "deal-102", "--json"]);
    let deal = run.expect_code(0).json();
    assert_eq!(deal["kind"], "deal");
    assert_eq!(deal["id"], "deal-102");
    assert_eq!(deal["source"]["account"], "acme-us");
    assert_eq!(deal["source"]["id"], "103");
    assert_eq!(deal["properties"]["amount"], "9800.00");
    assert_eq!(deal["properties"]["currency"], "USD");
    assert_eq!(deal["properties"]["number"], "1014");
    assert_eq!(deal["properties"]["status"], "overdue");
    assert_eq!(deal["properties"]["due_date"], "2026-11-11");
    assert_eq!(deal["properties"]["recipient"], "payables.mapleleaf@example.com");

    let invoices = deal["invoices"].as_array().expect("invoices");
    assert_eq!(invoices.len(), 3);
    for invoice in invoices {
        let id = text(&invoice["id"]);
        match id.as_str() {
            "103" => {
                assert_eq!(invoice["used"], true);
                assert_eq!(invoice["verdict"]["verdict"], "used");
            }
            "101" | "121" => {
                assert_eq!(invoice["used"], false, "{invoice}");
                assert_eq!(invoice["verdict"]["verdict"], "other_currency", "{invoice}");
                assert_eq!(invoice["verdict"]["currency"], "CAD", "{invoice}");
                assert_eq!(invoice["verdict"]["home_currency"], "USD", "{invoice}");
                assert!(text(&invoice["reason"]).contains("CAD"), "{invoice}");
            }
            other => panic!("unexpected invoice {other} on deal-102"),
        }
    }

    // atelier-fr's only invoice on deal-133 is in USD: no properties at all.
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "deals", "show", "deal-133", "--json"]);
    let deal = run.expect_code(0).json();
    assert_eq!(deal["properties"], Value::Null);
    assert_eq!(deal["source"], Value::Null);
    assert_eq!(deal["invoices"][0]["verdict"]["verdict"], "other_currency");
}

#[test]
fn deal_properties_tie_goes_to_the_larger_numeric_id() {
    let sandbox = Sandbox::with_examples();
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "deals", "show", "deal-103", "--json"]);
    let deal = run.expect_code(0).json();
    assert_eq!(deal["source"]["id"], "100", "100 > 99 as numbers although \"99\" > \"100\" as text");
    assert_eq!(deal["properties"]["number"], "1011");
    assert_eq!(deal["properties"]["amount"], "1850.00");
    assert_eq!(deal["properties"]["status"], "paid");
    let verdict_of = |id: &str| {
        deal["invoices"].as_array().expect("invoices").iter().find(|i| i["id"] == id).expect(id)["verdict"]["verdict"]
            .clone()
    };
    assert_eq!(verdict_of("100"), "used");
    assert_eq!(verdict_of("99"), "tie_smaller_id");
    assert_eq!(verdict_of("113"), "older");

    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "deals", "show", "deal-103"]);
    assert!(run.expect_code(0).stdout.contains("from invoice       acme-us/100"), "{run:#?}");
}

#[test]
fn linking_and_unlinking_an_invoice_records_deal_id_changes() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["--now", "2026-11-24", "import", QBO_INVOICE_239]);
    run.expect_code(0);
    let now = ["--now", "2026-11-25T10:00:00Z"];
    let cmd = |args: &[&str]| sandbox.run(&[&now[..], args].concat());

    let empty = cmd(&["deals", "show", "deal-7"]);
    assert!(empty.expect_code(0).stdout.contains("no invoices linked"), "{empty:#?}");

    let link = cmd(&["deals", "link", "deal-7", "239"]);
    assert_eq!(link.expect_code(0).stdout.trim(), "linked invoice default/239 to deal deal-7");
    let again = cmd(&["deals", "link", "deal-7", "239"]);
    assert_eq!(again.expect_code(0).stdout.trim(), "invoice default/239 was already linked to deal deal-7");

    let shown = cmd(&["deals", "show", "deal-7", "--json"]).expect_code(0).json();
    assert_eq!(shown["source"]["id"], "239");
    assert_eq!(shown["properties"]["amount"], "150.00");
    assert_eq!(shown["properties"]["number"], "1070");
    assert_eq!(sandbox.invoices("2026-11-25", &["--deal", "deal-7"])[0]["deal_id"], "deal-7");

    let deal_events = |sandbox: &Sandbox| -> Vec<(Value, Value, Value)> {
        sandbox
            .changes(&["--record", "239"])
            .into_iter()
            .filter(|e| e["property"] == "deal_id")
            .map(|e| (e["old"].clone(), e["new"].clone(), e["source_time"].clone()))
            .collect()
    };
    assert_eq!(deal_events(&sandbox), [(Value::Null, "deal-7".into(), "2026-11-25T10:00:00Z".into())]);

    let unlink = cmd(&["deals", "unlink", "deal-7", "239"]);
    assert_eq!(unlink.expect_code(0).stdout.trim(), "unlinked invoice default/239 from deal deal-7");
    let again = cmd(&["deals", "unlink", "deal-7", "239"]);
    assert_eq!(again.expect_code(0).stdout.trim(), "invoice default/239 was not linked to deal deal-7");
    assert_eq!(
        deal_events(&sandbox),
        [
            (Value::Null, "deal-7".into(), "2026-11-25T10:00:00Z".into()),
            ("deal-7".into(), Value::Null, "2026-11-25T10:00:00Z".into()),
        ]
    );
    let shown = cmd(&["deals", "show", "deal-7", "--json"]).expect_code(0).json();
    assert_eq!(shown["source"], Value::Null);
    assert_eq!(shown["invoices"], serde_json::json!([]));
    assert!(sandbox.invoices("2026-11-25", &["--deal", "deal-7"]).is_empty());

    let missing = cmd(&["deals", "link", "deal-7", "404"]);
    missing.expect_code(2);
    assert!(missing.stderr.contains("no invoice 404 is stored"), "{missing:#?}");
}

#[test]
fn refresh_records_the_day_an_invoice_becomes_overdue() {
    let sandbox = Sandbox::new();
    let config = sandbox.write("invoiceflow.toml", "[company]\ntime_zone = \"America/New_York\"\n");
    let invoice = r#"{"id":"r-1","customer":"Tidewater Yoga Studio","recipient":"hello.tidewater@example.org","amount":"640.00","txn_date":"2026-11-01","due_date":"2026-11-20","email_status":"EmailSent","updated_at":"2026-11-01T15:00:00Z"}"#;
    let file = sandbox.write("sent.jsonl", format!("{invoice}\n"));
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-19", "import", &file]);
    assert_eq!(run.expect_code(0).summary(), "imported 1, updated 0, unchanged 0, stale 0, rejected 0");
    assert_eq!(sandbox.invoices("2026-11-19", &["--config", &config])[0]["status"], "sent");

    let refresh = sandbox.run(&["--config", &config, "--now", "2026-11-22", "refresh"]);
    assert_eq!(refresh.expect_code(0).stdout.trim(), "refreshed: 1 status changes recorded");
    let status: Vec<Value> =
        sandbox.changes(&["--record", "r-1"]).into_iter().filter(|e| e["property"] == "status").collect();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["old"], "sent");
    assert_eq!(status[0]["new"], "overdue");
    assert_eq!(status[0]["source_time"], "2026-11-21T05:00:00Z", "midnight of 2026-11-21 in New York");

    let events = sandbox.changes(&[]).len();
    let again = sandbox.run(&["--config", &config, "--now", "2026-11-22", "refresh"]);
    assert_eq!(again.expect_code(0).stdout.trim(), "refreshed: 0 status changes recorded");
    let later = sandbox.run(&["--config", &config, "--now", "2026-11-23", "refresh"]);
    assert_eq!(later.expect_code(0).stdout.trim(), "refreshed: 0 status changes recorded");
    assert_eq!(sandbox.changes(&[]).len(), events);
}

#[test]
fn an_unknown_config_key_is_an_error_naming_it() {
    let sandbox = Sandbox::new();
    let config = sandbox.write("invoiceflow.toml", "[company]\ntimezone = \"America/New_York\"\n");
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-25", "invoices"]);
    run.expect_code(2);
    assert!(run.stderr.contains(&config), "names the file: {run:#?}");
    assert!(run.stderr.contains("unknown field `timezone`"), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(!sandbox.path("invoiceflow.db").exists(), "no database is opened with a bad configuration");
}

#[test]
fn a_bad_time_zone_names_company_time_zone() {
    let sandbox = Sandbox::new();
    let config = sandbox.write("invoiceflow.toml", "[company]\ntime_zone = \"Mars/Olympus\"\n");
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-25", "invoices"]);
    run.expect_code(2);
    assert!(run.stderr.contains("`company.time_zone`"), "{run:#?}");
    assert!(run.stderr.contains("Mars/Olympus") && run.stderr.contains("IANA"), "{run:#?}");
    assert!(!sandbox.path("invoiceflow.db").exists());
}

#[test]
fn importing_a_directory_reads_its_json_and_jsonl_files() {
    let sandbox = Sandbox::new();
    sandbox.write("in/a.jsonl", format!("{}\n{}\n", good("line-1"), good("line-2")));
    sandbox.write("in/b.json", std::fs::read(QBO_INVOICE_239).expect("sample invoice"));
    sandbox.write("in/notes.txt", "{\"id\":\"not-read\"}\n");
    sandbox.write("in/c.jsonl.bak", format!("{}\n", good("not-read-either")));
    let dir = sandbox.path("in").display().to_string();
    let run = sandbox.run(&["--now", "2026-11-25", "import", &dir]);
    assert_eq!(run.expect_code(0).summary(), "imported 3, updated 0, unchanged 0, stale 0, rejected 0");
    assert_eq!(sandbox.invoice_ids("2026-11-25", &[]), ["239", "line-1", "line-2"]);

    let empty = sandbox.path("empty");
    std::fs::create_dir(&empty).expect("empty directory");
    let run = sandbox.run(&["--now", "2026-11-25", "import", &empty.display().to_string()]);
    run.expect_code(2);
    assert!(run.stderr.contains("holds no .json or .jsonl file"), "{run:#?}");
}

#[test]
fn a_quickbooks_query_response_adds_to_the_examples() {
    let sandbox = Sandbox::with_examples();
    let run = sandbox.run(&[
        "--config",
        EXAMPLE_CONFIG,
        "--now",
        "2026-11-25",
        "import",
        "--account",
        "acme-us",
        EXAMPLE_QUERY,
    ]);
    assert_eq!(run.expect_code(0).summary(), "imported 2, updated 0, unchanged 0, stale 0, rejected 0");
    let acme = sandbox.invoices("2026-11-25", &["--config", EXAMPLE_CONFIG, "--account", "acme-us"]);
    assert_eq!(acme.len(), 43);
    let count = |status: &str| acme.iter().filter(|i| i["status"] == status).count();
    assert_eq!((count("sent"), count("awaiting_send")), (13, 8));
}
