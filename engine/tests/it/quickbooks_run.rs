//! `invoiceflow run` watching QuickBooks, end to end, as a child process against the fake
//! QuickBooks server: a signed webhook → the entity fetched → its status change recorded → a
//! change rule → a Slack post at a local HTTP receiver.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::fake_quickbooks::{Endpoint, FakeQuickBooks, InvoiceSpec, Kind, notification_body, sign};
use crate::support::{Engine, Receiver};

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");
const REALM: &str = "9341";
const VERIFIER: &str = "verifier-5b2e7d1c";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn invoice(id: &str, number: &str, balance: &str) -> Value {
    InvoiceSpec { id: Some(id), number: Some(number), amount: "900.00", balance, ..Default::default() }.json()
}

/// Posts a webhook `body` with `signature` to the engine; the status and the JSON answer.
async fn webhook(base: &str, signature: &str, body: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let answer = client
        .post(format!("{base}/v1/quickbooks/webhook"))
        .header("intuit-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Waits until the receiver got a body holding `text`, for at most `within`.
async fn wait_for_post(slack: &Receiver, text: &str, within: Duration) {
    let started = Instant::now();
    while !slack.bodies().iter().any(|b| b.contains(text)) {
        assert!(started.elapsed() < within, "no Slack post holding {text:?} within {within:?}: {:?}", slack.bodies());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `invoiceflow run` in `dir` (its `invoiceflow.toml`) at 12:00 on 2026-11-25, planning every
/// 10 minutes, with the webhook verifier and `env` in its environment.
fn run(dir: &std::path::Path, env: &[(&str, &str)]) -> Engine {
    let child = Engine::command(dir, "invoiceflow.toml", 600)
        .envs(env.iter().copied())
        .env("QBO_VERIFIER", VERIFIER)
        .env("INVOICEFLOW_API_TOKEN", "unused-here")
        .spawn()
        .unwrap();
    Engine::start(child).listening()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_fetched_applied_and_acted_on_once_and_a_bad_signature_stores_nothing() {
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at("2026-11-25T11:00:00Z"));
    fake.add_company(REALM);
    let token = fake.grant(REALM).access_token;
    fake.put(REALM, Kind::Invoice, invoice("101", "1101", "900.00"));
    fake.put(REALM, Kind::Invoice, invoice("102", "1102", "900.00"));
    let slack = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("invoiceflow.toml"),
        format!(
            "database_url = \"sqlite://invoiceflow.db\"\n[rules]\ndir = \"rules\"\n\n\
             [destinations.finance]\nslack = \"http://127.0.0.1:{}/services/T/B/X\"\nallow_private = true\n\n\
             [quickbooks.acme]\nrealm_id = \"{REALM}\"\napi_base = \"{}\"\naccess_token_env = \"QBO_TOKEN\"\n\
             webhook_verifier_env = \"QBO_VERIFIER\"\n",
            slack.port,
            fake.base_url()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/paid.toml"),
        "name = \"Paid\"\non = { change = \"status\", to = \"paid\" }\n\
         then = 'slack(\"finance\", `invoice ${invoice.number} paid`)'\n",
    )
    .unwrap();
    // Planning every 10 minutes: only the watcher waking the planner can explain a prompt post.
    let engine = run(dir.path(), &[("QBO_TOKEN", &token)]);
    // The sweep as the engine starts reads both invoices, open.
    engine.wait_for(&engine.stderr, "QuickBooks swept", Duration::from_secs(20));
    assert_eq!(fake.count(Endpoint::Cdc), 1);

    // Paid in QuickBooks; QuickBooks says so by webhook.
    fake.advance(chrono::Duration::minutes(1));
    fake.update(REALM, Kind::Invoice, "101", |i| i["Balance"] = json!(0));
    let body = notification_body(REALM, &[("Invoice", "101", "Update", "2026-11-25T11:01:00.000Z")]);
    // Signed by another token, or over another body: 401, and nothing stored.
    assert_eq!(webhook(&engine.base, &sign("another-verifier", body.as_bytes()), &body).await.0, 401);
    let tampered = body.replace("101", "102");
    assert_eq!(webhook(&engine.base, &sign(VERIFIER, body.as_bytes()), &tampered).await.0, 401);
    let database = format!("sqlite://{}", dir.path().join("invoiceflow.db").display());
    let pool = sqlx::SqlitePool::connect(&database).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM quickbooks_inbox").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 0);
    let taken = webhook(&engine.base, &sign(VERIFIER, body.as_bytes()), &body).await;
    assert_eq!(taken, (200, json!({"queued": 1, "ignored": 0})));
    wait_for_post(&slack, "invoice 1101 paid", Duration::from_secs(10)).await;
    assert_eq!(fake.count(Endpoint::Query), 1, "one fetch");

    // QuickBooks sends it again: kept once, fetched once, posted once. The next change, by
    // webhook, shows the duplicate was passed over: it is fetched alone (a duplicate queued
    // would have been fetched before it or with it).
    let again = webhook(&engine.base, &sign(VERIFIER, body.as_bytes()), &body).await;
    assert_eq!(again.0, 200);
    fake.advance(chrono::Duration::minutes(1));
    fake.update(REALM, Kind::Invoice, "102", |i| i["Balance"] = json!(0));
    let next = notification_body(REALM, &[("Invoice", "102", "Update", "2026-11-25T11:02:00.000Z")]);
    assert_eq!(webhook(&engine.base, &sign(VERIFIER, next.as_bytes()), &next).await.0, 200);
    wait_for_post(&slack, "invoice 1102 paid", Duration::from_secs(10)).await;
    assert_eq!(fake.count(Endpoint::Query), 2);
    let last = fake.requests().into_iter().rfind(|r| r.endpoint == Endpoint::Query).unwrap();
    let query = last.param("query").unwrap();
    assert!(query.contains("'102'") && !query.contains("'101'"), "{query}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM quickbooks_inbox").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 2, "the duplicate kept once");
    let posts = slack.bodies();
    assert_eq!(posts.iter().filter(|b| b.contains("invoice 1101 paid")).count(), 1, "{posts:?}");
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(fake.minorversion_missing().is_empty());

    let status = engine.terminate();
    assert!(status.success(), "a graceful stop: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_pauses_the_company_raises_one_alert_and_never_loops() {
    use invoiceflow::store::{QuickBooksStore, SqliteStore, Store, TokenPair};
    use invoiceflow_connectors::secret::SecretString;
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at("2026-11-25T11:30:00Z"));
    fake.add_company(REALM);
    fake.set_client("client-1", "secret-1");
    let grant = fake.grant(REALM);
    let slack = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("invoiceflow.toml"),
        format!(
            "database_url = \"sqlite://invoiceflow.db\"\n[alerts]\ndestination = \"finance\"\n\n\
             [destinations.finance]\nslack = \"http://127.0.0.1:{}/services/T/B/X\"\nallow_private = true\n\n\
             [quickbooks.acme]\nrealm_id = \"{REALM}\"\napi_base = \"{base}\"\noauth_base = \"{base}\"\n\
             client_id = \"client-1\"\nclient_secret_env = \"QBO_CLIENT_SECRET\"\nwebhook_verifier_env = \"QBO_VERIFIER\"\n",
            slack.port,
            base = fake.base_url()
        ),
    )
    .unwrap();
    // Connected earlier (as `quickbooks connect` leaves it); Intuit has since revoked the grant.
    let database = format!("sqlite://{}", dir.path().join("invoiceflow.db").display());
    let store = SqliteStore::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    let tokens = TokenPair {
        access_token: SecretString::new(grant.access_token),
        access_expires_at: at("2026-11-25T12:30:00Z"),
        refresh_token: SecretString::new(grant.refresh_token),
        refresh_expires_at: at("2027-03-01T00:00:00Z"),
    };
    let acme = invoiceflow_rules::AccountName::new("acme").unwrap();
    store.connect_company(&acme, REALM, &tokens, at("2026-11-25T11:30:00Z")).await.unwrap();
    fake.revoke_all(REALM);

    // The sweep as the engine starts: 401, one refresh, invalid_grant — the company needs
    // reconnecting and the alert goes out.
    let engine = run(dir.path(), &[("QBO_CLIENT_SECRET", "secret-1")]);
    wait_for_post(&slack, "QuickBooks company acme needs reconnecting", Duration::from_secs(15)).await;
    assert_eq!((fake.count(Endpoint::Token), fake.count(Endpoint::Cdc)), (1, 1));
    let status = Command::new(BIN)
        .args(["--config", "invoiceflow.toml", "quickbooks", "status", "--json"])
        .current_dir(dir.path())
        .env_remove("INVOICEFLOW_DATABASE_URL")
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        status["state"].as_str().unwrap().starts_with("NEEDS RECONNECT — Intuit refused the refresh token"),
        "{status}"
    );

    // Its traffic is paused: a webhook is queued and put off, without a call to Intuit.
    let body = notification_body(REALM, &[("Invoice", "7", "Update", "2026-11-25T11:59:00.000Z")]);
    assert_eq!(webhook(&engine.base, &sign(VERIFIER, body.as_bytes()), &body).await.0, 200);
    engine.wait_for(&engine.stderr, "QuickBooks notifications put off", Duration::from_secs(10));
    assert_eq!((fake.count(Endpoint::Token), fake.count(Endpoint::Query)), (1, 0), "{:?}", fake.requests());
    let posts = slack.bodies();
    assert_eq!(posts.len(), 1, "one alert: {posts:?}");
    assert!(posts[0].contains("invoiceflow quickbooks connect acme"), "{posts:?}");
    let status = engine.terminate();
    assert!(status.success(), "a graceful stop: {status:?}");
}
