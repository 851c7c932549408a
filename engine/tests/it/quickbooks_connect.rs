//! Connecting a company against the fake QuickBooks: `invoiceflow quickbooks connect` as an admin
//! runs it (the test plays the browser: it opens the consent address, which the fake approves or
//! declines, and follows the redirect to the command's local callback), its refusals, and then
//! the tokens' life through `TokenKeeper` and `Watch::call`: refreshed before they expire and
//! after a 401, rotated refresh tokens kept, `invalid_grant` pausing the company without a retry
//! loop until it is connected again.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use chrono::{DateTime, Duration, Utc};
use invoiceflow::config::Config;
use invoiceflow::quickbooks::connect::{self, Connecting};
use invoiceflow::quickbooks::tokens::TokenKeeper;
use invoiceflow::quickbooks::{Companies, Watch, WatchError};
use invoiceflow::store::{ConnectionState, QuickBooksStore, SqliteStore, Store};
use invoiceflow_connectors::quickbooks::api::CompanyApi;
use invoiceflow_connectors::quickbooks::limits::Limiter;
use invoiceflow_connectors::quickbooks::oauth::OAuthError;
use invoiceflow_rules::AccountName;
use serde_json::Value;

use crate::fake_quickbooks::{Endpoint, FakeQuickBooks};

const BIN: &str = env!("CARGO_BIN_EXE_invoiceflow");
const REALM: &str = "9341";
const NOW: &str = "2026-11-25T09:00:00Z";
const CLIENT_ID: &str = "acme-app";
const CLIENT_SECRET: &str = "acme-app-secret";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// Where the app's client secret is read from.
#[derive(Clone, Copy)]
enum Secret {
    /// `QBO_CLIENT_SECRET`, set on the command only (tests share this process's environment).
    Env,
    /// A file beside the configuration.
    File,
}

/// A port on 127.0.0.1 nobody listens on (for the redirect URI).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The fake at [`NOW`] with company [`REALM`] and the app's client, approving as [`REALM`].
async fn fake() -> FakeQuickBooks {
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at(NOW));
    fake.add_company(REALM);
    fake.set_client(CLIENT_ID, CLIENT_SECRET);
    fake.approve_as(REALM);
    fake
}

/// A configuration for company `acme` connecting through the fake, its browser sent back to
/// `redirect_uri`.
fn config(dir: &Path, fake: &FakeQuickBooks, redirect_uri: &str, secret: Secret) -> PathBuf {
    let secret = match secret {
        Secret::Env => "client_secret_env = \"QBO_CLIENT_SECRET\"".to_owned(),
        Secret::File => {
            std::fs::write(dir.join("client-secret"), CLIENT_SECRET).unwrap();
            "client_secret_file = \"client-secret\"".to_owned()
        }
    };
    let path = dir.join("invoiceflow.toml");
    std::fs::write(
        &path,
        format!(
            "database_url = \"sqlite://{}\"\n[quickbooks.acme]\nrealm_id = \"{REALM}\"\napi_base = \"{base}\"\n\
             oauth_base = \"{base}\"\nclient_id = \"{CLIENT_ID}\"\n{secret}\nredirect_uri = \"{redirect_uri}\"\n",
            dir.join("t.db").display(),
            base = fake.base_url(),
        ),
    )
    .unwrap();
    path
}

fn local_redirect() -> String {
    format!("http://127.0.0.1:{}/callback", free_port())
}

/// A browser that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    invoiceflow_connectors::http::client(true).unwrap()
}

