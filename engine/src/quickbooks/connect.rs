//! Connecting a company (`invoiceflow quickbooks connect`): Intuit's OAuth 2 consent, run from
//! the admin's machine. invoiceflow prints Intuit's consent address with a random `state`,
//! listens once on the redirect URI (`http://localhost:PORT/PATH`, [`CallbackServer`]), checks
//! what the browser comes back with — the `state` (against cross-site request forgery), a
//! refusal, the company's realm id ([`read_redirect`]) — exchanges the code for tokens and stores
//! them, connected ([`finish`]); the browser gets a short page saying how it ended. A redirect URI
//! elsewhere cannot be listened on: the admin pastes the `code` and `realmId` Intuit sent there,
//! and [`finish`] does the rest.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Html;
use chrono::{DateTime, Utc};
use invoiceflow_connectors::quickbooks::oauth::{OAuthApp, OAuthError, Tokens};
use invoiceflow_rules::AccountName;
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;

use super::{WatchError, oauth_app};
use crate::clock::RunningClock;
use crate::config::Config;
use crate::store::StoreError;
use crate::store::quickbooks::QuickBooksStore;

/// How long the browser's page may take to leave once answered, before the server is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Text from the network shown to the admin is cut to this many characters.
const SHOWN: usize = 200;

/// A company about to be connected: its name, its realm id and the Intuit app that connects it.
#[derive(Debug, Clone)]
pub struct Connecting {
    /// Its `[quickbooks.NAME]`.
    pub account: AccountName,
    /// The realm id configured for it: the consent must be for this company.
    pub realm_id: String,
    /// The Intuit app, its client secret read.
    pub app: OAuthApp,
}

impl Connecting {
    /// The company `account` of `config` — by default the only one with an Intuit app
    /// (`client_id`) — with its client secret read now.
    ///
    /// # Errors
    /// [`ConnectError::Choose`] when the company is unknown, has no `client_id`, or none was
    /// named and not exactly one can be connected; [`ConnectError::Config`] naming the key whose
    /// secret cannot be read or whose URL is wrong.
    pub fn from_config(config: &Config, account: Option<&AccountName>) -> Result<Self, ConnectError> {
        let choose = |message: String| ConnectError::Choose(message);
        let with_app: Vec<&AccountName> =
            config.quickbooks_api.iter().filter(|(_, api)| api.oauth.is_some()).map(|(name, _)| name).collect();
        let account = match (account, with_app.as_slice()) {
            (Some(account), _) => account,
            (None, [only]) => *only,
            (None, []) => {
                return Err(choose(
                    "no [quickbooks.NAME] has a client_id: give the company its realm_id, and the client_id and \
                     client_secret_env (or client_secret_file) of your Intuit app"
                        .into(),
                ));
            }
            (None, several @ [first, ..]) => {
                let names: Vec<&str> = several.iter().map(|a| a.as_str()).collect();
                return Err(choose(format!(
                    "several companies can be connected ({}): name one, e.g. `invoiceflow quickbooks connect {first}`",
                    names.join(", ")
                )));
            }
        };
        let api = config.quickbooks_api.get(account);
        let Some((api, oauth)) = api.and_then(|api| api.oauth.as_ref().map(|o| (api, o))) else {
            return Err(choose(if config.companies.is_configured(account) {
                format!(
                    "quickbooks.{account}.client_id is not set: set client_id and client_secret_env (or \
                     client_secret_file) to your Intuit app's keys to connect {account}"
                )
            } else {
                format!("no [quickbooks.{account}] in {}", config.path.display())
            }));
        };
        let app = oauth_app(account, oauth).map_err(|e| match e {
            WatchError::Config { key, reason } => ConnectError::Config { key, reason },
            other => ConnectError::Config { key: format!("quickbooks.{account}"), reason: other.to_string() },
        })?;
        Ok(Self { account: account.clone(), realm_id: api.realm_id.clone(), app })
    }
}

