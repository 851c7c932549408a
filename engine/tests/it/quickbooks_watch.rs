//! Watching QuickBooks against the fake server: a change-data-capture sweep (`invoiceflow
//! quickbooks sync`, as a user runs it) and the webhook inbox drained in batched fetches.

use chrono::{DateTime, Utc};
use invoiceflow::clock::{Clock, Now};
use invoiceflow::config::Config;
use invoiceflow::quickbooks::inbox::drain;
use invoiceflow::quickbooks::tokens::TokenKeeper;
use invoiceflow::quickbooks::{Companies, Watch};
use invoiceflow::store::{InboxItem, InvoiceQuery, QuickBooksStore, SqliteStore, Store};

use crate::fake_quickbooks::{Endpoint, Failure, FakeQuickBooks, InvoiceSpec, Kind};

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");
const REALM: &str = "9341";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A configuration for company `acme` on the fake, with a fixed access token from `QBO_TOKEN`.
fn config(dir: &std::path::Path, fake: &FakeQuickBooks) -> std::path::PathBuf {
    let path = dir.join("invoiceflow.toml");
    std::fs::write(
        &path,
        format!(
            "database_url = \"sqlite://{}\"\n[quickbooks.acme]\nrealm_id = \"{REALM}\"\napi_base = \"{}\"\n\
             access_token_env = \"QBO_TOKEN\"\n",
            dir.join("t.db").display(),
            fake.base_url()
        ),
    )
    .unwrap();
    path
}

