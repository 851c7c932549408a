//! The reminder workflows as the running engine decides them: passes of `reminders::pass` over a
//! real SQLite store, at instants a fixed clock gives. Every assertion reads the firing ledger
//! and the intents the outbox would deliver.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use invoiceflow::clock::{Clock, Now};
use invoiceflow::config::Config;
use invoiceflow::reminders::{self, Decided};
use invoiceflow::store::{FiringQuery, IntentQuery, SqliteStore, Store, StoredFiring};
use invoiceflow_rules::script::{Action, Cause};
use invoiceflow_rules::workflow::config::{CatchUp, Channel, Pause, Repeat, Stage, WorkflowConfig, WorkflowKind};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Companies: `default` in New York, `paris` in Paris.
const COMPANIES: &str =
    "[company]\ntime_zone = \"America/New_York\"\n\n[quickbooks.paris]\ntime_zone = \"Europe/Paris\"\n";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// A store, the companies, and the workflows switched on.
struct World {
    _dir: TempDir,
    store: SqliteStore,
    config: Config,
    workflows: BTreeMap<WorkflowKind, WorkflowConfig>,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoiceflow.toml");
        std::fs::write(&path, COMPANIES).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        Self { _dir: dir, store, config, workflows: BTreeMap::new() }
    }

    /// Switches `kind` on with `config` (enabled whatever it says).
    fn enable(&mut self, kind: WorkflowKind, mut config: WorkflowConfig) {
        config.enabled = true;
        self.workflows.insert(kind, config);
    }

    fn clock(&self, now: &str) -> Clock {
        Clock { now: Now::At(at(now)), companies: self.config.companies.clone() }
    }

    /// Imports canonical records of company `account` at `now`.
    async fn import(&self, account: &str, now: &str, values: &[Value]) {
        crate::support::import(&self.store, &self.clock(now), account, values).await;
    }

    async fn pass(&self, now: &str) -> Decided {
        reminders::pass(&self.store, &self.workflows, &self.clock(now)).await.unwrap()
    }

    /// A pass every day from `from` to `to` at `time` UTC, each run twice (a second node, or a
    /// restart, deciding the same moment adds nothing).
    async fn daily(&self, from: &str, to: &str, time: &str) {
        for d in day(from).iter_days().take_while(|d| *d <= day(to)) {
            let now = format!("{d}T{time}Z");
            self.pass(&now).await;
            assert_eq!(self.pass(&now).await, Decided::default(), "a second pass at {now} decides nothing");
        }
    }

    async fn ledger(&self) -> Vec<StoredFiring> {
        self.store.firings(&FiringQuery { limit: 1000, ..Default::default() }).await.unwrap()
    }

    /// `(step, nominal date, due at)` of each step sent, in decision order.
    async fn sent(&self) -> Vec<(String, String, String)> {
        self.ledger()
            .await
            .into_iter()
            .filter(|f| f.sent)
            .map(|f| (f.step, f.nominal.to_string(), f.due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
            .collect()
    }

    /// `(step, reason)` of each step skipped.
    async fn skipped(&self) -> Vec<(String, String)> {
        self.ledger().await.into_iter().filter(|f| !f.sent).map(|f| (f.step, f.reason.unwrap_or_default())).collect()
    }

    async fn intents(&self) -> Vec<invoiceflow::store::StoredIntent> {
        self.store.intents(&IntentQuery { limit: 1000, ..Default::default() }).await.unwrap()
    }
}

fn triple(step: &str, nominal: &str, due: &str) -> (String, String, String) {
    (step.to_owned(), nominal.to_owned(), due.to_owned())
}

/// Invoice `id` of Acme, sent, due `due`, with `balance` left.
fn invoice(id: &str, due: &str, balance: &str, updated: &str) -> Value {
    json!({"type": "invoice", "id": id, "number": format!("10{id}"), "customer": "Acme", "recipient": "ap@acme.example",
        "amount": "500.00", "balance": balance, "currency": "USD", "txn_date": "2026-11-10", "due_date": due,
        "email_status": "EmailSent", "updated_at": updated})
}

#[tokio::test]
async fn each_payment_reminder_stage_fires_once_at_nine_in_the_window() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, WorkflowKind::PaymentDue.defaults());
    // 09:05 in New York (EST) every day, from the day it is switched on.
    w.daily("2026-12-01", "2027-01-15", "14:05:00").await;
    assert_eq!(
        w.sent().await,
        [
            triple("day-3", "2026-12-07", "2026-12-07T14:00:00Z"),
            triple("day+7", "2026-12-17", "2026-12-17T14:00:00Z"),
            triple("day+14", "2026-12-24", "2026-12-24T14:00:00Z"),
            // Saturday: moved to Monday 09:00, keyed by its own date.
            triple("day+30", "2027-01-09", "2027-01-11T14:00:00Z"),
        ]
    );
    assert!(w.skipped().await.is_empty());
    let intents = w.intents().await;
    let what: Vec<(&str, &str)> = intents.iter().map(|i| (i.key.as_str(), i.intent.action.kind())).collect();
    assert_eq!(
        what,
        [
            ("workflow:payment_due:invoice default/42:day-3:2026-12-07:0", "email"),
            ("workflow:payment_due:invoice default/42:day+7:2026-12-17:0", "email"),
            ("workflow:payment_due:invoice default/42:day+14:2026-12-24:0", "email"),
            ("workflow:payment_due:invoice default/42:day+30:2027-01-09:0", "email"),
            ("workflow:payment_due:invoice default/42:day+30:2027-01-09:1", "task"),
        ]
    );
    let first = &intents[0].intent;
    assert_eq!(first.rule, "workflow:payment_due");
    assert_eq!(
        first.cause,
        Cause::Workflow { step: "day-3".into(), nominal: day("2026-12-07"), due: at("2026-12-07T14:00:00Z") }
    );
    let Action::Email { to, subject, .. } = &first.action else { panic!("{first:?}") };
    assert_eq!(to, &["ap@acme.example"]);
    assert!(subject.contains("1042"), "{subject}");
    // A delivery expires at the next step, at most 48 hours on.
    let ledger = w.ledger().await;
    assert_eq!(ledger[0].expires_at, Some(at("2026-12-09T14:00:00Z")));
}