/// A fresh random `state` for the consent address: 24 bytes from the operating system, in hex.
///
/// # Errors
/// [`ConnectError::Random`] when the operating system has no randomness to give.
pub fn random_state() -> Result<String, ConnectError> {
    let mut bytes = [0_u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| ConnectError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where Intuit's answer arrives when the redirect URI is on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRedirect {
    /// The address to listen on (loopback).
    pub addr: SocketAddr,
    /// The path the browser comes back to (`/callback`).
    pub path: String,
}

impl LocalRedirect {
    /// Where to listen for `redirect_uri` when it is plain `http://` on `localhost`, `127.0.0.1`
    /// or `[::1]` (the port defaulting to 80); `None` otherwise: the answer then goes elsewhere.
    pub fn of(redirect_uri: &url::Url) -> Option<Self> {
        if redirect_uri.scheme() != "http" {
            return None;
        }
        let ip = match redirect_uri.host()? {
            url::Host::Domain(name) if name.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            url::Host::Ipv4(ip) if ip.is_loopback() => IpAddr::V4(ip),
            url::Host::Ipv6(ip) if ip.is_loopback() => IpAddr::V6(ip),
            _ => return None,
        };
        let port = redirect_uri.port_or_known_default()?;
        Some(Self { addr: SocketAddr::new(ip, port), path: redirect_uri.path().to_owned() })
    }
}

/// What Intuit sent the browser back with, once checked: the code to exchange, for this company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The authorization code (single use, valid minutes).
    pub code: String,
    /// The company the admin approved (`realmId`).
    pub realm_id: String,
}

/// Reads the query string the browser came back with (`code=…&state=…&realmId=…`, or
/// `error=access_denied&state=…`), checking its `state` against the one sent first.
///
/// # Errors
/// [`ConnectError::StateMismatch`] before anything else is read; [`ConnectError::Denied`] when
/// the admin declined, [`ConnectError::Refused`] for another error from Intuit,
/// [`ConnectError::Incomplete`] without a code or realm id.
pub fn read_redirect(query: &str, state: &str) -> Result<Consent, ConnectError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let sent = get("state").unwrap_or_default();
    if !bool::from(sent.as_bytes().ct_eq(state.as_bytes())) {
        return Err(ConnectError::StateMismatch);
    }
    if let Some(error) = get("error") {
        return Err(match error {
            "access_denied" => ConnectError::Denied,
            other => ConnectError::Refused {
                error: shown(other),
                description: get("error_description").map(shown).unwrap_or_default(),
            },
        });
    }
    let code = get("code").ok_or(ConnectError::Incomplete("code"))?;
    let realm_id = get("realmId").ok_or(ConnectError::Incomplete("realmId"))?;
    Ok(Consent { code: code.to_owned(), realm_id: realm_id.to_owned() })
}

/// Network text fit to show: no control characters, at most [`SHOWN`] characters.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(SHOWN).collect()
}

/// Connects `company` with the `consent` Intuit gave: checks that it is for the configured realm
/// (nothing is exchanged or stored otherwise), exchanges the code for tokens obtained at `now`,
/// and stores them, connected — whatever the company's state was.
///
/// # Errors
/// [`ConnectError::RealmMismatch`], [`ConnectError::Exchange`] (Intuit refused the code or did
/// not answer), [`ConnectError::Store`].
pub async fn finish<S: QuickBooksStore>(
    store: &S,
    client: &reqwest::Client,
    company: &Connecting,
    consent: &Consent,
    now: DateTime<Utc>,
) -> Result<Tokens, ConnectError> {
    if consent.realm_id != company.realm_id {
        return Err(ConnectError::RealmMismatch {
            company: company.account.clone(),
            configured: company.realm_id.clone(),
            approved: shown(&consent.realm_id),
        });
    }
    let tokens = company.app.exchange_code(client, &consent.code, now).await?;
    store.connect_company(&company.account, &company.realm_id, &tokens, now).await?;
    tracing::info!(company = %company.account, expires = %tokens.access_expires_at, "QuickBooks company connected");
    Ok(tokens)
}

