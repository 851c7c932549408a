//! The command line, run as a user runs it.
//!
//! Each test runs the real `invoiceflow` binary against its own SQLite file in a temporary
//! directory, always with `--now`, so results do not depend on the day the tests run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::Receiver;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");
const QBO_INVOICE_239: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/testdata/qbo-invoice-239.json");
const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/invoiceflow.toml");
const EXAMPLE_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data");
const EXAMPLE_QUERY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickbooks/acme-us-query.json");
const EXAMPLE_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rules");
const EXAMPLE_UPDATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/updates");

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

// ---- rules -------------------------------------------------------------------------------------

/// The Slack message `payment-received` posts when the example updates pay invoice 108.
const PAID_108: &str = "💰 Northwind Traders paid invoice #1019 ($7,200.00)";
/// The task `large-invoice-due-date-moved` creates when the example updates move invoice 120.
const MOVED_120: &str =
    "task \"Due date of invoice 1031 ($12,500.00) moved to 2027-02-15\" for account owner, due 2026-11-28";
/// The example rules.
const RULE_NAMES: [&str; 4] =
    ["bill-due-soon", "large-invoice-due-date-moved", "overdue-follow-up", "payment-received"];

impl Sandbox {
    /// Copies the example configuration to `invoiceflow.toml` in the sandbox and the example rules
    /// to `rules/` beside it (the configuration's `[rules] dir`); returns the configuration's path.
    fn with_example_rules(&self) -> String {
        copy_dir(Path::new(EXAMPLE_RULES), &self.path("rules"));
        self.write("invoiceflow.toml", std::fs::read(EXAMPLE_CONFIG).expect("example configuration"))
    }

    /// Replaces `from` by `to` in the sandbox file `name` (which must hold it once); returns the
    /// file's path as text.
    fn edit(&self, name: &str, from: &str, to: &str) -> String {
        let text = std::fs::read_to_string(self.path(name)).expect("file to edit");
        assert_eq!(text.matches(from).count(), 1, "{from:?} once in {name}");
        self.write(name, text.replacen(from, to, 1))
    }

    /// Imports the example data on 2026-11-25, then the example updates on 2026-11-26 at 17:00
    /// UTC, with `config`; returns the second run.
    fn import_data_then_updates(&self, config: &str) -> Run {
        let run = self.run(&["--config", config, "--now", "2026-11-25", "import", EXAMPLE_DATA]);
        assert_eq!(run.expect_code(0).summary(), "imported 70, updated 0, unchanged 0, stale 0, rejected 0");
        let run = self.run(&["--config", config, "--now", "2026-11-26T17:00:00Z", "import", EXAMPLE_UPDATES]);
        assert_eq!(run.expect_code(0).summary(), "imported 1, updated 2, unchanged 0, stale 0, rejected 0");
        run
    }

    /// `actions` with `config`, checking that its last line counts `actions` actions and `failed`
    /// failed evaluations.
    #[track_caller]
    fn actions(&self, config: &str, actions: usize, failed: usize) -> Run {
        let run = self.run(&["--config", config, "actions"]);
        let last = run.expect_code(0).stdout.lines().last().map(str::to_owned);
        assert_eq!(last, Some(summary(actions, failed)), "{run:#?}");
        run
    }

    /// Whether a database file appeared in the sandbox, the working directory of every run: the
    /// one `--database` names, or the example configuration's.
    fn has_database(&self) -> bool {
        ["invoiceflow.db", "invoiceflow-demo.db"].iter().any(|name| self.path(name).exists())
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let path = entry.expect("directory entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

/// A rule version: 12 hex digits of its file's hash.
fn is_version(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The first line of standard output containing `needle`, and the line after it.
#[track_caller]
fn line_and_next<'a>(run: &'a Run, needle: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?}: {run:#?}"));
    (lines[at], lines.get(at + 1).copied().unwrap_or_else(|| panic!("nothing after {needle:?}: {run:#?}")))
}

/// Checks `why: rule RULE@VERSION, change #N: CHANGE, on RECORD`; returns N.
#[track_caller]
fn assert_why(why: &str, rule: &str, change: &str, record: &str) -> i64 {
    let rest = why.trim_start().strip_prefix(&format!("why: rule {rule}@")).unwrap_or_else(|| panic!("{why}"));
    let (version, rest) = rest.split_once(", change #").unwrap_or_else(|| panic!("{why}"));
    assert!(is_version(version), "version {version:?} in {why}");
    let (event, rest) = rest.split_once(": ").unwrap_or_else(|| panic!("{why}"));
    assert_eq!(rest, format!("{change}, on {record}"), "{why}");
    event.parse().unwrap_or_else(|_| panic!("event number in {why}"))
}

/// The sequence number of acme-us invoice `id`'s change of `property` to `new`.
#[track_caller]
fn event_seq(sandbox: &Sandbox, id: &str, property: &str, new: &str) -> i64 {
    let events = sandbox.changes(&["--record", &format!("acme-us/{id}")]);
    let event = events.iter().find(|e| e["property"] == property && e["new"] == new);
    event.unwrap_or_else(|| panic!("no {property} → {new} of {id}: {events:?}"))["seq"].as_i64().expect("seq")
}

/// Runs `check` on a copy of the example rules where `from` became `to` in `rule`, and checks it
/// exits 1 printing `FILE:LINE:COL: error: MESSAGE`, the edited source line and a caret under
/// column COL, while the other rules still check. Returns the source line and the column.
#[track_caller]
fn assert_check_error(rule: &str, from: &str, to: &str, message: &str) -> (String, usize) {
    let sandbox = Sandbox::new();
    let config = sandbox.with_example_rules();
    let file = sandbox.edit(&format!("rules/{rule}.toml"), from, to);
    let run = sandbox.run(&["--config", &config, "check"]);
    run.expect_code(1);
    assert!(!sandbox.has_database(), "check opens no database");

    let lines: Vec<&str> = run.stdout.lines().collect();
    let header = lines.iter().position(|l| l.starts_with(&format!("{file}:"))).unwrap_or_else(|| panic!("{run:#?}"));
    let location = lines[header].strip_prefix(&format!("{file}:")).expect("file");
    let (line, rest) = location.split_once(':').expect("line");
    let (col, rest) = rest.split_once(':').expect("column");
    let (line, col): (usize, usize) = (line.parse().expect("line number"), col.parse().expect("column number"));
    assert_eq!(rest, format!(" error: {message}"), "{run:#?}");

    let text = std::fs::read_to_string(&file).expect("rule");
    let source = text.lines().nth(line - 1).expect("the line exists");
    assert!(source.contains(to), "line {line} is the edited one: {source:?}");
    let gutter = " ".repeat(line.to_string().len());
    assert_eq!(lines[header + 1], format!("{gutter} |"), "{run:#?}");
    assert_eq!(lines[header + 2], format!("{line} | {source}"), "the source line: {run:#?}");
    assert_eq!(lines[header + 3], format!("{gutter} | {}^", " ".repeat(col - 1)), "a caret at {col}: {run:#?}");

    for other in RULE_NAMES.iter().filter(|r| **r != rule) {
        assert!(run.stdout.contains(&format!("rules/{other}.toml: ok")), "{other} still checks: {run:#?}");
    }
    let summary = run.stdout.lines().last().expect("summary");
    assert!(summary.starts_with("checked 4 rules in ") && summary.ends_with(": 1 error, 0 warnings"), "{run:#?}");
    (source.to_owned(), col)
}

#[test]
fn check_passes_on_the_example_rules_without_a_database() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "check", EXAMPLE_RULES]);
    run.expect_code(0);
    for rule in RULE_NAMES {
        assert!(run.stdout.contains(&format!("{EXAMPLE_RULES}/{rule}.toml: ok")), "{rule}: {run:#?}");
    }
    let summary = format!("checked 4 rules in {EXAMPLE_RULES}: 0 errors, 0 warnings");
    assert_eq!(run.stdout.lines().last(), Some(summary.as_str()), "{run:#?}");
    assert!(!sandbox.has_database(), "check opens no database");

    // Without a directory named, the configuration's `[rules] dir`.
    let config = sandbox.with_example_rules();
    let run = sandbox.run(&["--config", &config, "check"]);
    assert!(run.expect_code(0).stdout.contains("checked 4 rules in "), "{run:#?}");
    assert!(!sandbox.has_database(), "check opens no database");
}