fn invoice(id: &str, number: &str, balance: &str) -> serde_json::Value {
    InvoiceSpec { id: Some(id), number: Some(number), amount: "900.00", balance, ..Default::default() }.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_back_fills_what_changed_and_a_second_brings_only_the_news() {
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at("2026-11-25T09:00:00Z"));
    fake.add_company(REALM);
    let token = fake.grant(REALM).access_token;
    fake.put(REALM, Kind::Invoice, invoice("101", "1101", "900.00"));
    fake.put(REALM, Kind::Invoice, invoice("102", "1102", "900.00"));
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &fake);
    let sync = |now: &str| {
        let out = std::process::Command::new(BIN)
            .args(["--config", &config.to_string_lossy(), "--now", now, "quickbooks", "sync", "acme"])
            .env("QBO_TOKEN", &token)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    let first = sync("2026-11-25T09:05:00Z");
    assert!(first.contains("received 2 Invoice; 2 new, 0 updated"), "{first}");
    assert_eq!(fake.count(Endpoint::Cdc), 1);
    let cdc = &fake.requests()[0];
    assert!(cdc.param("changedSince").is_some_and(|s| s.starts_with("2026-10-26")), "30 days back at most: {cdc:?}");

    // Paid in QuickBooks meanwhile; the next sweep starts where the last one stopped.
    fake.set_now(at("2026-11-25T09:30:00Z"));
    fake.update(REALM, Kind::Invoice, "101", |i| i["Balance"] = serde_json::json!(0));
    let second = sync("2026-11-25T09:35:00Z");
    assert!(second.contains("received 1 Invoice; 0 new, 1 updated"), "{second}");
    let cdc = fake.requests().into_iter().filter(|r| r.endpoint == Endpoint::Cdc).nth(1).unwrap();
    assert!(cdc.param("changedSince").is_some_and(|s| s.starts_with("2026-11-25T09:04")), "{cdc:?}");

    let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let stored = store.invoices(&InvoiceQuery { limit: 10, ..Default::default() }).await.unwrap();
    let statuses: Vec<(String, String)> =
        stored.iter().map(|s| (s.record.key().id.as_str().to_owned(), s.status.clone())).collect();
    assert_eq!(statuses, [("101".into(), "paid".into()), ("102".into(), "awaiting_send".into())]);
    assert!(fake.minorversion_missing().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_notifications_are_fetched_in_one_query_per_kind_and_survive_a_500() {
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at("2026-11-25T09:00:00Z"));
    fake.add_company(REALM);
    let token = fake.grant(REALM).access_token;
    for n in 0..150 {
        fake.put(REALM, Kind::Invoice, invoice(&format!("{}", 500 + n), &format!("{}", 1500 + n), "900.00"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &fake);
    // The token in a file: this process's environment is shared by the tests running beside it.
    let config = {
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("access_token_env = \"QBO_TOKEN\"", "access_token_file = \"token\"");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join("token"), &token).unwrap();
        Config::load(Some(&path)).unwrap()
    };
    let store = SqliteStore::connect(&config.database_url).await.unwrap();
    store.migrate().await.unwrap();
    let companies = Companies::from_config(&config).unwrap();
    let client = invoiceflow_connectors::http::client(true).unwrap();
    let keeper = TokenKeeper::default();
    let watch = Watch { store: &store, client: &client, keeper: &keeper, node: "node-a" };
    let clock = Clock { now: Now::At(at("2026-11-25T09:01:00Z")), companies: config.companies.clone() };
    let items: Vec<InboxItem> = (0..150)
        .map(|n| InboxItem {
            realm_id: REALM.into(),
            entity: "Invoice".into(),
            entity_id: format!("{}", 500 + n),
            operation: "Update".into(),
            last_updated: None,
        })
        .collect();
    store.enqueue(&items, clock.now.instant()).await.unwrap();

    // QuickBooks fails once: everything waits for its next try, nothing is lost.
    fake.fail_next_on(Endpoint::Query, 1, Failure::ServerError);
    let round = drain(&watch, &companies, &clock).await.unwrap();
    assert_eq!((round.leased, round.done, round.retrying), (150, 0, 150));
    assert_eq!(store.inbox_gauge(None).await.unwrap().pending, 150);

    // Its next try, 10 s later: one query for all 150, applied.
    let later = Clock { now: Now::At(at("2026-11-25T09:01:11Z")), companies: config.companies.clone() };
    let before = fake.count(Endpoint::Query);
    let round = drain(&watch, &companies, &later).await.unwrap();
    assert_eq!((round.leased, round.done, round.applied.imported), (150, 150, 150));
    assert_eq!(fake.count(Endpoint::Query) - before, 1, "one query for 150 ids");
    assert_eq!(store.invoices(&InvoiceQuery { limit: 1000, ..Default::default() }).await.unwrap().len(), 150);
}

/// A SQLite store, companies and a watch context on the fake, for company `acme` with a fixed
/// token in a file (this process's environment is shared by the tests running beside it).
struct Watched {
    _dir: tempfile::TempDir,
    config: Config,
    store: SqliteStore,
    companies: Companies,
    client: reqwest::Client,
    keeper: TokenKeeper,
}

impl Watched {
    async fn new(fake: &FakeQuickBooks) -> Self {
        let token = fake.grant(REALM).access_token;
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), fake);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("access_token_env = \"QBO_TOKEN\"", "access_token_file = \"token\"");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join("token"), &token).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let store = SqliteStore::connect(&config.database_url).await.unwrap();
        store.migrate().await.unwrap();
        let companies = Companies::from_config(&config).unwrap();
        let client = invoiceflow_connectors::http::client(true).unwrap();
        Self { _dir: dir, config, store, companies, client, keeper: TokenKeeper::default() }
    }

    fn watch<'a>(&'a self, node: &'a str) -> Watch<'a, SqliteStore> {
        Watch { store: &self.store, client: &self.client, keeper: &self.keeper, node }
    }

    fn clock(&self, now: &str) -> Clock {
        Clock { now: Now::At(at(now)), companies: self.config.companies.clone() }
    }

    async fn status_of(&self, id: &str) -> String {
        let stored = self.store.invoices(&InvoiceQuery { limit: 100, ..Default::default() }).await.unwrap();
        stored.into_iter().find(|s| s.record.key().id.as_str() == id).map(|s| s.status).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_run_at_start_every_fifteen_minutes_and_daily_once_across_nodes_and_recover_a_lost_webhook() {
    use invoiceflow::quickbooks::sweeps::{SweepKind, Sweeps};
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at("2026-11-25T09:00:00Z"));
    fake.add_company(REALM);
    fake.put(REALM, Kind::Invoice, invoice("101", "1101", "900.00"));
    // The access token lives an hour from here.
    fake.set_now(at("2026-11-25T10:00:00Z"));
    let w = Watched::new(&fake).await;
    let (a, b) = (w.watch("node-a"), w.watch("node-b"));
    let t0 = "2026-11-25T10:00:00Z";
    let mut on_a = Sweeps::new(&w.companies, at(t0));
    let kinds = |done: &[invoiceflow::quickbooks::sweeps::SweepDone]| {
        done.iter().map(|d| (d.company.as_str().to_owned(), d.kind, d.result.is_ok())).collect::<Vec<_>>()
    };

    // As the engine starts: a sweep, from 30 days back.
    let done = on_a.run_due(&a, &w.companies, &w.clock(t0)).await.unwrap();
    assert_eq!(kinds(&done), [("acme".to_owned(), SweepKind::Start, true)]);
    assert_eq!(w.status_of("101").await, "awaiting_send");
    assert_eq!(on_a.next_due(), Some(at("2026-11-25T10:15:00Z")));
    // A second node starting a moment later finds it just swept: no second sweep.
    let mut on_b = Sweeps::new(&w.companies, at("2026-11-25T10:00:20Z"));
    assert!(on_b.run_due(&b, &w.companies, &w.clock("2026-11-25T10:00:20Z")).await.unwrap().is_empty());
    assert!(on_a.run_due(&a, &w.companies, &w.clock("2026-11-25T10:05:00Z")).await.unwrap().is_empty());
    assert_eq!(fake.count(Endpoint::Cdc), 1);

    // Paid in QuickBooks; its webhook is lost. The sweep 15 minutes on brings it in, from the
    // sync point; the other node's turn, a moment later, finds it done.
    fake.set_now(at("2026-11-25T10:07:00Z"));
    fake.update(REALM, Kind::Invoice, "101", |i| i["Balance"] = serde_json::json!(0));
    let done = on_a.run_due(&a, &w.companies, &w.clock("2026-11-25T10:15:00Z")).await.unwrap();
    assert_eq!(kinds(&done), [("acme".to_owned(), SweepKind::Periodic, true)]);
    assert_eq!(w.status_of("101").await, "paid");
    let cdc = fake.requests().into_iter().filter(|r| r.endpoint == Endpoint::Cdc).nth(1).unwrap();
    assert!(cdc.param("changedSince").is_some_and(|s| s.starts_with("2026-11-25T09:59")), "{cdc:?}");
    assert!(on_b.run_due(&b, &w.companies, &w.clock("2026-11-25T10:15:40Z")).await.unwrap().is_empty());
    assert_eq!(fake.count(Endpoint::Cdc), 2);

    // A failed sweep is tried again a minute on (not at its next quarter hour), then succeeds.
    fake.fail_next_on(Endpoint::Cdc, 1, Failure::ServerError);
    let done = on_a.run_due(&a, &w.companies, &w.clock("2026-11-25T10:30:00Z")).await.unwrap();
    assert_eq!(kinds(&done), [("acme".to_owned(), SweepKind::Periodic, false)]);
    assert_eq!(on_a.next_due(), Some(at("2026-11-25T10:31:00Z")));
    let done = on_a.run_due(&a, &w.companies, &w.clock("2026-11-25T10:31:00Z")).await.unwrap();
    assert_eq!(kinds(&done), [("acme".to_owned(), SweepKind::Periodic, true)]);

    // A day after the start: the daily sweep reads the last 25 hours, whatever the sync point.
    let done = on_a.run_due(&a, &w.companies, &w.clock("2026-11-26T10:00:00Z")).await.unwrap();
    assert_eq!(kinds(&done), [("acme".to_owned(), SweepKind::Daily, true)]);
    let cdc = fake.requests().into_iter().rfind(|r| r.endpoint == Endpoint::Cdc).unwrap();
    assert!(cdc.param("changedSince").is_some_and(|s| s.starts_with("2026-11-25T09:00")), "{cdc:?}");
    assert!(fake.minorversion_missing().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_the_inbox_for_the_wait_it_says_and_a_duplicate_is_fetched_once() {
    use invoiceflow::quickbooks::inbox::drain_all;
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at("2026-11-25T09:00:00Z"));
    fake.add_company(REALM);
    fake.put(REALM, Kind::Invoice, invoice("101", "1101", "900.00"));
    let w = Watched::new(&fake).await;
    let watch = w.watch("node-a");
    let item = InboxItem {
        realm_id: REALM.into(),
        entity: "Invoice".into(),
        entity_id: "101".into(),
        operation: "Update".into(),
        last_updated: Some(at("2026-11-25T09:00:00Z")),
    };
    let t0 = w.clock("2026-11-25T09:01:00Z");
    assert_eq!(w.store.enqueue(&[item.clone(), item.clone()], t0.now.instant()).await.unwrap(), 1);

    // Throttled: nothing is lost; nothing is asked again before the wait QuickBooks said is
    // over (2 s here: QuickBooks' own 60 s is the API client's unit test, on a paused clock).
    fake.fail_next_on(Endpoint::Query, 1, Failure::TooManyRequests { retry_after: Some(2) });
    let round = drain_all(&watch, &w.companies, &t0).await.unwrap();
    assert_eq!((round.leased, round.done, round.retrying), (1, 0, 1));
    let early = drain_all(&watch, &w.companies, &w.clock("2026-11-25T09:01:01Z")).await.unwrap();
    assert_eq!(early.leased, 0);
    assert_eq!(fake.count(Endpoint::Query), 1);
    let round = drain_all(&watch, &w.companies, &w.clock("2026-11-25T09:01:02Z")).await.unwrap();
    assert_eq!((round.leased, round.done, round.applied.imported), (1, 1, 1));

    // The same notification again, after it was done: kept once, nothing fetched.
    let later = w.clock("2026-11-25T09:05:00Z");
    assert_eq!(w.store.enqueue(&[item], later.now.instant()).await.unwrap(), 0);
    assert_eq!(drain_all(&watch, &w.companies, &later).await.unwrap().leased, 0);
    assert_eq!(fake.count(Endpoint::Query), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_is_fetched_as_the_voided_invoice_and_a_delete_marks_the_record_deleted_without_a_fetch() {
    use invoiceflow::quickbooks::inbox::drain_all;
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at("2026-11-25T09:00:00Z"));
    fake.add_company(REALM);
    fake.put(REALM, Kind::Invoice, invoice("101", "1101", "900.00"));
    fake.put(REALM, Kind::Invoice, invoice("102", "1102", "900.00"));
    let w = Watched::new(&fake).await;
    let watch = w.watch("node-a");
    let item = |id: &str, operation: &str, when: &str| InboxItem {
        realm_id: REALM.into(),
        entity: "Invoice".into(),
        entity_id: id.into(),
        operation: operation.into(),
        last_updated: Some(at(when)),
    };
    let t0 = w.clock("2026-11-25T09:01:00Z");
    let created = [item("101", "Create", "2026-11-25T09:00:00Z"), item("102", "Create", "2026-11-25T09:00:00Z")];
    w.store.enqueue(&created, t0.now.instant()).await.unwrap();
    assert_eq!(drain_all(&watch, &w.companies, &t0).await.unwrap().applied.imported, 2);
    assert_eq!(w.status_of("101").await, "awaiting_send");

    fake.set_now(at("2026-11-25T09:10:00Z"));
    fake.void_invoice(REALM, "101");
    fake.delete(REALM, Kind::Invoice, "102");
    let later = w.clock("2026-11-25T09:11:00Z");
    let gone = [item("101", "Void", "2026-11-25T09:10:00Z"), item("102", "Delete", "2026-11-25T09:10:00Z")];
    w.store.enqueue(&gone, later.now.instant()).await.unwrap();
    let round = drain_all(&watch, &w.companies, &later).await.unwrap();
    assert_eq!((round.leased, round.done, round.applied.updated), (2, 2, 2), "{round:?}");
    // Both leave the receivables as `voided`; the deleted one is kept, marked deleted.
    let stored = w.store.invoices(&InvoiceQuery { limit: 10, ..Default::default() }).await.unwrap();
    let lifecycles: Vec<(String, String, invoiceflow_rules::Lifecycle)> = stored
        .into_iter()
        .map(|s| match s.record {
            invoiceflow_rules::Record::Invoice(i) => (i.key.id.as_str().to_owned(), s.status, i.lifecycle),
            other => panic!("{other:?}"),
        })
        .collect();
    use invoiceflow_rules::Lifecycle::{Deleted, Voided};
    assert_eq!(lifecycles, [("101".into(), "voided".into(), Voided), ("102".into(), "voided".into(), Deleted)]);
    let query = fake.requests().into_iter().rfind(|r| r.endpoint == Endpoint::Query).unwrap();
    assert!(!query.param("query").unwrap().contains("'102'"), "a deleted entity is not fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdc_answer_cut_at_a_thousand_is_read_again_by_halved_windows_and_nothing_is_missed() {
    use invoiceflow::quickbooks::sync::sweep;
    let fake = FakeQuickBooks::start().await;
    fake.add_company(REALM);
    // 2,400 invoices changed over four hours, 10 a minute, one same-second burst of 1,000 among them.
    for n in 0..2400u32 {
        let minute = if (1000..2000).contains(&n) { 120 } else { n / 10 };
        fake.set_now(at("2026-11-25T05:00:00Z") + chrono::Duration::minutes(i64::from(minute)));
        fake.put(REALM, Kind::Invoice, invoice(&format!("{}", 10_000 + n), &format!("{}", 20_000 + n), "900.00"));
    }
    fake.set_now(at("2026-11-25T09:00:00Z"));
    let w = Watched::new(&fake).await;
    let swept = sweep(
        &w.watch("node-a"),
        w.companies.by_name(&"acme".parse().unwrap()).unwrap(),
        &w.clock("2026-11-25T09:01:00Z"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(swept.received[0], (invoiceflow_connectors::quickbooks::api::Entity::Invoice, 2400));
    assert_eq!(swept.applied.imported, 2400);
    assert!(swept.split_queries >= 3, "{swept:?}");
    assert_eq!(fake.count(Endpoint::Cdc), 1);
    let stored = w.store.invoices(&InvoiceQuery { limit: 5000, ..Default::default() }).await.unwrap();
    assert_eq!(stored.len(), 2400);
}