/// Waits on `server` (up to `timeout`) for the browser Intuit sends back, reads its answer
/// against `state`, [`finish`]es at the clock's time of its arrival, and answers the browser
/// with a page saying how it ended.
///
/// # Errors
/// [`ConnectError::TimedOut`], and those of [`read_redirect`] and [`finish`].
pub async fn by_browser<S: QuickBooksStore>(
    store: &S,
    client: &reqwest::Client,
    company: &Connecting,
    server: CallbackServer,
    state: &str,
    timeout: Duration,
    clock: &RunningClock,
) -> Result<Tokens, ConnectError> {
    let visit = server.wait(timeout).await?;
    let outcome = match read_redirect(&visit.query, state) {
        Ok(consent) => finish(store, client, company, &consent, clock.clock().now.instant()).await,
        Err(e) => Err(e),
    };
    visit.answer(Page::of(company, &outcome)).await;
    outcome
}

/// The page the browser is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    status: StatusCode,
    html: String,
}

impl Page {
    /// How `outcome` reads in the browser: "Connected — you can close this tab", or why not.
    fn of(company: &Connecting, outcome: &Result<Tokens, ConnectError>) -> Self {
        match outcome {
            Ok(_) => Self::new(
                StatusCode::OK,
                "Connected — you can close this tab",
                &format!("{} (realm {}) is connected to invoiceflow.", company.account, company.realm_id),
            ),
            Err(ConnectError::Store(_)) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not connected",
                "invoiceflow could not store the tokens: its output says why.",
            ),
            Err(e @ ConnectError::Exchange(_)) => Self::new(StatusCode::BAD_GATEWAY, "Not connected", &e.to_string()),
            Err(e) => Self::new(StatusCode::BAD_REQUEST, "Not connected", &e.to_string()),
        }
    }

    fn new(status: StatusCode, title: &str, message: &str) -> Self {
        let (title, message) = (escape(title), escape(message));
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>invoiceflow: {title}</title></head>\n\
             <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{message}</p></body></html>\n"
        );
        Self { status, html }
    }
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The one-shot web server on a local redirect URI: the first `GET` of its path is the browser
/// coming back from Intuit; any other request is answered 404 (a browser asks for
/// `/favicon.ico`), and a second visit of the path 409.
#[derive(Debug)]
pub struct CallbackServer {
    addr: SocketAddr,
    arrival: oneshot::Receiver<Arrival>,
    serving: Serving,
}

/// The browser's visit of the redirect path, waiting for its page.
#[derive(Debug)]
pub struct Visit {
    /// The query string it came with.
    pub query: String,
    reply: oneshot::Sender<Page>,
    serving: Serving,
}

impl Visit {
    /// Answers the browser with `page`, then stops the server once the page is sent (or after a
    /// few seconds).
    pub async fn answer(self, page: Page) {
        // The browser may have gone: the page then has no one to read it.
        let _ = self.reply.send(page);
        self.serving.stop().await;
    }
}

/// What the handler hands over: the query, and where its page goes.
#[derive(Debug)]
struct Arrival {
    query: String,
    reply: oneshot::Sender<Page>,
}

/// The server task and how to stop it.
#[derive(Debug)]
struct Serving {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    /// Stops accepting, lets the answers in progress go out for up to [`CLOSE_GRACE`], then
    /// drops what remains.
    async fn stop(self) {
        let _ = self.stop.send(());
        let abort = self.task.abort_handle();
        match tokio::time::timeout(CLOSE_GRACE, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the callback server failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the callback server's task failed"),
            Err(_) => abort.abort(),
        }
    }
}

/// What the handler shares: the path, and where the first visit goes.
#[derive(Clone)]
struct Callback {
    path: Arc<str>,
    arrival: Arc<Mutex<Option<oneshot::Sender<Arrival>>>>,
}