#[test]
fn check_points_at_a_property_typo() {
    let (source, col) = assert_check_error(
        "payment-received",
        "${invoice.customer}",
        "${invoice.custmer}",
        "`invoice` has no property `custmer`: did you mean `customer`?",
    );
    let under: String = source.chars().skip(col - 1).collect();
    assert!(under.starts_with("custmer"), "the caret is under the typo: {under:?}");
}

#[test]
fn check_names_an_unknown_destination_and_the_known_ones() {
    assert_check_error(
        "bill-due-soon",
        r#"email("ap-team","#,
        r#"email("ap-tem","#,
        r#"unknown email destination "ap-tem" (did you mean "ap-team"?); known: ap-team (see [destinations] in invoiceflow.toml)"#,
    );
}

#[test]
fn check_rejects_a_bad_cron_expression() {
    assert_check_error(
        "overdue-follow-up",
        r#"schedule = "0 0 9 * * Mon-Fri""#,
        r#"schedule = "0 0 25 * * Mon-Fri""#,
        r#"trigger 1: invalid cron expression "0 0 25 * * Mon-Fri": Hours must be less than 23. ('25' specified.) (fields: second minute hour day-of-month month day-of-week [year], e.g. "0 0 9 * * Mon-Fri" for weekdays at 09:00)"#,
    );
}

#[test]
fn test_passes_on_the_example_rules_without_a_database() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "test", EXAMPLE_RULES]);
    run.expect_code(0);
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("  ok    ")).count(), 16, "{run:#?}");
    assert!(!run.stdout.contains("FAIL"), "{run:#?}");
    let summary = format!("4 rules in {EXAMPLE_RULES}: 16 passed, 0 failed");
    assert_eq!(run.stdout.lines().last(), Some(summary.as_str()), "{run:#?}");
    assert!(!sandbox.has_database(), "test opens no database");
}

#[test]
fn a_wrong_expectation_fails_the_tests_showing_expected_and_actual() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_example_rules();
    let tests =
        sandbox.edit("rules/payment-received.test.toml", "invoice #1001 ($1,250.00)", "invoice #1001 ($1,250.01)");
    let run = sandbox.run(&["--config", &config, "test"]);
    run.expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines.iter().position(|l| l.contains("FAIL")).unwrap_or_else(|| panic!("{run:#?}"));
    assert_eq!(lines[at], format!("  FAIL  an invoice paid in full posts to finance ({tests}:3)"), "{run:#?}");
    let slack = |amount: &str| {
        format!(r#"{{"destination":"finance","text":"💰 Acme Corp paid invoice #1001 ({amount})","type":"slack"}}"#)
    };
    let why: Vec<&str> = lines[at + 1..at + 5].iter().map(|l| l.trim()).collect();
    assert_eq!(
        why,
        ["expected:", &format!("- {}", slack("$1,250.01")), "actual:", &format!("+ {}", slack("$1,250.00"))],
        "{run:#?}"
    );
    assert_eq!(lines.iter().filter(|l| l.contains("FAIL")).count(), 1, "{run:#?}");
    assert!(lines.last().expect("summary").ends_with(": 15 passed, 1 failed"), "{run:#?}");
    assert!(!sandbox.has_database(), "test opens no database");
}

#[test]
fn importing_changes_decides_the_actions_of_the_rules_they_trigger() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "import", EXAMPLE_DATA]);
    assert!(!run.expect_code(0).stdout.contains("rules:"), "creating records triggers no example rule: {run:#?}");
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-26T17:00:00Z", "import", EXAMPLE_UPDATES]);
    assert_eq!(run.expect_code(0).summary(), "imported 1, updated 2, unchanged 0, stale 0, rejected 0");
    let rules = run.stdout.lines().find(|l| l.starts_with("rules: ")).unwrap_or_else(|| panic!("{run:#?}"));
    assert_eq!(rules, "rules: 4 changes evaluated, 2 actions decided (see `invoiceflow actions`)");

    let run = sandbox.actions(EXAMPLE_CONFIG, 2, 0);
    let (action, why) = line_and_next(&run, "slack → finance");
    assert!(action.ends_with(&format!("2026-11-26 17:00 UTC  slack → finance: {PAID_108:?}")), "{action}");
    let paid = assert_why(why, "payment-received", "status sent → paid", "invoice acme-us/108");
    assert_eq!(paid, event_seq(&sandbox, "108", "status", "paid"), "the change that started it");
    let (_, saw) = line_and_next(&run, "why: rule payment-received@");
    assert!(saw.trim_start().starts_with("saw: "), "{saw}");
    assert!(saw.contains("status paid") && saw.contains("balance 0.00"), "{saw}");
    let (action, why) = line_and_next(&run, "task ");
    assert!(action.ends_with(MOVED_120), "{action}");
    let moved =
        assert_why(why, "large-invoice-due-date-moved", "due_date 2027-01-14 → 2027-02-15", "invoice acme-us/120");
    assert_eq!(moved, event_seq(&sandbox, "120", "due_date", "2027-02-15"));

    let json = sandbox.run(&["--config", EXAMPLE_CONFIG, "actions", "--json"]).expect_code(0).json_lines();
    assert_eq!(json.len(), 2, "{json:?}");
    for intent in &json {
        for field in ["key", "rule", "version", "cause", "seen", "action"] {
            assert!(!intent[field].is_null(), "{field} in {intent}");
        }
        assert!(is_version(&text(&intent["version"])), "{intent}");
        assert!(!text(&intent["key"]).is_empty(), "{intent}");
    }
    let slack = json.iter().find(|i| i["rule"] == "payment-received").expect("payment-received");
    assert_eq!(
        slack["cause"],
        serde_json::json!({"type": "change", "event": paid, "property": "status", "from": "sent", "to": "paid"})
    );
    assert_eq!(slack["record"], serde_json::json!({"kind": "invoice", "account": "acme-us", "id": "108"}));
    assert_eq!(slack["action"], serde_json::json!({"type": "slack", "destination": "finance", "text": PAID_108}));
    assert_eq!(slack["seen"]["status"], "paid");
    assert_eq!(slack["seen"]["balance"], "0.00");
    let task = json.iter().find(|i| i["rule"] == "large-invoice-due-date-moved").expect("due date rule");
    assert_eq!(task["action"]["type"], "task");
    assert_eq!(task["action"]["due"], "2026-11-28");
    assert_eq!(task["cause"]["event"], moved);

    // The same updates again record no change, so they decide nothing.
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-26T18:00:00Z", "import", EXAMPLE_UPDATES]);
    assert_eq!(run.expect_code(0).summary(), "imported 0, updated 0, unchanged 3, stale 0, rejected 0");
    assert!(!run.stdout.contains("rules:"), "{run:#?}");
    sandbox.actions(EXAMPLE_CONFIG, 2, 0);
}

#[test]
fn refresh_decides_the_actions_of_the_status_changes_time_made() {
    let sandbox = Sandbox::new();
    let config = sandbox.write(
        "invoiceflow.toml",
        "[company]\ntime_zone = \"America/New_York\"\n\n[destinations.finance]\nslack = \"https://hooks.slack.com/services/T0/B0/X\"\n",
    );
    sandbox.write(
        "rules/overdue-alert.toml",
        "name = \"Overdue alert\"\non = { change = \"status\", to = \"overdue\" }\nthen = 'slack(\"finance\", `${invoice.number} is overdue`)'\n",
    );
    let invoice = r#"{"id":"r-1","number":"R1","customer":"Tidewater Yoga Studio","amount":"640.00","txn_date":"2026-11-01","due_date":"2026-11-20","email_status":"EmailSent","updated_at":"2026-11-01T15:00:00Z"}"#;
    let file = sandbox.write("sent.jsonl", format!("{invoice}\n"));
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-19", "import", &file]);
    assert!(!run.expect_code(0).stdout.contains("rules:"), "{run:#?}");

    let refresh = sandbox.run(&["--config", &config, "--now", "2026-11-22", "refresh"]);
    assert_eq!(
        refresh.expect_code(0).stdout,
        "refreshed: 1 status changes recorded\nrules: 1 change evaluated, 1 action decided (see `invoiceflow actions`)\n"
    );
    let run = sandbox.actions(&config, 1, 0);
    let (action, why) = line_and_next(&run, "slack → finance");
    assert!(action.ends_with("slack → finance: \"R1 is overdue\""), "{action}");
    let event = assert_why(why, "overdue-alert", "status sent → overdue", "invoice default/r-1");
    let overdue = sandbox.changes(&["--record", "r-1"]).into_iter().find(|e| e["new"] == "overdue").expect("overdue");
    assert_eq!(Some(event), overdue["seq"].as_i64());

    let again = sandbox.run(&["--config", &config, "--now", "2026-11-23", "refresh"]);
    assert_eq!(again.expect_code(0).stdout, "refreshed: 0 status changes recorded\n");
    sandbox.actions(&config, 1, 0);
}