#[tokio::test]
async fn a_payment_in_between_stops_the_reminders() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, WorkflowKind::PaymentDue.defaults());
    w.daily("2026-12-01", "2026-12-18", "14:05:00").await;
    w.import("default", "2026-12-19T10:00:00Z", &[invoice("42", "2026-12-10", "0.00", "2026-12-19T10:00:00Z")]).await;
    w.daily("2026-12-19", "2027-01-15", "14:05:00").await;
    let steps: Vec<String> = w.sent().await.into_iter().map(|s| s.0).collect();
    assert_eq!(steps, ["day-3", "day+7"]);
}

#[tokio::test]
async fn a_due_date_moved_later_replans_the_steps_ahead_and_never_resends_one() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, WorkflowKind::PaymentDue.defaults());
    w.daily("2026-12-01", "2026-12-08", "14:05:00").await;
    // The customer got ten more days: stage 1 would now fall on the 17th.
    w.import("default", "2026-12-08T20:00:00Z", &[invoice("42", "2026-12-20", "500.00", "2026-12-08T20:00:00Z")]).await;
    w.daily("2026-12-09", "2026-12-31", "14:05:00").await;
    assert_eq!(
        w.sent().await,
        [
            triple("day-3", "2026-12-07", "2026-12-07T14:00:00Z"),
            // Sunday the 27th: Monday 09:00.
            triple("day+7", "2026-12-27", "2026-12-28T14:00:00Z"),
        ]
    );
    assert_eq!(w.intents().await.len(), 2, "stage 1 was not sent again on the 17th");
}