impl CallbackServer {
    /// Listens on `redirect`'s address (before the admin is sent anywhere, so that a port in use
    /// shows at once).
    ///
    /// # Errors
    /// [`ConnectError::Listen`] when the address cannot be bound.
    pub async fn bind(redirect: &LocalRedirect) -> Result<Self, ConnectError> {
        let listen = |source| ConnectError::Listen { addr: redirect.addr, source };
        let listener = tokio::net::TcpListener::bind(redirect.addr).await.map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        let (send, arrival) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let callback = Callback { path: Arc::from(redirect.path.as_str()), arrival: Arc::new(Mutex::new(Some(send))) };
        let router = Router::new().fallback(visit).with_state(callback);
        let task = tokio::spawn(crate::server::serve(listener, router, async move {
            // The sender dropped without a word also stops it.
            let _ = stopped.await;
        }));
        Ok(Self { addr, arrival, serving: Serving { stop, task } })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The browser's visit, within `timeout`.
    ///
    /// # Errors
    /// [`ConnectError::TimedOut`] (the server then stops), [`ConnectError::Stopped`] when the
    /// server ended before.
    pub async fn wait(self, timeout: Duration) -> Result<Visit, ConnectError> {
        let Self { arrival, serving, .. } = self;
        match tokio::time::timeout(timeout, arrival).await {
            Ok(Ok(Arrival { query, reply })) => Ok(Visit { query, reply, serving }),
            Ok(Err(_)) => {
                serving.stop().await;
                Err(ConnectError::Stopped)
            }
            Err(_) => {
                serving.stop().await;
                Err(ConnectError::TimedOut { seconds: timeout.as_secs() })
            }
        }
    }
}

/// Every request: the first `GET` of the redirect path waits for its page; the rest are 404/409.
async fn visit(State(callback): State<Callback>, method: Method, uri: Uri) -> (StatusCode, Html<String>) {
    let refuse = |status, title: &str, message: &str| {
        let page = Page::new(status, title, message);
        (page.status, Html(page.html))
    };
    if method != Method::GET || uri.path() != &*callback.path {
        return refuse(StatusCode::NOT_FOUND, "Not found", "This is not the address Intuit sends the browser back to.");
    }
    let Some(send) = callback.arrival.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        return refuse(StatusCode::CONFLICT, "Already answered", "invoiceflow has already read Intuit's answer.");
    };
    let (reply, page) = oneshot::channel();
    if send.send(Arrival { query: uri.query().unwrap_or_default().to_owned(), reply }).is_err() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "Not connected", "invoiceflow stopped waiting.");
    }
    match page.await {
        Ok(page) => (page.status, Html(page.html)),
        Err(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "Not connected", "invoiceflow stopped: its output says why."),
    }
}