impl Sandbox {
    /// The example rules and configuration, plus `fragile`, a rule that fails at runtime when
    /// invoice 1019 (acme-us/108) is paid; returns the configuration's path.
    fn with_a_fragile_rule(&self) -> String {
        let config = self.with_example_rules();
        // It compiles and passes check's dry run; it divides by zero for invoice number 1019 only.
        self.write(
            "rules/fragile.toml",
            r#"name = "Fragile"
on = { change = "status", to = "paid" }
then = '''
let share = if invoice.number == "1019" { 1 / 0 } else { 1 };
slack("finance", `share ${share}`)
'''
"#,
        );
        config
    }
}

#[test]
fn a_rule_failing_for_one_record_is_recorded_and_the_other_rules_still_act() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_a_fragile_rule();
    let check = sandbox.run(&["--config", &config, "check"]);
    assert!(check.expect_code(0).stdout.contains("checked 5 rules in "), "{check:#?}");

    let run = sandbox.import_data_then_updates(&config);
    let rules = run.stdout.lines().find(|l| l.starts_with("rules: ")).unwrap_or_else(|| panic!("{run:#?}"));
    assert_eq!(rules, "rules: 4 changes evaluated, 2 actions decided, 1 evaluation failed (see `invoiceflow actions`)");

    let run = sandbox.actions(&config, 2, 1);
    let paid = event_seq(&sandbox, "108", "status", "paid");
    let (_, why) = line_and_next(&run, &format!("slack → finance: {PAID_108:?}"));
    assert_eq!(assert_why(why, "payment-received", "status sent → paid", "invoice acme-us/108"), paid);
    assert!(run.stdout.contains(MOVED_120), "{run:#?}");
    let (failed, cause) = line_and_next(&run, "failed #");
    let (_, rest) = failed.split_once("  rule fragile@").unwrap_or_else(|| panic!("{failed}"));
    let (version, rest) = rest.split_once(' ').expect("version");
    assert!(is_version(version), "{failed}");
    assert!(rest.starts_with("on invoice acme-us/108: error: ") && rest.contains("Division by zero"), "{failed}");
    assert_eq!(cause.trim(), format!("change #{paid}: status sent → paid"));

    let json = sandbox.run(&["--config", &config, "actions", "--json"]).expect_code(0).json_lines();
    assert_eq!(json.iter().filter(|l| l.get("action").is_some()).count(), 2, "{json:?}");
    let failures: Vec<&Value> = json.iter().filter_map(|l| l.get("failure")).collect();
    assert_eq!(failures.len(), 1, "{json:?}");
    let failure = failures[0];
    assert_eq!(failure["rule"], "fragile");
    assert_eq!(failure["record"], serde_json::json!({"kind": "invoice", "account": "acme-us", "id": "108"}));
    assert_eq!(failure["cause"]["event"], paid);
    assert_eq!(failure["limit"], false);
    assert!(text(&failure["message"]).contains("Division by zero"), "{failure}");

    let now = ["--config", &config, "--now", "2026-11-26T17:00:00Z"];
    let explain = sandbox.run(&[&now[..], &["explain", "--rule", "fragile", "--record", "108"]].concat());
    explain.expect_code(1);
    assert!(
        explain.stdout.contains("evaluation failed: ") && explain.stdout.contains("Division by zero"),
        "{explain:#?}"
    );
}

#[test]
fn explain_shows_the_change_that_triggers_a_rule_and_what_it_would_do() {
    let sandbox = Sandbox::new();
    sandbox.import_data_then_updates(EXAMPLE_CONFIG);
    let paid = event_seq(&sandbox, "108", "status", "paid");
    let now = ["--config", EXAMPLE_CONFIG, "--now", "2026-11-26T17:00:00Z"];
    let run = sandbox.run(&[&now[..], &["explain", "--rule", "payment-received", "--record", "108"]].concat());
    let lines: Vec<&str> = run.expect_code(0).stdout.lines().collect();
    assert!(lines[0].starts_with("rule payment-received (Payment received@"), "{run:#?}");
    assert_eq!(
        lines[1..],
        [
            "record invoice acme-us/108 on 2026-11-26 (America/New_York): status paid",
            &format!("trigger: change #{paid}: status sent → paid"),
            "when: (no condition) → true",
            &format!("it would: slack → finance: {PAID_108:?}"),
        ]
    );
}

#[test]
fn explain_evaluates_a_scheduled_rule_on_the_day_given_by_now() {
    let sandbox = Sandbox::with_examples();
    let explain = |now: &str| {
        let args = ["--config", EXAMPLE_CONFIG, "--now", now, "explain", "--rule", "overdue-follow-up"];
        sandbox.run(&[&args[..], &["--record", "105"]].concat())
    };
    let run = explain("2026-11-25T14:00:00Z");
    let out = &run.expect_code(0).stdout;
    assert!(out.contains("record invoice acme-us/105 on 2026-11-25 (America/New_York): status overdue\n"), "{run:#?}");
    let next = "trigger: schedule \"0 0 9 * * Mon-Fri\"; next slot 2026-11-26 09:00 (America/New_York)\n";
    assert!(out.contains(next), "{run:#?}");
    let when = out.lines().find(|l| l.starts_with("when: ")).unwrap_or_else(|| panic!("{run:#?}"));
    assert!(when.ends_with(" → true"), "7 days overdue: {when}");
    let email = "it would: email to ap.cascade@example.com: \"Reminder: invoice 1016 is 7 days overdue\"\n";
    assert!(out.contains(email), "{run:#?}");
    assert!(out.contains("    | Invoice 1016 was due on November 18, 2026.\n"), "{run:#?}");
    assert!(out.contains("    | The amount due is $3,975.00 (of $3,975.00).\n"), "{run:#?}");

    let run = explain("2026-11-26T14:00:00Z");
    let out = &run.expect_code(0).stdout;
    let when = out.lines().find(|l| l.starts_with("when: ")).unwrap_or_else(|| panic!("{run:#?}"));
    assert!(when.ends_with(" → false"), "8 days overdue: {when}");
    assert_eq!(out.lines().last(), Some("it would do nothing"), "{run:#?}");
    assert!(!out.contains("it would:"), "{run:#?}");
}

#[test]
fn rules_added_after_an_import_do_not_fire_on_older_changes() {
    let sandbox = Sandbox::new();
    let example = std::fs::read_to_string(EXAMPLE_CONFIG).expect("example configuration");
    // No [rules]: the default directory, `rules` beside the configuration, does not exist yet.
    let rules_section = ["[rules]", "dir =", "locale ="];
    let without: Vec<&str> =
        example.lines().filter(|l| !rules_section.iter().any(|start| l.starts_with(start))).collect();
    assert_eq!(without.len(), example.lines().count() - 3, "the example configuration has [rules] dir and locale");
    let config = sandbox.write("invoiceflow.toml", without.join("\n"));
    assert!(!sandbox.path("rules").exists());
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-25", "import", EXAMPLE_DATA]);
    assert!(!run.expect_code(0).stdout.contains("rules:"), "{run:#?}");

    // An empty rules directory: no rule is on when the updates come in.
    std::fs::create_dir(sandbox.path("rules")).expect("rules directory");
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-26T17:00:00Z", "import", EXAMPLE_UPDATES]);
    assert_eq!(run.expect_code(0).summary(), "imported 1, updated 2, unchanged 0, stale 0, rejected 0");
    assert!(!run.stdout.contains("rules:"), "{run:#?}");

    // The rules arrive: importing the same file again evaluates nothing.
    copy_dir(Path::new(EXAMPLE_RULES), &sandbox.path("rules"));
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-26T18:00:00Z", "import", EXAMPLE_UPDATES]);
    assert_eq!(run.expect_code(0).summary(), "imported 0, updated 0, unchanged 3, stale 0, rejected 0");
    assert!(!run.stdout.contains("rules:"), "{run:#?}");
    sandbox.actions(&config, 0, 0);

    // A change after the rules arrived is acted on.
    let paid = r#"{"type":"invoice","id":"120","account":"acme-us","number":"1031","customer":"Redwood & Co. Architects","customer_id":"49","recipient":"studio.redwood@example.com","currency":"USD","amount":"12500.00","balance":"0.00","txn_date":"2026-11-15","due_date":"2027-02-15","email_status":"EmailSent","deal_id":"deal-111","updated_at":"2026-11-27T10:00:00Z"}"#;
    let file = sandbox.write("paid-120.jsonl", format!("{paid}\n"));
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-27T12:00:00Z", "import", &file]);
    assert_eq!(run.expect_code(0).summary(), "imported 0, updated 1, unchanged 0, stale 0, rejected 0");
    assert!(run.stdout.contains(", 1 action decided"), "{run:#?}");
    let run = sandbox.actions(&config, 1, 0);
    let (_, why) =
        line_and_next(&run, "slack → finance: \"💰 Redwood & Co. Architects paid invoice #1031 ($12,500.00)\"");
    assert_why(why, "payment-received", "status sent → paid", "invoice acme-us/120");
}