/// Opens `url` (the consent page on the fake) and returns where the fake sends the browser.
async fn consent(url: &str) -> String {
    let answer = browser().get(url).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{url}");
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// Opens `url` and returns the status and the page.
async fn open(url: &str) -> (u16, String) {
    let answer = browser().get(url).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// `invoiceflow quickbooks connect …` as an admin runs it, its output read as it comes.
struct Connect {
    child: Child,
    stdout: BufReader<ChildStdout>,
    printed: String,
}

impl Connect {
    fn start(config: &Path, args: &[&str]) -> Connect {
        let mut child = Command::new(BIN)
            .args(["--config", &config.to_string_lossy(), "--now", NOW, "quickbooks", "connect"])
            .args(args)
            .env("QBO_CLIENT_SECRET", CLIENT_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Connect { child, stdout, printed: String::new() }
    }

    /// Reads the output up to the consent address, and returns it.
    async fn url(mut self) -> (Connect, String) {
        tokio::task::spawn_blocking(move || {
            loop {
                let mut line = String::new();
                assert!(self.stdout.read_line(&mut line).unwrap() > 0, "no address printed: {}", self.printed);
                self.printed.push_str(&line);
                if line.trim().starts_with("http") {
                    let url = line.trim().to_owned();
                    return (self, url);
                }
            }
        })
        .await
        .unwrap()
    }

    /// Waits for the command to end: its exit code, everything it printed, and its errors.
    async fn end(mut self) -> (Option<i32>, String, String) {
        tokio::task::spawn_blocking(move || {
            self.stdout.read_to_string(&mut self.printed).unwrap();
            let mut errors = String::new();
            self.child.stderr.take().unwrap().read_to_string(&mut errors).unwrap();
            let status = self.child.wait().unwrap();
            (status.code(), self.printed, errors)
        })
        .await
        .unwrap()
    }
}

/// `invoiceflow ARGS` with the configuration, to its end.
fn run(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["--config", &config.to_string_lossy(), "--now", NOW])
        .args(args)
        .env("QBO_CLIENT_SECRET", CLIENT_SECRET)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `quickbooks status --json` of company acme.
fn status(config: &Path) -> Value {
    let (code, out, err) = run(config, &["quickbooks", "status", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    serde_json::from_str(out.lines().next().unwrap()).unwrap()
}

async fn store(dir: &Path) -> SqliteStore {
    let store = SqliteStore::connect(&format!("sqlite://{}", dir.join("t.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn acme() -> AccountName {
    AccountName::new("acme").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_stores_the_tokens_the_consent_brought_and_status_shows_connected() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let redirect = local_redirect();
    let config = config(dir.path(), &fake, &redirect, Secret::Env);

    let (connect, url) = Connect::start(&config, &["acme", "--timeout", "60"]).url().await;
    assert!(url.starts_with(&format!("{}?client_id={CLIENT_ID}&", fake.authorize_url())), "{url}");
    let sent = reqwest::Url::parse(&url).unwrap();
    let param = |name: &str| sent.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("redirect_uri").as_deref(), Some(redirect.as_str()));
    assert!(param("state").is_some_and(|s| s.len() >= 32), "{url}");
    assert!(connect.printed.contains("connect acme (realm 9341)"), "{}", connect.printed);

    // The browser asks for other things on the way: they are not the answer.
    let favicon = redirect.replace("/callback", "/favicon.ico");
    assert_eq!(open(&favicon).await.0, 404);

    let back = consent(&url).await;
    assert!(back.starts_with(&format!("{redirect}?code=")), "{back}");
    let (status_code, page) = open(&back).await;
    assert_eq!(status_code, 200, "{page}");
    assert!(page.contains("Connected — you can close this tab"), "{page}");

    let (code, out, err) = connect.end().await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("acme (realm 9341): connected; tokens stored; access token valid until 2026-11-25 10:00:"),
        "{out}"
    );
    assert_eq!((fake.count(Endpoint::Authorize), fake.count(Endpoint::Token)), (1, 1));
    assert_eq!(status(&config)["state"], "connected");

    // The stored pair is the one the fake issued: its access token opens the company's API.
    let connection = store(dir.path()).await.connections().await.unwrap().remove(0);
    assert_eq!((connection.company, connection.realm_id.as_str()), (acme(), REALM));
    assert_eq!(connection.state, ConnectionState::Connected);
    let tokens = connection.tokens.unwrap();
    assert!(tokens.access_expires_at >= at("2026-11-25T10:00:00Z"));
    assert!(tokens.refresh_expires_at > at("2027-02-01T00:00:00Z"));
    let api = CompanyApi::new(REALM, &fake.base_url(), Limiter::default()).unwrap();
    api.query(&browser(), &tokens.access_token, "select * from Invoice").await.unwrap();
}

/// Runs `connect acme`, sends the browser to `back(where the fake's consent page sends it)`,
/// and returns the page, then the command's exit code and errors; asserts nothing was stored.
async fn refused(fake: &FakeQuickBooks, back: impl AsyncFnOnce(String) -> String) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), fake, &local_redirect(), Secret::Env);
    let (connect, url) = Connect::start(&config, &["acme", "--timeout", "60"]).url().await;
    let (status_code, page) = open(&back(consent(&url).await).await).await;
    let (code, out, err) = connect.end().await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(!out.contains("connected;"), "{out}");
    assert!(store(dir.path()).await.connections().await.unwrap().is_empty());
    assert_eq!(fake.count(Endpoint::Token), 0, "no code exchanged");
    assert_eq!(status(&config)["state"], "not connected");
    (status_code, page, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_another_state_is_refused_and_nothing_is_stored() {
    let fake = fake().await;
    let (status_code, page, err) = refused(&fake, async |back| {
        let state =
            reqwest::Url::parse(&back).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
        back.replace(&format!("state={state}"), "state=forged")
    })
    .await;
    assert_eq!(status_code, 400, "{page}");
    assert!(page.contains("Not connected") && page.contains("state"), "{page}");
    assert!(err.contains("came back with a state that is not this command's"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_for_another_company_is_refused_naming_both_realms() {
    let fake = fake().await;
    fake.add_company("5555");
    fake.approve_as("5555");
    let (status_code, page, err) = refused(&fake, async |back| back).await;
    assert_eq!(status_code, 400, "{page}");
    assert!(
        err.contains("the consent was for QuickBooks company 5555, but [quickbooks.acme] has realm_id 9341"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_consent_says_access_was_denied() {
    let fake = FakeQuickBooks::start().await;
    fake.set_now(at(NOW));
    fake.add_company(REALM);
    fake.set_client(CLIENT_ID, CLIENT_SECRET);
    // No approve_as: the admin clicks Cancel on Intuit's page.
    let (status_code, page, err) = refused(&fake, async |back| {
        assert!(back.contains("error=access_denied"), "{back}");
        back
    })
    .await;
    assert_eq!(status_code, 400, "{page}");
    assert!(page.contains("access was denied"), "{page}");
    assert!(err.contains("access was denied on Intuit's consent page (access_denied): nothing stored"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_names_the_missing_key_explains_a_remote_redirect_and_gives_up_after_its_timeout() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &fake, &local_redirect(), Secret::Env);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = |from: &str, to: &str| {
        let config = dir.path().join("edited.toml");
        std::fs::write(&config, text.replace(from, to)).unwrap();
        config
    };

    // No Intuit app: the key to add is named.
    let no_app = edited(&format!("client_id = \"{CLIENT_ID}\"\nclient_secret_env = \"QBO_CLIENT_SECRET\"\n"), "");
    let (code, _, err) = run(&no_app, &["quickbooks", "connect", "acme"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("quickbooks.acme.client_id is not set"), "{err}");
    let (code, _, err) = run(&no_app, &["quickbooks", "connect"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no [quickbooks.NAME] has a client_id"), "{err}");
    let (_, _, err) = run(&no_app, &["quickbooks", "connect", "globex"]);
    assert!(err.contains("no [quickbooks.globex] in"), "{err}");

    // A client id without its secret, and a secret that is not there.
    let no_secret = edited("client_secret_env = \"QBO_CLIENT_SECRET\"\n", "");
    let (code, _, err) = run(&no_secret, &["quickbooks", "connect", "acme"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("quickbooks.acme.client_secret_env"), "{err}");
    let unset = edited("QBO_CLIENT_SECRET", "QBO_UNSET_SECRET");
    let (code, _, err) = run(&unset, &["quickbooks", "connect", "acme"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("quickbooks.acme.client_secret_env: the environment variable QBO_UNSET_SECRET"), "{err}");

    // A redirect URI elsewhere: the address, and how to paste what Intuit sends there.
    let remote = edited("redirect_uri = \"http://127.0.0.1:", "redirect_uri = \"https://invoiceflow.example:");
    let (code, out, err) = run(&remote, &["quickbooks", "connect", "acme"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("  {}?client_id=", fake.authorize_url())), "{out}");
    assert!(out.contains("invoiceflow quickbooks connect acme --code CODE --realm-id REALM_ID"), "{out}");

    // Nobody comes back.
    let (code, _, err) = run(&path, &["quickbooks", "connect", "--timeout", "1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no answer from Intuit within 1 s"), "{err}");
    assert_eq!(fake.count(Endpoint::Token), 0);
}

/// Company acme connected through the fake at [`NOW`], watched by the library as `invoiceflow
/// run` will watch it.
struct Watched {
    fake: FakeQuickBooks,
    _dir: tempfile::TempDir,
    config: PathBuf,
    store: SqliteStore,
    companies: Companies,
    client: reqwest::Client,
    keeper: TokenKeeper,
}

impl Watched {
    async fn connected() -> Watched {
        let fake = fake().await;
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &fake, &local_redirect(), Secret::File);
        let loaded = Config::load(Some(&config)).unwrap();
        let companies = Companies::from_config(&loaded).unwrap();
        let watched = Watched {
            store: store(dir.path()).await,
            fake,
            _dir: dir,
            config,
            companies,
            client: browser(),
            keeper: TokenKeeper::default(),
        };
        // The consent, through the library: what the browser brings back is read and finished.
        let company = Connecting::from_config(&loaded, Some(&acme())).unwrap();
        let back = consent(company.app.authorization_url("s1").as_str()).await;
        let consent = connect::read_redirect(reqwest::Url::parse(&back).unwrap().query().unwrap(), "s1").unwrap();
        connect::finish(&watched.store, &watched.client, &company, &consent, at(NOW)).await.unwrap();
        watched
    }

    /// Lists invoices of acme through `Watch::call` at `now` (the fake's clock set to it too).
    async fn call(&self, now: DateTime<Utc>) -> Result<Value, WatchError> {
        self.fake.set_now(now);
        let watch = Watch { store: &self.store, client: &self.client, keeper: &self.keeper, node: "node-a" };
        let company = self.companies.by_name(&acme()).unwrap();
        watch
            .call(company, now, |token| async move {
                company.api.query(&self.client, &token, "select * from Invoice").await
            })
            .await
    }

    async fn connection(&self) -> invoiceflow::store::Connection {
        self.store.connections().await.unwrap().remove(0)
    }

    /// Token endpoint and query calls so far.
    fn counts(&self) -> (usize, usize) {
        (self.fake.count(Endpoint::Token), self.fake.count(Endpoint::Query))
    }
}

fn later(minutes: i64) -> DateTime<Utc> {
    at(NOW) + Duration::minutes(minutes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_near_expiry_are_refreshed_before_use_and_a_401_costs_exactly_one_refresh() {
    let w = Watched::connected().await;
    assert_eq!(w.counts(), (1, 0), "the code exchange");

    // Fresh: used as it is.
    w.call(later(10)).await.unwrap();
    assert_eq!(w.counts(), (1, 1));

    // Three minutes left: refreshed first, then used once.
    w.call(later(57)).await.unwrap();
    assert_eq!(w.counts(), (2, 2));
    let tokens = w.connection().await.tokens.unwrap();
    assert_eq!(tokens.access_expires_at, later(57 + 60));

    // QuickBooks no longer takes it although it should live: one refresh, one more try, done.
    w.fake.expire_access_tokens();
    w.call(later(60)).await.unwrap();
    assert_eq!(w.counts(), (3, 4));
    assert_eq!(w.connection().await.state, ConnectionState::Connected);
    w.call(later(61)).await.unwrap();
    assert_eq!(w.counts(), (3, 5), "the new token serves on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_replaces_the_old_one_which_is_never_used_again() {
    let w = Watched::connected().await;
    w.fake.rotate_refresh_tokens(true);
    let first = w.connection().await.tokens.unwrap().refresh_token;

    w.call(later(58)).await.unwrap();
    let second = w.connection().await.tokens.unwrap().refresh_token;
    assert_ne!(second, first, "the rotated token is what the store holds");
    let app = w.companies.by_name(&acme()).unwrap().oauth.as_ref().unwrap();
    assert!(matches!(app.refresh(&w.client, &first, later(59)).await, Err(OAuthError::InvalidGrant { .. })));

    // The next refresh goes with the rotated token (the old one would be invalid_grant).
    let before = w.counts().0;
    w.call(later(58 + 58)).await.unwrap();
    assert_eq!(w.counts().0, before + 1, "one refresh");
    let connection = w.connection().await;
    assert_eq!(connection.state, ConnectionState::Connected);
    let third = connection.tokens.unwrap().refresh_token;
    assert!(third != second && third != first);

    // Without rotation, Intuit hands back the same refresh token, and it is kept.
    w.fake.rotate_refresh_tokens(false);
    w.call(later(58 * 3)).await.unwrap();
    assert_eq!(w.connection().await.tokens.unwrap().refresh_token, third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_pauses_the_company_without_retrying_until_it_is_connected_again() {
    let w = Watched::connected().await;
    w.call(later(5)).await.unwrap();
    assert_eq!(w.counts(), (1, 1));

    // The admin disconnected the app in QuickBooks: 401, one refresh refused, then nothing more.
    w.fake.revoke_all(REALM);
    let e = w.call(later(6)).await.unwrap_err();
    assert!(matches!(&e, WatchError::NeedsReconnect { reason, .. } if reason.contains("invalid_grant")), "{e}");
    assert_eq!(w.counts(), (2, 2));
    let connection = w.connection().await;
    assert_eq!(connection.state, ConnectionState::NeedsReconnect);
    assert!(connection.reason.as_deref().is_some_and(|r| r.contains("invalid_grant")), "{connection:?}");
    assert_eq!(connection.tokens, None);
    for minutes in [7, 8, 30, 61, 180] {
        let e = w.call(later(minutes)).await.unwrap_err();
        assert!(matches!(e, WatchError::NeedsReconnect { .. }), "{e}");
    }
    assert_eq!(w.counts(), (2, 2), "neither Intuit nor QuickBooks asked again");
    let state = status(&w.config)["state"].as_str().unwrap().to_owned();
    assert!(state.starts_with("NEEDS RECONNECT") && state.contains("invalid_grant"), "{state}");

    // The admin connects again, pasting what Intuit sent (`--code`, `--realm-id`): traffic flows.
    w.fake.set_now(later(200));
    let company = Connecting::from_config(&Config::load(Some(&w.config)).unwrap(), None).unwrap();
    let back = consent(company.app.authorization_url("s2").as_str()).await;
    let code = reqwest::Url::parse(&back).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let when = later(200).to_rfc3339();
    let out = Command::new(BIN)
        .args(["--config", &w.config.to_string_lossy(), "--now", &when, "quickbooks", "connect"])
        .args(["--code", &code, "--realm-id", REALM])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("acme (realm 9341): connected; tokens stored; access token valid until 2026-11-25 13:20:"));
    assert_eq!(w.connection().await.state, ConnectionState::Connected);
    assert_eq!(status(&w.config)["state"], "connected");
    w.call(later(201)).await.unwrap();
    assert_eq!(w.counts(), (3, 3), "the exchange, then the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_invoice_goes_out_with_the_stored_token_refreshed_after_a_401_and_waits_for_a_reconnect() {
    use invoiceflow::quickbooks::send::InvoiceSender;
    use invoiceflow_connectors::{Attempted, Connector as _, Delivery};
    use invoiceflow_rules::script::{Action, Cause, Intent};
    use invoiceflow_rules::{RecordId, RecordKey, RecordKind};
    let w = Watched::connected().await;
    let id =
        w.fake.put(REALM, crate::fake_quickbooks::Kind::Invoice, crate::fake_quickbooks::InvoiceSpec::default().json());
    let key = RecordKey::new(RecordKind::Invoice, acme(), RecordId::new(id.as_str()).unwrap());
    let intent = Intent {
        rule: "send-on-approval".into(),
        version: "1".into(),
        cause: Cause::Manual,
        record: key.clone().into(),
        seen: Default::default(),
        action: Action::SendInvoice { invoice: key, to: Some("ap@example.com".into()) },
    };
    let sender = InvoiceSender {
        watch: Watch { store: &w.store, client: &w.client, keeper: &w.keeper, node: "node-a" },
        companies: &w.companies,
    };
    let (intent, sender, fake) = (&intent, &sender, &w.fake);
    let send = |minutes: i64| async move {
        fake.set_now(later(minutes));
        sender.deliver(&Delivery { key: "d-1", intent, attempt: 1, at: later(minutes) }).await
    };

    // QuickBooks no longer takes the access token: one refresh, and the invoice goes out.
    w.fake.expire_access_tokens();
    assert_eq!(send(10).await, Attempted::Delivered);
    assert_eq!((w.fake.count(Endpoint::Token), w.fake.count(Endpoint::Send)), (2, 2));
    let sent = w.fake.requests().into_iter().rfind(|r| r.endpoint == Endpoint::Send).unwrap();
    assert_eq!(sent.param("sendTo").as_deref(), Some("ap@example.com"));
    assert!(sent.param("minorversion").is_some());
    assert_eq!(w.fake.get(REALM, crate::fake_quickbooks::Kind::Invoice, &id).unwrap()["EmailStatus"], "EmailSent");

    // The grant revoked: the delivery fails naming the command that fixes it; Intuit is asked once.
    w.fake.revoke_all(REALM);
    let Attempted::Permanent { detail, .. } = send(20).await else { panic!("a permanent failure") };
    assert!(detail.contains("invoiceflow quickbooks connect acme"), "{detail}");
    assert!(matches!(send(21).await, Attempted::Permanent { .. }));
    assert_eq!((w.fake.count(Endpoint::Token), w.fake.count(Endpoint::Send)), (3, 3));
}
