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