#[test]
fn actions_lists_only_the_named_rules_or_records_actions_and_failures() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_a_fragile_rule();
    sandbox.import_data_then_updates(&config);
    let actions = |filter: &[&str], actions: usize, failed: usize| {
        let run = sandbox.run(&[&["--config", config.as_str(), "actions"][..], filter].concat());
        let last = run.expect_code(0).stdout.lines().last().map(str::to_owned);
        assert_eq!(last, Some(summary(actions, failed)), "{filter:?}: {run:#?}");
        run
    };
    let run = actions(&["--rule", "payment-received"], 1, 0);
    assert!(run.stdout.contains(PAID_108) && !run.stdout.contains(MOVED_120), "{run:#?}");
    let run = actions(&["--rule", "fragile"], 0, 1);
    assert!(run.stdout.contains("rule fragile@"), "{run:#?}");
    let run = actions(&["--record", "108"], 1, 1);
    assert!(run.stdout.contains(PAID_108) && run.stdout.contains("rule fragile@"), "{run:#?}");
    // Invoice 120's: its task, and not the failure of invoice 108.
    let run = actions(&["--record", "120"], 1, 0);
    assert!(run.stdout.contains(MOVED_120), "{run:#?}");
    let json = sandbox.run(&["--config", &config, "actions", "--record", "acme-us/120", "--json"]);
    let lines = json.expect_code(0).json_lines();
    assert!(lines.iter().all(|l| l["record"]["id"] == "120"), "only invoice 120's: {lines:?}");
}

/// The last line of `actions`: "1 action, 2 failed evaluations".
fn summary(actions: usize, failed: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}, {}", plural(actions, "action"), plural(failed, "failed evaluation"))
}

// ---- workflows and simulate --------------------------------------------------------------------

/// The four built-in workflows, in the order `workflows` lists them.
const WORKFLOW_NAMES: [&str; 4] = ["payment_due", "vendor_payment", "bank_deposit", "unsent_invoice"];
/// What `[workflows.payment_due]` holds to switch it on.
const PAYMENT_DUE_ON: &str = "[workflows.payment_due]\nenabled = true\n";

impl Sandbox {
    /// The example configuration and rules in the sandbox (see [`Sandbox::with_example_rules`])
    /// with `extra` appended to the configuration; returns the configuration's path.
    fn with_workflow_settings(&self, extra: &str) -> String {
        let config = self.with_example_rules();
        let text = std::fs::read_to_string(&config).expect("example configuration");
        self.write("invoiceflow.toml", format!("{text}\n{extra}"))
    }

    /// `simulate --from FROM --to TO EXTRA…` with `config` on 2026-11-25.
    fn simulate(&self, config: &str, from: &str, to: &str, extra: &[&str]) -> Run {
        let args = [&["--config", config, "--now", "2026-11-25", "simulate", "--from", from, "--to", to][..], extra];
        self.run(&args.concat())
    }

    /// `simulate … --json` lines, checking it succeeded.
    #[track_caller]
    fn simulate_json(&self, config: &str, from: &str, to: &str, extra: &[&str]) -> Vec<Value> {
        self.simulate(config, from, to, &[extra, &["--json"]].concat()).expect_code(0).json_lines()
    }
}

/// The `(name, on/off)` pairs of the text output of `workflows`.
fn workflow_states(run: &Run) -> Vec<(String, String)> {
    run.stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap_or_else(|| panic!("a name: {l:?}"));
            let state = words.next().unwrap_or_else(|| panic!("on or off: {l:?}"));
            (name.to_owned(), state.to_owned())
        })
        .collect()
}

/// The simulated firings of record `record` (`invoice acme-us/105`).
fn firings_of<'a>(rows: &'a [Value], record: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["record"] == record).collect()
}

/// The nominal local date a workflow firing's key ends with (`…:day+7:2026-11-25`).
fn nominal_date(row: &Value) -> chrono::NaiveDate {
    let key = text(&row["key"]);
    let (_, date) = key.rsplit_once(':').unwrap_or_else(|| panic!("a date at the end of {key}"));
    date.parse().unwrap_or_else(|_| panic!("a date at the end of {key}"))
}

/// The local date and time of a firing's `local_time` (`2026-11-25 09:00 EST`), and its zone.
fn local_time(row: &Value) -> (chrono::NaiveDateTime, String) {
    let local = text(&row["local_time"]);
    let (date_time, zone) = local.rsplit_once(' ').unwrap_or_else(|| panic!("a zone in {local}"));
    let parsed = chrono::NaiveDateTime::parse_from_str(date_time, "%Y-%m-%d %H:%M")
        .unwrap_or_else(|e| panic!("{date_time}: {e}"));
    (parsed, zone.to_owned())
}

#[test]
fn workflows_are_all_off_by_default() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "workflows"]);
    let states = workflow_states(run.expect_code(0));
    let expected: Vec<(String, String)> = WORKFLOW_NAMES.iter().map(|n| ((*n).to_owned(), "off".to_owned())).collect();
    assert_eq!(states, expected, "{run:#?}");
    // Each workflow has a second, indented line: its send time and window.
    assert_eq!(run.stdout.lines().count(), 8, "{run:#?}");
    assert!(
        run.stdout.contains("payment_due     off  from the due date: -3 customer email; +7 customer email"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("at 09:00 in the window Mon,Tue,Wed,Thu,Fri 09:00–17:00"), "{run:#?}");
}

#[test]
fn enabling_payment_due_in_the_configuration_switches_only_it_on() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_workflow_settings(PAYMENT_DUE_ON);
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-25", "workflows"]);
    let states = workflow_states(run.expect_code(0));
    let on: Vec<&str> = states.iter().filter(|(_, s)| s == "on").map(|(n, _)| n.as_str()).collect();
    let off: Vec<&str> = states.iter().filter(|(_, s)| s == "off").map(|(n, _)| n.as_str()).collect();
    assert_eq!(on, ["payment_due"], "{run:#?}");
    assert_eq!(off, ["vendor_payment", "bank_deposit", "unsent_invoice"], "{run:#?}");
}

#[test]
fn workflows_json_gives_each_workflow_and_its_settings() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_workflow_settings(PAYMENT_DUE_ON);
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-25", "workflows", "--json"]);
    let lines = run.expect_code(0).json_lines();
    let names: Vec<String> = lines.iter().map(|l| text(&l["workflow"])).collect();
    assert_eq!(names, WORKFLOW_NAMES, "{run:#?}");
    for line in &lines {
        let settings = &line["settings"];
        assert!(settings.is_object(), "settings: {line}");
        assert_eq!(settings["enabled"], line["workflow"] == "payment_due", "{line}");
        assert_eq!(settings["send_time"], "09:00:00", "{line}");
        assert!(settings["stages"].as_array().is_some_and(|s| !s.is_empty()), "stages: {line}");
    }
    let days: Vec<i64> = lines[0]["settings"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["days"].as_i64().expect("days"))
        .collect();
    assert_eq!(days, [-3, 7, 14, 30], "QuickBooks' default payment reminder stages");
    assert_eq!(lines[0]["settings"]["anchor"], "due_date");
    assert_eq!(lines[2]["settings"]["repeat"], serde_json::json!({"every_days": 3, "max": 10}));
}