/// Why a company was not connected.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Which company to connect is not clear, or it cannot be connected: the message says what
    /// to write.
    #[error("{0}")]
    Choose(String),
    /// A configuration key is wrong or its secret unreadable.
    #[error("{key}: {reason}")]
    Config {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The operating system gave no randomness for the `state`.
    #[error("cannot draw a random state: {0}")]
    Random(String),
    /// The redirect URI's address cannot be listened on.
    #[error("cannot listen on {addr} for the redirect URI (is another `invoiceflow quickbooks connect` running?)")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No browser came back in time.
    #[error(
        "no answer from Intuit within {seconds} s: run the command again and approve in the browser sooner (or raise --timeout)"
    )]
    TimedOut {
        /// The wait.
        seconds: u64,
    },
    /// The callback server ended before the browser came back.
    #[error("the callback server stopped before the browser came back")]
    Stopped,
    /// The browser came back with another `state` than the one sent: not the consent this
    /// command asked for (an old tab, or a forged request).
    #[error(
        "the browser came back with a state that is not this command's (an old consent tab, or a forged request): nothing stored; run the command again"
    )]
    StateMismatch,
    /// The admin declined on Intuit's consent page.
    #[error(
        "access was denied on Intuit's consent page (access_denied): nothing stored; run the command again and choose Connect"
    )]
    Denied,
    /// Intuit answered the consent with another error.
    #[error("Intuit answered the consent with {error}{}: nothing stored", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Refused {
        /// Intuit's `error`.
        error: String,
        /// Intuit's `error_description`, if any.
        description: String,
    },
    /// The browser came back without a parameter Intuit always sends.
    #[error("the browser came back without {0}: nothing stored")]
    Incomplete(&'static str),
    /// The admin approved another QuickBooks company than the configured one.
    #[error(
        "the consent was for QuickBooks company {approved}, but [quickbooks.{company}] has realm_id {configured}: nothing stored; sign in to the right company, or correct realm_id"
    )]
    RealmMismatch {
        /// The company being connected.
        company: AccountName,
        /// Its configured realm id.
        configured: String,
        /// The realm id Intuit sent.
        approved: String,
    },
    /// Intuit did not exchange the code for tokens.
    #[error("exchanging the code for tokens: {0}")]
    Exchange(#[from] OAuthError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = Result<(), Box<dyn std::error::Error>>;

    const STATE: &str = "5f0c2a";

    fn url(text: &str) -> Result<url::Url, url::ParseError> {
        url::Url::parse(text)
    }

    #[test]
    fn only_plain_http_on_loopback_is_listened_on() -> Outcome {
        let local = LocalRedirect::of(&url("http://localhost:8765/callback")?);
        assert_eq!(local, Some(LocalRedirect { addr: "127.0.0.1:8765".parse()?, path: "/callback".into() }));
        let addr = |text: &str| -> Result<Option<std::net::SocketAddr>, url::ParseError> {
            Ok(LocalRedirect::of(&url(text)?).map(|l| l.addr))
        };
        assert_eq!(addr("http://127.0.0.1/cb?x=1")?, Some("127.0.0.1:80".parse()?));
        assert_eq!(addr("http://[::1]:9000/")?, Some("[::1]:9000".parse()?));
        for elsewhere in
            ["https://localhost:8765/callback", "http://invoiceflow.example/callback", "http://10.0.0.5/cb"]
        {
            assert_eq!(LocalRedirect::of(&url(elsewhere)?), None, "{elsewhere}");
        }
        Ok(())
    }

    #[test]
    fn a_consent_gives_its_code_and_realm() -> Outcome {
        let consent = read_redirect(&format!("code=AB%2B1&state={STATE}&realmId=9341"), STATE)?;
        assert_eq!(consent, Consent { code: "AB+1".into(), realm_id: "9341".into() });
        Ok(())
    }

    #[test]
    fn another_state_is_refused_before_anything_else_is_read() {
        for query in ["code=c&state=other&realmId=9341", "code=c&realmId=9341", "error=access_denied&state=x"] {
            assert!(matches!(read_redirect(query, STATE), Err(ConnectError::StateMismatch)), "{query}");
        }
    }

    #[test]
    fn a_refusal_says_so() {
        assert!(matches!(
            read_redirect(&format!("error=access_denied&state={STATE}"), STATE),
            Err(ConnectError::Denied)
        ));
        let e = read_redirect(&format!("error=invalid_scope&error_description=bad%0Ascope&state={STATE}"), STATE);
        assert_eq!(
            e.err().map(|e| e.to_string()).as_deref(),
            Some("Intuit answered the consent with invalid_scope (badscope): nothing stored")
        );
        assert!(matches!(
            read_redirect(&format!("state={STATE}&realmId=1"), STATE),
            Err(ConnectError::Incomplete("code"))
        ));
        assert!(matches!(
            read_redirect(&format!("state={STATE}&code=c"), STATE),
            Err(ConnectError::Incomplete("realmId"))
        ));
    }

    #[test]
    fn states_are_random_hex() -> Outcome {
        let (a, b) = (random_state()?, random_state()?);
        assert_eq!(a.len(), 48);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = Page::new(StatusCode::BAD_REQUEST, "Not connected", "<script>&\"'");
        assert!(page.html.contains("&lt;script&gt;&amp;&quot;&#39;"), "{}", page.html);
    }
}