#[tokio::test]
async fn a_pause_skips_the_steps_it_covers_with_an_audit_row() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.paused = vec![Pause { who: "acme".into(), until: day("2026-12-20") }];
    w.enable(WorkflowKind::PaymentDue, config);
    w.daily("2026-12-01", "2026-12-31", "14:05:00").await;
    let steps: Vec<String> = w.sent().await.into_iter().map(|s| s.0).collect();
    assert_eq!(steps, ["day+14"]);
    assert_eq!(
        w.skipped().await,
        [
            ("day-3".to_owned(), "paused until 2026-12-20".to_owned()),
            ("day+7".to_owned(), "paused until 2026-12-20".to_owned())
        ]
    );
}

#[tokio::test]
async fn minimum_balance_and_include_exclude_decide_who_is_reminded() {
    let mut w = World::new().await;
    let mut small = invoice("1", "2026-12-10", "99.99", "2026-11-10T12:00:00Z");
    small["customer"] = json!("Small Co");
    let mut excluded = invoice("2", "2026-12-10", "500.00", "2026-11-10T12:00:00Z");
    excluded["customer"] = json!("Friends Ltd");
    let exact = invoice("3", "2026-12-10", "100.00", "2026-11-10T12:00:00Z");
    w.import("default", "2026-11-10T12:00:00Z", &[small, excluded, exact]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.stages = vec![Stage::new(-3, vec![Channel::CustomerEmail])];
    config.min_balance.insert("USD".into(), "100.00".parse().unwrap());
    config.exclude = vec!["friends ltd".into()];
    w.enable(WorkflowKind::PaymentDue, config);
    w.daily("2026-12-01", "2026-12-08", "14:05:00").await;
    let ledger = w.ledger().await;
    let outcome: Vec<(String, bool, Option<String>)> =
        ledger.into_iter().map(|f| (f.record.id.to_string(), f.sent, f.reason)).collect();
    assert_eq!(
        outcome,
        [
            ("1".to_owned(), false, Some("99.99 USD is below the minimum".to_owned())),
            ("2".to_owned(), false, Some("Friends Ltd is excluded".to_owned())),
            ("3".to_owned(), true, None),
        ]
    );
    // Only Acme, when an include list names it.
    let mut w2 = World::new().await;
    w2.import("default", "2026-11-10T12:00:00Z", &[invoice("3", "2026-12-10", "100.00", "2026-11-10T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.include = vec!["Someone Else".into()];
    w2.enable(WorkflowKind::PaymentDue, config);
    w2.daily("2026-12-01", "2026-12-08", "14:05:00").await;
    assert_eq!(w2.skipped().await, [("day-3".to_owned(), "Acme is excluded".to_owned())]);
}

#[tokio::test]
async fn the_unsent_reminder_repeats_up_to_its_maximum_and_stops_once_sent() {
    let mut w = World::new().await;
    let mut unsent = invoice("7", "2026-12-31", "500.00", "2026-12-01T12:00:00Z");
    unsent["email_status"] = json!("NeedToSend");
    unsent["txn_date"] = json!("2026-12-01");
    w.import("default", "2026-12-01T12:00:00Z", std::slice::from_ref(&unsent)).await;
    let mut config = WorkflowKind::UnsentInvoice.defaults();
    config.repeat = Some(Repeat { every_days: 2, max: 3 });
    config.window.days =
        vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
    w.enable(WorkflowKind::UnsentInvoice, config.clone());
    w.daily("2026-12-01", "2026-12-20", "14:05:00").await;
    let steps: Vec<(String, String)> = w.sent().await.into_iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(
        steps,
        [
            ("day+1".to_owned(), "2026-12-02".to_owned()),
            ("repeat-1".to_owned(), "2026-12-04".to_owned()),
            ("repeat-2".to_owned(), "2026-12-06".to_owned()),
            ("repeat-3".to_owned(), "2026-12-08".to_owned()),
        ]
    );
    // Another one, sent after its first reminder: nothing more.
    let mut w = World::new().await;
    unsent["txn_date"] = json!("2026-12-01");
    w.import("default", "2026-12-01T12:00:00Z", std::slice::from_ref(&unsent)).await;
    w.enable(WorkflowKind::UnsentInvoice, config);
    w.daily("2026-12-01", "2026-12-02", "14:05:00").await;
    unsent["email_status"] = json!("EmailSent");
    unsent["updated_at"] = json!("2026-12-03T10:00:00Z");
    w.import("default", "2026-12-03T10:00:00Z", &[unsent]).await;
    w.daily("2026-12-03", "2026-12-20", "14:05:00").await;
    let steps: Vec<String> = w.sent().await.into_iter().map(|s| s.0).collect();
    assert_eq!(steps, ["day+1"]);
}

#[tokio::test]
async fn the_vendor_reminder_makes_tasks_until_the_bill_is_paid() {
    let mut w = World::new().await;
    let bill = |balance: &str, updated: &str| {
        json!({"type": "bill", "id": "B1", "number": "B-1", "vendor": "Paper Co", "amount": "900.00", "balance": balance,
            "currency": "USD", "txn_date": "2026-11-01", "due_date": "2026-12-10", "updated_at": updated})
    };
    w.import("default", "2026-11-01T12:00:00Z", &[bill("900.00", "2026-11-01T12:00:00Z")]).await;
    w.enable(WorkflowKind::VendorPayment, WorkflowKind::VendorPayment.defaults());
    w.daily("2026-12-01", "2026-12-31", "14:05:00").await;
    let steps: Vec<(String, String)> = w.sent().await.into_iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(steps, [("day-3".into(), "2026-12-07".into()), ("day+0".into(), "2026-12-10".into())]);
    let intents = w.intents().await;
    let kinds: Vec<&str> = intents.iter().map(|i| i.intent.action.kind()).collect();
    assert_eq!(kinds, ["task", "task"]);
    // Paid before the due date: the second task is not made.
    let mut w = World::new().await;
    w.import("default", "2026-11-01T12:00:00Z", &[bill("900.00", "2026-11-01T12:00:00Z")]).await;
    w.enable(WorkflowKind::VendorPayment, WorkflowKind::VendorPayment.defaults());
    w.daily("2026-12-01", "2026-12-08", "14:05:00").await;
    w.import("default", "2026-12-09T12:00:00Z", &[bill("0.00", "2026-12-09T12:00:00Z")]).await;
    w.daily("2026-12-09", "2026-12-31", "14:05:00").await;
    assert_eq!(w.sent().await.len(), 1);
}

#[tokio::test]
async fn the_deposit_reminder_repeats_until_the_payment_is_deposited() {
    let mut w = World::new().await;
    let payment = json!({"type": "payment", "id": "P1", "customer": "Acme", "amount": "75.00", "currency": "USD",
        "txn_date": "2026-12-01", "updated_at": "2026-12-01T12:00:00Z"});
    w.import("default", "2026-12-01T12:00:00Z", &[payment]).await;
    w.enable(WorkflowKind::BankDeposit, WorkflowKind::BankDeposit.defaults());
    w.daily("2026-12-01", "2026-12-08", "14:05:00").await;
    let deposit = json!({"type": "deposit", "id": "D1", "amount": "75.00", "currency": "USD", "txn_date": "2026-12-08",
        "payments": ["P1"], "updated_at": "2026-12-08T20:00:00Z"});
    w.import("default", "2026-12-08T20:00:00Z", &[deposit]).await;
    w.daily("2026-12-09", "2026-12-31", "14:05:00").await;
    // +2 (Thursday 3rd), +5 (Sunday 6th: Monday 7th); the 9th is after the deposit.
    assert_eq!(
        w.sent().await,
        [
            triple("day+2", "2026-12-03", "2026-12-03T14:00:00Z"),
            triple("repeat-1", "2026-12-06", "2026-12-07T14:00:00Z"),
        ]
    );
}

#[tokio::test]
async fn each_company_is_reminded_at_nine_in_its_own_zone() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    w.import("paris", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.stages = vec![Stage::new(-3, vec![Channel::CustomerEmail])];
    w.enable(WorkflowKind::PaymentDue, config);
    w.pass("2026-12-06T12:00:00Z").await;
    // Paris opens at 08:00 UTC, New York at 14:00 UTC: a pass every 10 minutes.
    let mut now = at("2026-12-07T00:00:00Z");
    let mut decided = Vec::new();
    while now < at("2026-12-08T00:00:00Z") {
        let d = w.pass(&now.to_rfc3339()).await;
        if d.sent > 0 {
            decided.push(now.format("%H:%M").to_string());
        }
        now += Duration::minutes(10);
    }
    assert_eq!(decided, ["08:00", "14:00"]);
}

/// One stage on the due date at `time`, any day, any hour.
fn at_local_time(time: &str) -> WorkflowConfig {
    let mut c = WorkflowKind::PaymentDue.defaults();
    c.stages = vec![Stage::new(0, vec![Channel::CustomerEmail])];
    c.send_time = time.parse::<NaiveTime>().unwrap();
    c.window.days =
        vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
    c.window.start = NaiveTime::MIN;
    c.window.end = "23:59:59".parse().unwrap();
    c
}

/// Passes every `step` minutes over a UTC day; the instants at which something was sent.
async fn sends_over(w: &World, from: &str, to: &str, step: i64) -> Vec<String> {
    let mut now = at(from);
    let mut out = Vec::new();
    while now <= at(to) {
        if w.pass(&now.to_rfc3339()).await.sent > 0 {
            out.push(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        now += Duration::minutes(step);
    }
    out
}

#[tokio::test]
async fn a_friday_evening_step_goes_out_on_monday_at_nine_under_its_own_key() {
    let mut w = World::new().await;
    w.import("default", "2026-11-01T12:00:00Z", &[invoice("42", "2026-11-27", "500.00", "2026-11-01T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.stages = vec![Stage::new(0, vec![Channel::CustomerEmail])];
    config.send_time = "18:30:00".parse().unwrap();
    w.enable(WorkflowKind::PaymentDue, config);
    w.pass("2026-11-27T12:00:00Z").await;
    // Friday 18:30 is after the window closes (17:00): Monday 09:00 EST.
    assert_eq!(sends_over(&w, "2026-11-27T12:00:00Z", "2026-12-01T00:00:00Z", 30).await, ["2026-11-30T14:00:00Z"]);
    assert_eq!(w.sent().await, [triple("day+0", "2026-11-27", "2026-11-30T14:00:00Z")]);
}

#[tokio::test]
async fn daylight_saving_in_new_york_sends_once_in_the_gap_and_once_in_the_repeated_hour() {
    // 02:30 does not exist on 2026-03-08: the first valid instant, 03:00 EDT (07:00 UTC).
    let mut w = World::new().await;
    w.import("default", "2026-02-01T12:00:00Z", &[invoice("1", "2026-03-08", "500.00", "2026-02-01T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, at_local_time("02:30"));
    w.pass("2026-03-07T12:00:00Z").await;
    assert_eq!(sends_over(&w, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", 5).await, ["2026-03-08T07:00:00Z"]);
    // 01:30 happens twice on 2026-11-01: the first, 01:30 EDT (05:30 UTC).
    let mut w = World::new().await;
    w.import("default", "2026-10-01T12:00:00Z", &[invoice("1", "2026-11-01", "500.00", "2026-10-01T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, at_local_time("01:30"));
    w.pass("2026-10-31T12:00:00Z").await;
    assert_eq!(sends_over(&w, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", 5).await, ["2026-11-01T05:30:00Z"]);
    assert_eq!(w.sent().await.len(), 1);
}

#[tokio::test]
async fn daylight_saving_in_paris_sends_once_in_the_gap_and_once_in_the_repeated_hour() {
    let mut w = World::new().await;
    w.import("paris", "2026-02-01T12:00:00Z", &[invoice("1", "2026-03-29", "500.00", "2026-02-01T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, at_local_time("02:30"));
    w.pass("2026-03-28T12:00:00Z").await;
    // 02:30 does not exist on 2026-03-29 in Paris: 03:00 CEST (01:00 UTC).
    assert_eq!(sends_over(&w, "2026-03-28T22:00:00Z", "2026-03-29T22:00:00Z", 5).await, ["2026-03-29T01:00:00Z"]);
    let mut w = World::new().await;
    w.import("paris", "2026-10-01T12:00:00Z", &[invoice("1", "2026-10-25", "500.00", "2026-10-01T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, at_local_time("02:30"));
    w.pass("2026-10-24T12:00:00Z").await;
    // 02:30 happens twice on 2026-10-25: the first, 02:30 CEST (00:30 UTC).
    assert_eq!(sends_over(&w, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 5).await, ["2026-10-25T00:30:00Z"]);
}

/// Three stages, Monday to Wednesday 2026-11-23…25 at 09:00 New York, and an engine that last
/// ran on Sunday and comes back on Thursday at 08:00.
async fn down_three_days(policy: CatchUp) -> World {
    let mut w = World::new().await;
    w.import("default", "2026-11-01T12:00:00Z", &[invoice("42", "2026-11-23", "500.00", "2026-11-01T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.stages = (0..3).map(|d| Stage::new(d, vec![Channel::CustomerEmail])).collect();
    config.catch_up = policy;
    w.enable(WorkflowKind::PaymentDue, config);
    w.pass("2026-11-22T12:00:00Z").await;
    w.pass("2026-11-26T13:00:00Z").await;
    w
}

#[tokio::test]
async fn catching_up_after_three_days_down_follows_each_policy_and_audits_what_it_skipped() {
    let w = down_three_days(CatchUp::Skip).await;
    assert!(w.sent().await.is_empty());
    let skipped = w.skipped().await;
    assert_eq!(skipped.len(), 3);
    assert!(skipped.iter().all(|(_, why)| why == "missed while the engine was down (catch_up = skip)"), "{skipped:?}");

    let w = down_three_days(CatchUp::OnceWithinGrace { grace_hours: 24 }).await;
    assert_eq!(w.sent().await, [triple("day+2", "2026-11-25", "2026-11-25T14:00:00Z")]);
    let skipped = w.skipped().await;
    assert_eq!(skipped.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["day+0", "day+1"]);
    assert!(skipped[0].1.contains("a later one was due"), "{skipped:?}");
    let ledger = w.ledger().await;
    let sent = ledger.iter().find(|f| f.sent).unwrap();
    assert_eq!(sent.expires_at, Some(at("2026-11-28T13:00:00Z")), "48 hours from when it was caught up");

    let w = down_three_days(CatchUp::OnceWithinGrace { grace_hours: 12 }).await;
    assert!(w.sent().await.is_empty());
    assert!(w.skipped().await[2].1.contains("more than the 12 h grace"));

    let w = down_three_days(CatchUp::All).await;
    let steps: Vec<String> = w.sent().await.into_iter().map(|s| s.0).collect();
    assert_eq!(steps, ["day+0", "day+1", "day+2"]);
    assert!(w.skipped().await.is_empty());
}

#[tokio::test]
async fn a_step_due_now_supersedes_the_missed_ones_within_grace() {
    let mut w = World::new().await;
    w.import("default", "2026-11-01T12:00:00Z", &[invoice("42", "2026-11-23", "500.00", "2026-11-01T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.stages = (0..3).map(|d| Stage::new(d, vec![Channel::CustomerEmail])).collect();
    w.enable(WorkflowKind::PaymentDue, config);
    w.pass("2026-11-22T12:00:00Z").await;
    // Back on Wednesday at 09:05: Wednesday's step is on time.
    w.pass("2026-11-25T14:05:00Z").await;
    assert_eq!(w.sent().await, [triple("day+2", "2026-11-25", "2026-11-25T14:00:00Z")]);
    assert_eq!(w.skipped().await.len(), 2);
}

#[tokio::test]
async fn switching_a_workflow_on_sends_nothing_of_the_past_and_off_forgets_where_it_stood() {
    let mut w = World::new().await;
    w.import("default", "2026-11-01T12:00:00Z", &[invoice("42", "2026-11-23", "500.00", "2026-11-01T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.stages = (0..3).map(|d| Stage::new(d, vec![Channel::CustomerEmail])).collect();
    config.catch_up = CatchUp::All;
    // Off: passes on Sunday and Monday remember nothing.
    w.workflows.insert(WorkflowKind::PaymentDue, config.clone());
    w.pass("2026-11-22T12:00:00Z").await;
    w.pass("2026-11-23T15:00:00Z").await;
    assert_eq!(w.store.cursor(&reminders::cursor_name(WorkflowKind::PaymentDue)).await.unwrap(), 0);
    // Switched on Tuesday at 12:00: Monday's and Tuesday's 09:00 are past, Wednesday's is not.
    w.enable(WorkflowKind::PaymentDue, config.clone());
    assert_eq!(w.pass("2026-11-24T17:00:00Z").await, Decided::default());
    w.pass("2026-11-25T14:05:00Z").await;
    assert_eq!(w.sent().await, [triple("day+2", "2026-11-25", "2026-11-25T14:00:00Z")]);
    // Off, then on again: it starts afresh.
    w.workflows.insert(WorkflowKind::PaymentDue, config);
    w.pass("2026-11-26T12:00:00Z").await;
    assert_eq!(w.store.cursor(&reminders::cursor_name(WorkflowKind::PaymentDue)).await.unwrap(), 0);
}

/// `invoiceflow simulate` and the running engine's passes are one planner: over the example
/// company's records, the steps the passes send are exactly the workflow lines simulate prints.
#[tokio::test]
async fn simulate_previews_exactly_what_the_passes_send() {
    const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("e.db").display());
    let config_path = format!("{examples}/invoiceflow.toml");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(["--config", &config_path, "--database", &url, "--now", "2026-11-25T06:00:00Z"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["import", &format!("{examples}/data")]);
    let (from, to) = ("2026-11-25", "2026-12-06");
    let preview = run(&["simulate", "--from", from, "--to", to, "--include-disabled", "--json"]);
    let mut previewed: Vec<String> = preview
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["source"].as_str().is_some_and(|s| s.starts_with("workflow:")))
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    previewed.sort();
    assert!(previewed.len() > 20, "the example company has reminders due: {previewed:?}");

    // The engine: the same workflows switched on, a pass every 15 minutes over the same days in
    // every company's zone (from the evening before, so that nothing is missed).
    let config = Config::load(Some(std::path::Path::new(&config_path))).unwrap();
    let store = SqliteStore::connect(&url).await.unwrap();
    let workflows: BTreeMap<WorkflowKind, WorkflowConfig> =
        config.workflows.iter().map(|(k, c)| (*k, WorkflowConfig { enabled: true, ..c.clone() })).collect();
    let mut now = at("2026-11-24T12:00:00Z");
    while now <= at("2026-12-07T12:00:00Z") {
        let clock = Clock { now: Now::At(now), companies: config.companies.clone() };
        reminders::pass(&store, &workflows, &clock).await.unwrap();
        now += Duration::minutes(15);
    }
    let mut sent: Vec<String> = store
        .firings(&FiringQuery { limit: 10_000, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|f| {
            let zone = config.companies.get(&f.record.account).time_zone;
            let day = f.due_at.with_timezone(&zone).date_naive();
            f.sent && day >= self::day(from) && day <= self::day(to)
        })
        .map(|f| f.key)
        .collect();
    sent.sort();
    assert_eq!(sent, previewed);
}

#[tokio::test]
async fn removing_a_stage_leaves_the_others_their_names_and_their_sends() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    w.enable(WorkflowKind::PaymentDue, WorkflowKind::PaymentDue.defaults());
    w.daily("2026-12-01", "2026-12-18", "14:05:00").await;
    // The admin drops the +7 stage after it went out: +14 and +30 still go out.
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.stages.retain(|s| s.days != 7);
    w.enable(WorkflowKind::PaymentDue, config);
    w.daily("2026-12-19", "2027-01-15", "14:05:00").await;
    let steps: Vec<String> = w.sent().await.into_iter().map(|s| s.0).collect();
    assert_eq!(steps, ["day-3", "day+7", "day+14", "day+30"]);
}

#[tokio::test]
async fn a_step_skipped_on_its_date_is_decided_again_when_the_due_date_moves() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.paused = vec![Pause { who: "42".into(), until: day("2026-12-08") }];
    w.enable(WorkflowKind::PaymentDue, config);
    w.daily("2026-12-01", "2026-12-08", "14:05:00").await;
    assert_eq!(w.skipped().await, [("day-3".to_owned(), "paused until 2026-12-08".to_owned())]);
    // A new due date: the three-days-before reminder is ahead again, and goes out.
    w.import("default", "2026-12-09T12:00:00Z", &[invoice("42", "2026-12-31", "500.00", "2026-12-09T12:00:00Z")]).await;
    w.daily("2026-12-09", "2026-12-29", "14:05:00").await;
    assert_eq!(w.sent().await, [triple("day-3", "2026-12-28", "2026-12-28T14:00:00Z")]);
}

#[tokio::test]
async fn slow_passes_are_not_an_engine_down_and_miss_nothing() {
    let mut w = World::new().await;
    w.import("default", "2026-11-10T12:00:00Z", &[invoice("42", "2026-12-10", "500.00", "2026-11-10T12:00:00Z")]).await;
    let mut config = WorkflowKind::PaymentDue.defaults();
    config.catch_up = CatchUp::Skip;
    w.enable(WorkflowKind::PaymentDue, config);
    w.pass("2026-12-07T13:00:00Z").await;
    // A pass every 10 minutes, each 8 minutes late past the hour's step: all on time.
    assert_eq!(sends_over(&w, "2026-12-07T13:08:00Z", "2026-12-07T15:00:00Z", 10).await, ["2026-12-07T14:08:00Z"]);
    assert!(w.skipped().await.is_empty());
}

#[tokio::test]
async fn steps_the_window_moves_onto_one_opening_go_out_once() {
    let mut w = World::new().await;
    // Dated Wednesday 2026-12-02, never sent: +1 on Thursday, then every 2 days; Saturday's
    // repeat-1 moves to Monday 09:00, where repeat-2 falls.
    let mut unsent = invoice("7", "2026-12-31", "500.00", "2026-12-02T12:00:00Z");
    unsent["email_status"] = json!("NeedToSend");
    unsent["txn_date"] = json!("2026-12-02");
    w.import("default", "2026-12-02T12:00:00Z", &[unsent]).await;
    w.enable(WorkflowKind::UnsentInvoice, WorkflowKind::UnsentInvoice.defaults());
    w.daily("2026-12-02", "2026-12-08", "14:05:00").await;
    let steps: Vec<(String, String)> = w.sent().await.into_iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(
        steps,
        [("day+1".to_owned(), "2026-12-03".to_owned()), ("repeat-2".to_owned(), "2026-12-07".to_owned())]
    );
    assert_eq!(w.skipped().await, [("repeat-1".to_owned(), "superseded by repeat-2, due at the same time".to_owned())]);
}