/// Runs `workflows`, `invoices` and `simulate` with the example configuration plus `extra`, checks
/// each exits 2 with nothing on standard output, and returns their standard error.
#[track_caller]
fn assert_config_refused(extra: &str) -> Vec<String> {
    let sandbox = Sandbox::new();
    let config = sandbox.with_workflow_settings(extra);
    let commands: [&[&str]; 3] =
        [&["workflows"], &["invoices"], &["simulate", "--from", "2026-11-25", "--to", "2026-11-30"]];
    commands
        .iter()
        .map(|command| {
            let run = sandbox.run(&[&["--config", config.as_str(), "--now", "2026-11-25"][..], command].concat());
            run.expect_code(2);
            assert!(run.stdout.is_empty(), "{run:#?}");
            assert!(run.stderr.contains(&config), "names the file: {run:#?}");
            run.stderr
        })
        .collect()
}

#[test]
fn a_misspelled_workflow_name_is_refused_naming_it() {
    for stderr in assert_config_refused("[workflows.paymnt_due]\nenabled = true\n") {
        assert!(stderr.contains("`workflows.paymnt_due`"), "{stderr}");
        assert!(stderr.contains("did you mean payment_due?"), "{stderr}");
    }
}

#[test]
fn an_unknown_key_in_a_workflow_is_refused_naming_it() {
    for stderr in assert_config_refused("[workflows.payment_due]\nenabled = true\nsend_at = \"08:00\"\n") {
        assert!(stderr.contains("unknown field `send_at`"), "{stderr}");
        assert!(stderr.contains("send_time"), "lists the known keys: {stderr}");
    }
}

#[test]
fn an_unknown_merge_field_in_a_stage_subject_is_refused_naming_it() {
    let extra = "[workflows.payment_due]\nenabled = true\n[[workflows.payment_due.stages]]\ndays = 7\n\
                 channels = [{ type = \"customer_email\" }]\nsubject = \"Invoice {numbr} is late\"\n";
    for stderr in assert_config_refused(extra) {
        assert!(stderr.contains("`workflows.payment_due`"), "{stderr}");
        assert!(stderr.contains("stage 1: subject: unknown merge field {numbr}"), "{stderr}");
        assert!(stderr.contains("did you mean {number}?"), "{stderr}");
    }
}

#[test]
fn a_custom_stage_subject_fills_in_its_merge_fields() {
    let sandbox = Sandbox::with_examples();
    let config = sandbox.with_workflow_settings(
        "[workflows.payment_due]\nenabled = true\n[[workflows.payment_due.stages]]\ndays = 7\n\
         channels = [{ type = \"customer_email\" }]\nsubject = \"Invoice {number} for {amount_due} is late\"\n",
    );
    let rows = sandbox.simulate_json(&config, "2026-11-25", "2026-11-25", &["--workflow", "payment_due"]);
    let rows = firings_of(&rows, "invoice acme-us/105");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["stage"], "day+7", "the only stage, named by its offset");
    assert_eq!(rows[0]["actions"][0]["subject"], "Invoice 1016 for $3,975.00 is late");
}

#[test]
fn simulate_shows_no_workflow_while_all_are_off() {
    let sandbox = Sandbox::with_examples();
    let run = sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &[]);
    run.expect_code(0);
    assert!(!run.stdout.contains("workflow:"), "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let (last, firings) = lines.split_last().expect("a summary");
    assert!(!firings.is_empty() && firings.iter().all(|l| l.contains(" rule:")), "the scheduled rules: {run:#?}");
    assert_eq!(*last, format!("{} firings from 2026-11-25 to 2027-01-23", firings.len()));

    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &[]);
    assert_eq!(rows.len(), firings.len());
    assert!(rows.iter().all(|r| text(&r["source"]).starts_with("rule:")), "{rows:?}");
}

#[test]
fn simulate_without_include_disabled_previews_only_the_enabled_workflows() {
    let sandbox = Sandbox::with_examples();
    let config = sandbox.with_workflow_settings(PAYMENT_DUE_ON);
    let rows = sandbox.simulate_json(&config, "2026-11-25", "2027-01-23", &[]);
    let workflows: std::collections::BTreeSet<String> =
        rows.iter().map(|r| text(&r["source"])).filter(|s| s.starts_with("workflow:")).collect();
    assert_eq!(workflows.into_iter().collect::<Vec<_>>(), ["workflow:payment_due"], "{rows:?}");

    let everything = sandbox.simulate_json(&config, "2026-11-25", "2027-01-23", &["--include-disabled"]);
    for name in WORKFLOW_NAMES {
        let source = format!("workflow:{name}");
        assert!(everything.iter().any(|r| r["source"] == source.as_str()), "{source} with --include-disabled");
    }
}

#[test]
fn simulate_json_lines_are_complete_unique_and_in_time_order() {
    let sandbox = Sandbox::with_examples();
    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &["--include-disabled"]);
    assert!(rows.len() > 100, "a busy two months: {}", rows.len());
    let text_run = sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &["--include-disabled"]);
    let last = text_run.expect_code(0).stdout.lines().last().map(str::to_owned);
    assert_eq!(last, Some(format!("{} firings from 2026-11-25 to 2027-01-23", rows.len())), "same firings as text");

    let mut keys = std::collections::HashSet::new();
    let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
    for row in &rows {
        for field in ["at", "local_time", "source", "record", "stage", "key"] {
            assert!(row[field].is_string(), "{field} in {row}");
        }
        let at = text(&row["at"]);
        assert!(at.ends_with('Z'), "UTC: {row}");
        let at: chrono::DateTime<chrono::Utc> = at.parse().unwrap_or_else(|e| panic!("{e}: {row}"));
        assert!(previous.is_none_or(|p| p <= at), "in time order: {row}");
        previous = Some(at);

        let key = text(&row["key"]);
        let source = text(&row["source"]);
        assert!(key.starts_with("workflow:") || key.starts_with("rule:"), "{row}");
        assert!(key.starts_with(&format!("{source}:")), "the key starts with the source: {row}");
        assert!(key.contains(&text(&row["record"])), "the key names the record: {row}");
        assert!(keys.insert(key.clone()), "unique key {key}");

        let actions = row["actions"].as_array().unwrap_or_else(|| panic!("actions: {row}"));
        assert!(!actions.is_empty(), "{row}");
        assert!(actions.iter().all(|a| a["channel"].is_string()), "each action has a channel: {row}");
    }
}

#[test]
fn payment_due_never_reminds_paid_voided_unsent_or_unreachable_invoices() {
    let sandbox = Sandbox::with_examples();
    let rows = sandbox.simulate_json(
        EXAMPLE_CONFIG,
        "2026-11-25",
        "2027-01-23",
        &["--workflow", "payment_due", "--include-disabled"],
    );
    assert!(rows.iter().all(|r| r["source"] == "workflow:payment_due"), "only payment_due: {rows:?}");
    let paid: Vec<Value> = sandbox.invoices("2026-11-25", &["--status", "paid"]);
    assert_eq!(paid.len(), 9, "the example README's paid invoices");
    let mut never = vec![
        "invoice acme-us/115".to_owned(), // voided
        "invoice acme-us/106".to_owned(), // overdue but never sent: unsent_invoice's
        "invoice acme-us/126".to_owned(), // no billing email
    ];
    never.extend(paid.iter().map(|i| format!("invoice {}/{}", text(&i["account"]), text(&i["id"]))));
    for record in &never {
        assert!(firings_of(&rows, record).is_empty(), "{record}: {:?}", firings_of(&rows, record));
    }
}

#[test]
fn an_invoice_a_week_overdue_gets_the_second_stage_at_nine_in_new_york() {
    let sandbox = Sandbox::with_examples();
    let args = ["--workflow", "payment_due", "--include-disabled"];
    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2026-11-30", &args);
    let rows = firings_of(&rows, "invoice acme-us/105");
    assert_eq!(rows.len(), 1, "due 2026-11-18: only its +7 stage in the period: {rows:?}");
    let row = rows[0];
    assert_eq!(row["at"], "2026-11-25T14:00:00Z");
    assert_eq!(row["local_time"], "2026-11-25 09:00 EST");
    assert_eq!(row["source"], "workflow:payment_due");
    assert_eq!(row["stage"], "day+7");
    assert_eq!(row["key"], "workflow:payment_due:invoice acme-us/105:day+7:2026-11-25");
    assert_eq!(
        row["actions"],
        serde_json::json!([{
            "channel": "email",
            "to": ["ap.cascade@example.com"],
            "subject": "Reminder: invoice 1016 was due on November 18, 2026",
        }])
    );

    let run = sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2026-11-30", &args);
    let line = run.expect_code(0).stdout.lines().find(|l| l.contains("acme-us/105 ")).map(str::to_owned);
    assert_eq!(
        line.as_deref(),
        Some(
            "2026-11-25 09:00 EST  workflow:payment_due     invoice acme-us/105          day+7     \
             email to ap.cascade@example.com: \"Reminder: invoice 1016 was due on November 18, 2026\""
        ),
        "{run:#?}"
    );

    // Its next stages: +14 and +30 days.
    let later = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &args);
    let stages: Vec<(String, String)> =
        firings_of(&later, "invoice acme-us/105").iter().map(|r| (text(&r["stage"]), text(&r["local_time"]))).collect();
    let expected =
        [("day+7", "2026-11-25 09:00 EST"), ("day+14", "2026-12-02 09:00 EST"), ("day+30", "2026-12-18 09:00 EST")]
            .map(|(s, t)| (s.to_owned(), t.to_owned()));
    assert_eq!(stages, expected);
}

