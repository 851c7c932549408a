//! The HTTP client every HTTP connector shares the settings of: redirects never followed (a 3xx
//! is a failure), 15 seconds per attempt, and the SSRF guard applied where it matters — to the
//! addresses a name resolves to when the connection is made, and to an address written in the URL.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::guard;

/// How long one attempt may take, connection included (DOMAIN.md §4: 15 s).
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Why an HTTP connector cannot be built or a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Not an http(s) URL.
    #[error("{url:?} is not an http:// or https:// URL")]
    Url {
        /// The URL as written.
        url: String,
    },
    /// The URL names an address webhooks must not reach.
    #[error("{host} is a {why} address: refused as a delivery target unless the destination sets allow_private = true")]
    Refused {
        /// The host.
        host: String,
        /// What kind of address it is.
        why: &'static str,
    },
    /// The client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A parsed delivery URL, checked against the SSRF guard as far as the URL itself tells.
///
/// # Errors
/// [`HttpError::Url`] for a URL that is not http(s), [`HttpError::Refused`] for a loopback,
/// private or link-local address (or `localhost`) written in it, unless `allow_private`.
pub fn target(url: &str, allow_private: bool) -> Result<reqwest::Url, HttpError> {
    let bad = || HttpError::Url { url: url.to_owned() };
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad());
    }
    let host = parsed.host_str().ok_or_else(bad)?.trim_start_matches('[').trim_end_matches(']').to_owned();
    if !allow_private {
        if let Ok(ip) = host.parse::<IpAddr>()
            && let Some(why) = guard::refused(ip)
        {
            return Err(HttpError::Refused { host, why });
        }
        if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
            return Err(HttpError::Refused { host, why: "loopback" });
        }
    }
    Ok(parsed)
}

/// A client for delivery attempts: no redirects, [`TIMEOUT`], no proxy from the environment,
/// and — unless `allow_private` — a resolver that refuses names resolving to loopback, private or
/// link-local addresses (checked when connecting, so that DNS cannot be re-pointed after a check).
///
/// # Errors
/// [`HttpError::Client`] when TLS cannot be set up.
pub fn client(allow_private: bool) -> Result<reqwest::Client, HttpError> {
    // reqwest is built without a default crypto provider: ring is ours. A second install (another
    // client, lettre) finds one already there, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .user_agent(concat!("invoiceflow/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build().map_err(|e| HttpError::Client(e.to_string()))
}

/// The system resolver, keeping only addresses the SSRF guard accepts.
#[derive(Debug)]
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs.iter().copied().filter(|a| guard::refused(a.ip()).is_none()).collect();
            match (public.is_empty(), addrs.first()) {
                (false, _) => Ok(Box::new(public.into_iter()) as Addrs),
                (true, Some(first)) => {
                    let why = guard::refused(first.ip()).unwrap_or("refused");
                    Err(format!(
                        "{host} resolves to {} ({why}): refused unless the destination sets allow_private = true",
                        first.ip()
                    )
                    .into())
                }
                (true, None) => Err(format!("{host} resolves to no address").into()),
            }
        })
    }
}

/// What an HTTP attempt that got no answer means: always worth trying again (DNS, connection
/// refused, timeout), except a target the guard refused, which no retry changes.
pub(crate) fn unanswered(error: &reqwest::Error) -> crate::Attempted {
    let detail = describe(error);
    if detail.contains("allow_private") {
        return crate::Attempted::Permanent { detail, disable_destination: true };
    }
    let detail =
        if error.is_timeout() { format!("no answer within {} s: {detail}", TIMEOUT.as_secs()) } else { detail };
    crate::Attempted::Transient { retry_after: None, detail }
}

/// An HTTP error with its chain of causes (reqwest's own message rarely says what went wrong).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    detail
}

/// Reads an answer: status, `Retry-After`, and the body (at most 64 KiB of it, as text).
pub(crate) async fn answer(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut body = Vec::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= 64 * 1024 {
            body.truncate(64 * 1024);
            break;
        }
    }
    (status, retry_after, String::from_utf8_lossy(&body).into_owned())
}

/// A `Retry-After` in seconds (the HTTP-date form is not used by the peers we talk to).
pub(crate) fn retry_after_seconds(text: &str) -> Option<chrono::Duration> {
    text.trim().parse::<u32>().ok().map(|s| chrono::Duration::seconds(i64::from(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_naming_private_addresses_are_refused_unless_allowed() {
        for (url, why) in [
            ("http://127.0.0.1:9/hook", "loopback"),
            ("https://[::1]/x", "loopback"),
            ("http://169.254.169.254/latest/meta-data", "link-local (cloud metadata lives there)"),
            ("http://10.0.0.7/x", "private network"),
            ("http://localhost:8080/x", "loopback"),
        ] {
            match target(url, false) {
                Err(HttpError::Refused { why: w, .. }) => assert_eq!(w, why, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
            assert!(target(url, true).is_ok(), "{url} allowed explicitly");
        }
        assert!(target("https://hooks.slack.com/services/T/B/X", false).is_ok());
        assert!(matches!(target("ftp://example.com/x", true), Err(HttpError::Url { .. })));
        assert!(matches!(target("not a url", true), Err(HttpError::Url { .. })));
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_when_connecting() {
        let name: Name = "localhost".parse().expect("name");
        let Err(error) = GuardedResolver.resolve(name).await else { panic!("localhost resolved") };
        let error = error.to_string();
        assert!(error.contains("loopback") && error.contains("allow_private"), "{error}");
    }
}
