//! Scheduled rules at their slots, as the running engine runs them: `schedule::pass` over a real
//! SQLite store at instants a fixed clock gives.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use invoiceflow::clock::{Clock, Now};
use invoiceflow::config::Config;
use invoiceflow::schedule;
use invoiceflow::store::{IntentQuery, SqliteStore, Store};
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::check::check_rule;
use invoiceflow_rules::script::{CompiledRule, Destinations, HostConfig, Limits, RuleHost, RuleId};
use serde_json::json;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    config: Config,
    host: RuleHost,
    rule: CompiledRule,
}

impl World {
    /// Acme in New York and Atelier in Paris, each with an invoice due 2026-11-20; a rule at 09:00
    /// in each company's zone for invoices one to three days overdue.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoiceflow.toml");
        std::fs::write(
            &path,
            "[company]\ntime_zone = \"America/New_York\"\n[quickbooks.paris]\ntime_zone = \"Europe/Paris\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        let host = RuleHost::new(HostConfig {
            destinations: Destinations::default(),
            library: Vec::new(),
            limits: Limits::default(),
            stopwatch: Instant::now,
        })
        .map_err(|e| format!("{e:?}"))
        .unwrap();
        let text = "name = \"Overdue\"\non = { schedule = \"0 0 9 * * *\" }\n\
                    when = 'invoice.status == \"overdue\" && invoice.days_overdue in [1, 2, 3]'\n\
                    then = 'task(`Chase ${invoice.number}`)'\n";
        let rule = check_rule(&host, RuleId::new("overdue"), text).rule.expect("compiles");
        let w = Self { _dir: dir, store, config, host, rule };
        for account in ["default", "paris"] {
            w.import(account).await;
        }
        w
    }

    fn clock(&self, now: DateTime<Utc>) -> Clock {
        Clock { now: Now::At(now), companies: self.config.companies.clone() }
    }

    async fn import(&self, account: &str) {
        let value = json!({"type": "invoice", "id": "7", "number": format!("{account}-7"), "customer": "Acme",
            "amount": "100.00", "balance": "100.00", "currency": "USD", "txn_date": "2026-11-01",
            "due_date": "2026-11-20", "email_status": "EmailSent", "updated_at": "2026-11-01T00:00:00Z"});
        crate::support::import(&self.store, &self.clock(at("2026-11-01T12:00:00Z")), account, &[value]).await;
    }

    async fn pass(&self, now: DateTime<Utc>) -> schedule::Slots {
        let rules = std::slice::from_ref(&self.rule);
        schedule::pass(&self.store, &self.host, rules, &self.clock(now), Locale::En).await.unwrap()
    }

    /// Each intent's key, in order.
    async fn keys(&self) -> Vec<String> {
        let intents = self.store.intents(&IntentQuery { limit: 100, ..Default::default() }).await.unwrap();
        intents.into_iter().map(|i| i.key).collect()
    }
}

#[tokio::test]
async fn each_company_gets_its_slot_at_nine_in_its_own_zone_once() {
    let w = World::new().await;
    w.pass(at("2026-11-20T23:50:00Z")).await;
    // A pass every 10 minutes through Saturday 21 November (UTC), each run twice.
    let mut now = at("2026-11-21T00:00:00Z");
    let mut ran = Vec::new();
    while now < at("2026-11-22T00:00:00Z") {
        if w.pass(now).await.run > 0 {
            ran.push(now.format("%H:%M").to_string());
        }
        assert_eq!(w.pass(now).await, schedule::Slots::default(), "the same moment again runs nothing");
        now += Duration::minutes(10);
    }
    // 09:00 in Paris is 08:00 UTC, in New York 14:00 UTC.
    assert_eq!(ran, ["08:00", "14:00"]);
    assert_eq!(
        w.keys().await,
        [
            "rule:overdue:slot:2026-11-21T08:00:00Z:invoice paris/7:0",
            "rule:overdue:slot:2026-11-21T14:00:00Z:invoice default/7:0"
        ]
    );
}

#[tokio::test]
async fn slots_missed_while_down_run_once_within_a_day_and_leave_audit_rows() {
    let w = World::new().await;
    w.pass(at("2026-11-20T23:50:00Z")).await;
    // Down until Monday 23 November, 15:00 UTC: Paris's 08:00 and New York's 14:00 of the 23rd
    // are within a day and run; the 21st's and 22nd's are audited.
    let done = w.pass(at("2026-11-23T15:00:00Z")).await;
    assert_eq!((done.run, done.skipped), (2, 4));
    let skips = w.store.slot_skips(Some("overdue"), 10).await.unwrap();
    let seen: Vec<(String, Option<String>)> =
        skips.iter().map(|s| (s.slot.format("%m-%d %H:%M").to_string(), s.zone.clone())).collect();
    assert_eq!(
        seen,
        [
            ("11-21 08:00".to_owned(), Some("Europe/Paris".to_owned())),
            ("11-21 14:00".to_owned(), Some("America/New_York".to_owned())),
            ("11-22 08:00".to_owned(), Some("Europe/Paris".to_owned())),
            ("11-22 14:00".to_owned(), Some("America/New_York".to_owned()))
        ]
    );
    assert!(skips.iter().all(|s| s.reason.contains("a later slot ran")), "{skips:?}");
    // 3 days overdue on the 23rd: each company's invoice matches at its slot.
    assert_eq!(w.keys().await.len(), 2);
}