#[test]
fn a_stage_falling_on_a_weekend_fires_the_next_monday_at_nine() {
    use chrono::Datelike as _;
    let sandbox = Sandbox::with_examples();
    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &["--include-disabled"]);

    // Invoice 109's +14 stage falls on Saturday 2026-11-28.
    let row = firings_of(&rows, "invoice acme-us/109")
        .into_iter()
        .find(|r| r["stage"] == "day+14")
        .unwrap_or_else(|| panic!("day+14 of invoice 109: {rows:?}"));
    assert_eq!(row["key"], "workflow:payment_due:invoice acme-us/109:day+14:2026-11-28", "keyed by its nominal date");
    assert_eq!(row["local_time"], "2026-11-30 09:00 EST");
    assert_eq!(row["at"], "2026-11-30T14:00:00Z");

    // Every workflow firing is on a weekday at 09:00; a moved one moved from a weekend to Monday.
    let workflows: Vec<&Value> =
        rows.iter().filter(|r| r["source"].as_str().is_some_and(|s| s.starts_with("workflow:"))).collect();
    let mut moved = 0;
    for row in workflows {
        let (local, _) = local_time(row);
        assert!(local.weekday().num_days_from_monday() < 5, "a weekday: {row}");
        assert_eq!(local.time(), chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"), "{row}");
        let nominal = nominal_date(row);
        if nominal != local.date() {
            moved += 1;
            assert!(nominal.weekday().num_days_from_monday() >= 5, "only weekends move: {row}");
            assert_eq!(local.weekday(), chrono::Weekday::Mon, "{row}");
            assert!((local.date() - nominal).num_days() <= 2, "to the next Monday: {row}");
        }
    }
    assert!(moved > 0, "some stages fall on weekends");

    // Nothing goes out over that weekend itself.
    let weekend = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-28", "2026-11-29", &["--include-disabled"]);
    assert!(weekend.iter().all(|r| !text(&r["source"]).starts_with("workflow:")), "{weekend:?}");
}

#[test]
fn send_times_follow_each_companys_daylight_saving_time() {
    let sandbox = Sandbox::with_examples();
    let args = ["--workflow", "payment_due", "--include-disabled"];
    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-10-19", "2026-11-03", &args);
    let at = |key: &str| {
        let row = rows.iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("{key}: {rows:?}"));
        (text(&row["at"]), text(&row["local_time"]))
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    // New York leaves daylight saving time on 2026-11-01, Paris on 2026-10-25.
    assert_eq!(
        at("workflow:payment_due:invoice acme-us/97:day-3:2026-10-23"),
        pair("2026-10-23T13:00:00Z", "2026-10-23 09:00 EDT")
    );
    assert_eq!(
        at("workflow:payment_due:invoice acme-us/97:day+7:2026-11-02"),
        pair("2026-11-02T14:00:00Z", "2026-11-02 09:00 EST")
    );
    assert_eq!(
        at("workflow:payment_due:invoice atelier-fr/48:day+7:2026-10-22"),
        pair("2026-10-22T07:00:00Z", "2026-10-22 09:00 CEST")
    );
    assert_eq!(
        at("workflow:payment_due:invoice atelier-fr/49:day-3:2026-10-28"),
        pair("2026-10-28T08:00:00Z", "2026-10-28 09:00 CET")
    );
}

/// Every text of a firing's actions: subjects, task titles, Slack texts.
fn action_texts(row: &Value) -> Vec<String> {
    let actions = row["actions"].as_array().unwrap_or_else(|| panic!("actions: {row}"));
    actions.iter().flat_map(|a| [&a["subject"], &a["text"]]).filter_map(Value::as_str).map(str::to_owned).collect()
}

#[test]
fn a_french_company_gets_french_texts() {
    let sandbox = Sandbox::with_examples();
    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2026-12-31", &["--include-disabled"]);
    let workflow_texts = |account: &str, source: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r["source"] == source && text(&r["record"]).contains(&format!(" {account}/")))
            .flat_map(action_texts)
            .collect()
    };
    let deposits = workflow_texts("atelier-fr", "workflow:bank_deposit");
    assert!(!deposits.is_empty() && deposits.iter().all(|t| t.starts_with("Remettre en banque")), "{deposits:?}");
    // French money: a narrow no-break space between thousands, a no-break space before the sign.
    assert!(
        deposits.iter().any(|t| t.contains("4\u{202f}200,00\u{a0}€") && t.contains("20 novembre 2026")),
        "{deposits:?}"
    );
    let unsent = workflow_texts("atelier-fr", "workflow:unsent_invoice");
    assert!(!unsent.is_empty() && unsent.iter().all(|t| t.contains("facture")), "{unsent:?}");
    let due = workflow_texts("atelier-fr", "workflow:payment_due");
    assert!(!due.is_empty() && due.iter().all(|t| t.contains("facture")), "{due:?}");

    // acme-us writes in English.
    let english: Vec<String> =
        WORKFLOW_NAMES.iter().flat_map(|name| workflow_texts("acme-us", &format!("workflow:{name}"))).collect();
    assert!(!english.is_empty(), "{rows:?}");
    assert!(english.iter().all(|t| !t.contains("facture") && !t.contains("Remettre")), "{english:?}");
}

#[test]
fn a_customers_language_wins_over_the_workflows_and_the_companys() {
    let sandbox = Sandbox::with_examples();
    let config = sandbox.with_workflow_settings(
        "[workflows.payment_due]\nenabled = true\nlanguage = \"en\"\n\
         customer_languages = { \"Cascade Outfitters\" = \"fr\" }\n",
    );
    let rows = sandbox.simulate_json(&config, "2026-11-25", "2026-11-30", &["--workflow", "payment_due"]);
    let cascade = firings_of(&rows, "invoice acme-us/105");
    assert_eq!(cascade.len(), 1, "{rows:?}");
    assert_eq!(cascade[0]["actions"][0]["subject"], "Rappel : facture 1016 échue le 18 novembre 2026");
    let atelier: Vec<&Value> = rows.iter().filter(|r| text(&r["record"]).starts_with("invoice atelier-fr/")).collect();
    assert!(!atelier.is_empty(), "{rows:?}");
    for row in atelier {
        assert!(action_texts(row).iter().all(|t| t.contains("nvoice ") && !t.contains("facture")), "English: {row}");
    }
}

#[test]
fn simulate_with_only_a_rule_shows_only_that_rules_firings() {
    let sandbox = Sandbox::with_examples();
    let args = ["--rule", "overdue-follow-up", "--include-disabled"];
    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &args);
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row["source"], "rule:overdue-follow-up", "{row}");
        assert_eq!(row["stage"], "slot", "{row}");
        assert!(text(&row["key"]).starts_with("rule:overdue-follow-up:slot:"), "{row}");
        assert_eq!(row["actions"][0]["channel"], "email", "{row}");
    }
    let run = sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &args);
    let lines: Vec<&str> = run.expect_code(0).stdout.lines().collect();
    assert!(lines[..lines.len() - 1].iter().all(|l| l.contains(" rule:overdue-follow-up ")), "{run:#?}");
    assert!(!run.stdout.contains("workflow:") && !run.stdout.contains("bill-due-soon"), "{run:#?}");
}

#[test]
fn a_scheduled_rule_fires_again_only_after_the_record_stopped_matching() {
    let sandbox = Sandbox::with_examples();
    let rows = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2027-01-23", &["--rule", "overdue-follow-up"]);
    // Invoice 105 (due 2026-11-18) matches at 7, 14 and 30 days overdue, and not between.
    let firings: Vec<(String, String)> = firings_of(&rows, "invoice acme-us/105")
        .iter()
        .map(|r| (text(&r["local_time"]), text(&r["actions"][0]["subject"])))
        .collect();
    let expected = [
        ("2026-11-25 09:00 EST", "Reminder: invoice 1016 is 7 days overdue"),
        ("2026-12-02 09:00 EST", "Reminder: invoice 1016 is 14 days overdue"),
        ("2026-12-18 09:00 EST", "Final reminder: invoice 1016 is 30 days overdue"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(firings, expected);
    let row = firings_of(&rows, "invoice acme-us/105")[0];
    assert_eq!(row["key"], "rule:overdue-follow-up:slot:2026-11-25T14:00:00Z:invoice acme-us/105");
    assert_eq!(row["at"], "2026-11-25T14:00:00Z");
}

#[test]
fn simulating_one_day_gives_the_firings_a_longer_period_has_that_day() {
    let sandbox = Sandbox::with_examples();
    let all = sandbox.simulate_json(EXAMPLE_CONFIG, "2026-11-25", "2026-12-08", &["--include-disabled"]);
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    let last = chrono::NaiveDate::from_ymd_opt(2026, 12, 8).expect("date");
    while day <= last {
        let date = day.to_string();
        let one = sandbox.simulate_json(EXAMPLE_CONFIG, &date, &date, &["--include-disabled"]);
        let keys = |rows: &[Value]| -> Vec<String> { rows.iter().map(|r| text(&r["key"])).collect() };
        let that_day: Vec<Value> = all.iter().filter(|r| text(&r["local_time"]).starts_with(&date)).cloned().collect();
        assert_eq!(keys(&one), keys(&that_day), "{date}");
        assert_eq!(one, that_day, "{date}");
        day = day.succ_opt().expect("next day");
    }
}

#[test]
fn simulate_sends_and_records_nothing() {
    let sandbox = Sandbox::with_examples();
    let config = sandbox.with_workflow_settings(PAYMENT_DUE_ON);
    let actions = |s: &Sandbox| s.run(&["--config", &config, "actions"]).expect_code(0).stdout.clone();
    let (actions_before, changes_before) = (actions(&sandbox), sandbox.changes(&[]));
    let rows = sandbox.simulate_json(&config, "2026-11-25", "2027-01-23", &["--include-disabled"]);
    assert!(!rows.is_empty());
    assert_eq!(actions(&sandbox), actions_before, "no action recorded");
    assert_eq!(sandbox.changes(&[]), changes_before, "no change recorded");
    // The same preview again: nothing was marked as done.
    assert_eq!(sandbox.simulate_json(&config, "2026-11-25", "2027-01-23", &["--include-disabled"]), rows);
}

#[test]
fn simulate_refuses_a_period_ending_before_it_starts() {
    let sandbox = Sandbox::with_examples();
    let run = sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2026-11-24", &[]);
    run.expect_code(2);
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(run.stderr.contains("--to 2026-11-24 is before --from 2026-11-25"), "{run:#?}");
    // One day is a period.
    sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2026-11-25", &[]).expect_code(0);
}

#[test]
fn simulate_refuses_an_unknown_workflow_or_rule_naming_it() {
    let sandbox = Sandbox::with_examples();
    let run = sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2026-11-30", &["--workflow", "paymnt_due"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no workflow \"paymnt_due\""), "{run:#?}");
    assert!(run.stderr.contains("payment_due, vendor_payment, bank_deposit, unsent_invoice"), "{run:#?}");
    let run = sandbox.simulate(EXAMPLE_CONFIG, "2026-11-25", "2026-11-30", &["--rule", "overdue-followup"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no rule \"overdue-followup\""), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
}

#[test]
fn each_decided_action_waits_in_the_outbox_until_it_is_delivered_or_cancelled() {
    let sandbox = Sandbox::new();
    sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "import", EXAMPLE_DATA]).expect_code(0);
    let now = "2026-11-26T17:00:00Z";
    sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", now, "import", EXAMPLE_UPDATES]).expect_code(0);
    let list = |args: &[&str]| {
        let mut all = vec!["--config", EXAMPLE_CONFIG, "--now", now, "outbox", "list"];
        all.extend_from_slice(args);
        sandbox.run(&all).expect_code(0).json_lines()
    };
    let pending = list(&["--json", "--status", "pending"]);
    let what: Vec<(String, String, Option<String>)> = pending
        .iter()
        .map(|d| (text(&d["channel"]), text(&d["intent"]["rule"]), d["destination"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(
        what,
        [
            ("slack".to_owned(), "payment-received".to_owned(), Some("finance".to_owned())),
            ("task".to_owned(), "large-invoice-due-date-moved".to_owned(), None)
        ]
    );
    assert_eq!(pending[0]["expires_at"], "2026-11-28T17:00:00Z", "48 hours to be delivered");
    let seq = pending[0]["seq"].to_string();
    let run =
        sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", now, "outbox", "cancel", &seq, "--reason", "sent by hand"]);
    assert_eq!(run.expect_code(0).stdout.trim(), format!("delivery {seq} cancelled"));
    let cancelled = list(&["--json", "--status", "cancelled"]);
    assert_eq!((cancelled.len(), &cancelled[0]["reason"]), (1, &serde_json::json!("sent by hand")));
    let again = sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", now, "outbox", "cancel", &seq]);
    assert!(again.expect_code(2).stderr.contains("no pending delivery"), "{again:#?}");
    sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", now, "outbox", "retry", &seq]).expect_code(0);
    assert_eq!(list(&["--json", "--status", "pending"]).len(), 2);
    let bad = sandbox.run(&["--config", EXAMPLE_CONFIG, "outbox", "list", "--status", "sent"]);
    assert!(bad.expect_code(2).stderr.contains("pending, delivered, dead, expired, cancelled"), "{bad:#?}");
}

#[test]
fn tasks_are_made_by_hand_closed_once_and_by_their_kind() {
    let sandbox = Sandbox::new();
    sandbox.run(&["--config", EXAMPLE_CONFIG, "--now", "2026-11-25", "import", EXAMPLE_DATA]).expect_code(0);
    let run = |args: &[&str]| {
        let mut all = vec!["--config", EXAMPLE_CONFIG, "--now", "2026-11-25T10:00:00Z", "tasks"];
        all.extend_from_slice(args);
        sandbox.run(&all)
    };
    let made =
        run(&["create", "--title", "Call Acme", "--assignee", "maria", "--due", "2026-11-27", "--record", "103"]);
    assert_eq!(made.expect_code(0).stdout.trim(), "task 1 created");
    run(&["create", "--title", "Approve the write-off", "--approval"]).expect_code(0);
    let open = run(&["list", "--json"]).expect_code(0).json_lines();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0]["record"], serde_json::json!({"kind": "invoice", "account": "acme-us", "id": "103"}));
    assert_eq!(
        (&open[0]["assignee"], &open[0]["due"]),
        (&serde_json::json!("maria"), &serde_json::json!("2026-11-27"))
    );
    let wrong = run(&["done", "2"]);
    assert!(wrong.expect_code(2).stderr.contains("needs approving or rejecting"), "{wrong:#?}");
    let wrong = run(&["approve", "1"]);
    assert!(wrong.expect_code(2).stderr.contains("plain task: mark it done"), "{wrong:#?}");
    run(&["done", "1", "--by", "maria"]).expect_code(0);
    run(&["reject", "2", "--by", "tom", "--comment", "not this quarter"]).expect_code(0);
    let again = run(&["done", "1"]);
    assert!(again.expect_code(2).stderr.contains("task 1 is already done"), "{again:#?}");
    assert!(run(&["list"]).expect_code(0).stdout.trim().is_empty(), "nothing open");
    let shown = run(&["show", "2"]).expect_code(0).stdout.clone();
    assert!(shown.contains("rejected by tom at 2026-11-25 10:00 UTC: not this quarter"), "{shown}");
    assert!(run(&["show", "9"]).expect_code(2).stderr.contains("no task 9"));
    let unknown = run(&["create", "--title", "x", "--record", "99999"]);
    assert!(unknown.expect_code(2).stderr.contains("no invoice 99999 is stored"), "{unknown:#?}");
    let bill = run(&["create", "--title", "Pay rent", "--kind", "bill", "--record", "acme-us/183"]);
    assert_eq!(bill.expect_code(0).stdout.trim(), "task 3 created");
}

#[test]
fn run_once_delivers_what_rules_decided_into_the_example_sinks_and_nothing_twice() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_example_rules();
    sandbox.run(&["--config", &config, "--now", "2026-11-25", "import", EXAMPLE_DATA]).expect_code(0);
    sandbox.run(&["--config", &config, "--now", "2026-11-26T17:00:00Z", "import", EXAMPLE_UPDATES]).expect_code(0);
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-26T17:01:00Z", "run", "--once"]);
    let lines: Vec<&str> = run.expect_code(0).stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:#?}");
    assert!(
        lines[0].starts_with("delivered slack  finance")
            && lines[0].ends_with("← payment-received on invoice acme-us/108")
    );
    assert!(lines[1].starts_with("delivered task") && lines[1].contains("large-invoice-due-date-moved"), "{run:#?}");
    assert!(lines[2].contains("2 delivered, 0 to retry, 0 failed"), "{run:#?}");
    let posted = std::fs::read_to_string(sandbox.path("sent/slack-finance.jsonl")).expect("the Slack sink");
    let posted: Vec<Value> = posted.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["payload"]["text"], PAID_108);
    let tasks = sandbox.run(&["--config", &config, "tasks", "list", "--json"]).expect_code(0).json_lines();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["source"], "large-invoice-due-date-moved");
    // Again: nothing left to deliver.
    let again = sandbox.run(&["--config", &config, "--now", "2026-11-26T17:02:00Z", "run", "--once"]);
    assert!(
        again
            .expect_code(0)
            .stdout
            .starts_with("tick: 0 status changes, 0 actions decided by rules, 0 reminder steps; 0 delivered"),
        "{again:#?}"
    );
    let outbox = sandbox.run(&["--config", &config, "outbox", "list", "--json"]).expect_code(0).json_lines();
    assert!(outbox.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{outbox:?}");
}

#[test]
fn run_posts_to_slack_over_http_and_channel_not_found_disables_the_destination_until_enabled() {
    let slack = Receiver::start(&[(404, "channel_not_found")]);
    let sandbox = Sandbox::new();
    let config = sandbox.with_example_rules();
    sandbox.edit(
        "invoiceflow.toml",
        "slack = \"file:sent/slack-finance.jsonl\"",
        &format!("slack = \"http://127.0.0.1:{}/services/T/B/X\"\nallow_private = true", slack.port),
    );
    sandbox.edit("invoiceflow.toml", "[email]\n", "[alerts]\ndestination = \"ap-team\"\n\n[email]\n");
    sandbox.run(&["--config", &config, "--now", "2026-11-25", "import", EXAMPLE_DATA]).expect_code(0);
    sandbox.run(&["--config", &config, "--now", "2026-11-26T17:00:00Z", "import", EXAMPLE_UPDATES]).expect_code(0);
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-26T17:01:00Z", "run", "--once"]);
    assert!(run.expect_code(0).stdout.contains("2 delivered, 0 to retry, 1 failed"), "{run:#?}");
    assert_eq!(slack.bodies().len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&slack.bodies()[0]).unwrap()["text"], PAID_108);

    let list = sandbox.run(&["--config", &config, "destinations", "list"]);
    let finance = list.expect_code(0).stdout.lines().find(|l| l.starts_with("finance")).unwrap_or_default().to_owned();
    assert!(
        finance.contains("http://127.0.0.1:") && !finance.contains("/services/T/B/X"),
        "the URL's secret path is not shown: {finance}"
    );
    assert!(finance.contains("DISABLED since 2026-11-26 17:01 UTC — Slack answered channel_not_found"), "{list:#?}");
    // The admins were told, at the alert destination (email to ap-team; here a local file).
    let alerts = std::fs::read_to_string(sandbox.path("sent/email.jsonl")).unwrap_or_default();
    let alert =
        alerts.lines().find(|l| l.contains("\"source\":\"alert\"")).unwrap_or_else(|| panic!("no alert: {alerts}"));
    assert!(alert.contains("destination finance disabled") && alert.contains("channel_not_found"), "{alert}");
    assert!(alert.contains("ap@acme.example"), "{alert}");
    let dead =
        sandbox.run(&["--config", &config, "outbox", "list", "--status", "dead", "--json"]).expect_code(0).json_lines();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let seq = dead[0]["seq"].to_string();

    // Fixed in Slack: enabled again, the dead delivery retried, and it goes out.
    let enable = sandbox.run(&["--config", &config, "destinations", "enable", "finance"]);
    assert!(enable.expect_code(0).stdout.starts_with("destination finance enabled"), "{enable:#?}");
    sandbox.run(&["--config", &config, "--now", "2026-11-26T17:05:00Z", "outbox", "retry", &seq]).expect_code(0);
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-26T17:05:01Z", "run", "--once"]);
    assert!(run.expect_code(0).stdout.contains("1 delivered, 0 to retry, 0 failed"), "{run:#?}");
    assert_eq!(slack.bodies().len(), 2);
}

#[test]
fn run_refuses_private_targets_and_unsigned_webhooks_naming_the_key() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_example_rules();
    sandbox.edit(
        "invoiceflow.toml",
        "slack = \"file:sent/slack-finance.jsonl\"",
        "slack = \"http://169.254.169.254/x\"",
    );
    let run = sandbox.run(&["--config", &config, "run", "--once"]);
    assert!(run.expect_code(2).stderr.contains("destinations.finance: 169.254.169.254 is a link-local"), "{run:#?}");
    assert!(run.stderr.contains("allow_private = true"), "{run:#?}");

    sandbox.edit("invoiceflow.toml", "slack = \"http://169.254.169.254/x\"", "webhook = \"https://erp.example/hooks\"");
    let run = sandbox.run(&["--config", &config, "run", "--once"]);
    assert!(
        run.expect_code(2).stderr.contains("destinations.finance") && run.stderr.contains("secret_env"),
        "{run:#?}"
    );
    sandbox.edit(
        "invoiceflow.toml",
        "webhook = \"https://erp.example/hooks\"",
        "webhook = \"https://erp.example/hooks\"\nsecret_env = \"ERP_SECRET_UNSET\"",
    );
    let run = sandbox.run(&["--config", &config, "run", "--once"]);
    assert!(run.expect_code(2).stderr.contains("the environment variable ERP_SECRET_UNSET is not set"), "{run:#?}");
}

#[test]
fn history_tells_what_became_of_each_reminder_and_why() {
    let sandbox = Sandbox::new();
    let config = sandbox.with_workflow_settings(
        "[workflows.payment_due]\nenabled = true\npaused = [{ who = \"Cascade Outfitters\", until = 2026-11-30 }]\n",
    );
    sandbox.run(&["--config", &config, "--now", "2026-11-25", "import", EXAMPLE_DATA]).expect_code(0);
    // Switched on at 08:00 in New York; the 09:00 steps go out at the next tick.
    sandbox.run(&["--config", &config, "--now", "2026-11-25T13:00:00Z", "run", "--once"]).expect_code(0);
    let run = sandbox.run(&["--config", &config, "--now", "2026-11-25T14:05:00Z", "run", "--once"]);
    assert!(run.expect_code(0).stdout.contains("delivered email"), "{run:#?}");
    let history = sandbox.run(&["--config", &config, "history", "--json"]).expect_code(0).json_lines();
    let skipped: Vec<&Value> = history.iter().filter(|h| h["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{history:?}");
    assert_eq!(skipped[0]["record"], "invoice acme-us/105");
    assert_eq!(skipped[0]["reason"], "paused until 2026-11-30");
    let emails: Vec<&Value> =
        history.iter().filter(|h| h["status"] == "delivered" && h["action"]["type"] == "email").collect();
    assert!(emails.iter().any(|d| d["source"] == "workflow:payment_due"), "{history:?}");
    let sink = std::fs::read_to_string(sandbox.path("sent/email.jsonl")).expect("the email sink");
    assert_eq!(sink.lines().count(), emails.len(), "each delivered email is in the sink once");
    // One record's history; and text for people.
    let one = sandbox.run(&["--config", &config, "history", "--record", "105"]).expect_code(0).stdout.clone();
    assert!(one.contains("skipped") && one.contains("paused until 2026-11-30"), "{one}");
    // The pause is the workflow's: the example rule about the same invoice still wrote.
    assert!(one.contains("delivered email to ap.cascade@example.com") && one.contains("overdue-follow-up"), "{one}");
}
