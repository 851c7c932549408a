//! OAuth 2 with Intuit (DOMAIN.md §5): the URL that asks an admin to connect a company, and the
//! token endpoint that turns the code it sends back into tokens and refreshes them.
//!
//! Access tokens live an hour; the refresh token may rotate with each refresh, so the caller
//! persists the newest [`Tokens`] atomically and keeps one refresh in flight per company. Where the
//! tokens are kept, and when they are refreshed, is the engine's business: this module only speaks
//! to Intuit. What is sent and what comes back are read by pure functions, tested offline; the
//! calls themselves are thin.

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde_json::Value;

use crate::http;
use crate::secret::SecretString;

/// Where an admin connects a company to the app (production).
pub const AUTHORIZE_URL: &str = "https://appcenter.intuit.com/connect/oauth2";
/// Where codes and refresh tokens are exchanged for tokens (production).
pub const TOKEN_URL: &str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer";
/// The scope invoiceflow asks for: the accounting API.
pub const SCOPE: &str = "com.intuit.quickbooks.accounting";

/// The app registered with Intuit, and where its OAuth endpoints are.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// Where admins connect a company ([`AUTHORIZE_URL`] in production).
    pub authorize_url: Url,
    /// Where tokens are obtained ([`TOKEN_URL`] in production).
    pub token_url: Url,
    /// Where Intuit sends the admin back with a code; registered with the app.
    pub redirect_uri: Url,
}

/// A company's tokens, as obtained at a given instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The bearer token of API calls.
    pub access_token: SecretString,
    /// When the access token expires (an hour after it was obtained).
    pub access_expires_at: DateTime<Utc>,
    /// The token that obtains the next access token; it may change with every refresh.
    pub refresh_token: SecretString,
    /// When the refresh token expires (about 100 days after it was issued).
    pub refresh_expires_at: DateTime<Utc>,
}

/// Why no tokens were obtained. Messages carry Intuit's `error` and `error_description`, never a
/// token or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is no longer valid (expired, revoked, already used): the company
    /// must be reconnected. Never worth trying again.
    #[error("Intuit refused the grant ({detail}): the company must be reconnected")]
    InvalidGrant {
        /// Intuit's `error` and `error_description`.
        detail: String,
    },
    /// Intuit does not accept the app's client id or secret: a configuration error.
    #[error("Intuit refused the app's client id or secret ({detail}): check the OAuth configuration")]
    InvalidClient {
        /// Intuit's `error` and `error_description`, or the status.
        detail: String,
    },
    /// No answer, a timeout, a 5xx or a 429: worth trying again later.
    #[error("Intuit's token endpoint is unavailable: {detail}")]
    Transient {
        /// What happened.
        detail: String,
        /// How long Intuit asked to wait (`Retry-After`), if it did.
        retry_after: Option<chrono::Duration>,
    },
    /// Refused for another reason (`invalid_request`, `unsupported_grant_type`, `invalid_scope`…):
    /// a bug or a configuration error; not worth trying again.
    #[error("Intuit refused the token request (HTTP {status}): {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Intuit's `error` and `error_description`, or an excerpt of the answer.
        detail: String,
    },
    /// An answer that cannot be read as tokens.
    #[error("cannot read Intuit's token answer: {detail}")]
    Invalid {
        /// What is wrong with it.
        detail: String,
    },
}

impl OAuthError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// What the token endpoint is asked to exchange.
#[derive(Debug, Clone, Copy)]
enum Grant<'a> {
    /// The code Intuit sent to the redirect URI.
    Code(&'a str),
    /// A refresh token.
    Refresh(&'a SecretString),
}

impl OAuthApp {
    /// Where to send an admin to connect a company; Intuit sends them back to the redirect URI
    /// with `code`, `realmId` and this `state` (which the caller checks, against CSRF).
    pub fn authorization_url(&self, state: &str) -> Url {
        let mut url = self.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPE)
            .append_pair("redirect_uri", self.redirect_uri.as_str())
            .append_pair("state", state);
        url
    }

    /// Exchanges the `code` Intuit sent to the redirect URI for tokens, obtained at `now`.
    ///
    /// # Errors
    /// [`OAuthError::InvalidGrant`] for a code expired or already used, and the others as
    /// documented there.
    pub async fn exchange_code(
        &self,
        client: &reqwest::Client,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Tokens, OAuthError> {
        self.ask(client, Grant::Code(code), now).await
    }

    /// New tokens for `refresh_token`, obtained at `now`. The answer's refresh token may differ
    /// from the one given: keep the newest.
    ///
    /// # Errors
    /// [`OAuthError::InvalidGrant`] when the refresh token is expired or revoked (the company must
    /// be reconnected), and the others as documented there.
    pub async fn refresh(
        &self,
        client: &reqwest::Client,
        refresh_token: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<Tokens, OAuthError> {
        self.ask(client, Grant::Refresh(refresh_token), now).await
    }

    async fn ask(&self, client: &reqwest::Client, grant: Grant<'_>, now: DateTime<Utc>) -> Result<Tokens, OAuthError> {
        let response = self
            .token_request(client, grant)
            .send()
            .await
            .map_err(|e| OAuthError::Transient { detail: http::describe(&e), retry_after: None })?;
        let (status, retry_after, body) = http::answer(response).await;
        read_answer(status, retry_after.as_deref(), &body, now)
    }

    /// The token request: a form, the app's credentials in HTTP Basic authentication.
    fn token_request(&self, client: &reqwest::Client, grant: Grant<'_>) -> reqwest::RequestBuilder {
        client
            .post(self.token_url.clone())
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(grant, &self.redirect_uri))
    }
}

/// The form asking for `grant`.
fn form(grant: Grant<'_>, redirect_uri: &Url) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::Code(code) => {
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect_uri.as_str());
        }
        Grant::Refresh(token) => {
            form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", token.expose());
        }
    }
    form.finish()
}

/// What the token endpoint's answer (status, `Retry-After`, body) means, read at `now`.
fn read_answer(status: u16, retry_after: Option<&str>, body: &str, now: DateTime<Utc>) -> Result<Tokens, OAuthError> {
    if (200..300).contains(&status) {
        return tokens(body, now);
    }
    let json = serde_json::from_str::<Value>(body).ok();
    let text = |key: &str| json.as_ref().and_then(|v| v.get(key)).and_then(Value::as_str).map(str::to_owned);
    let error = text("error").unwrap_or_default();
    let detail = match (error.as_str(), text("error_description")) {
        ("", _) => format!("HTTP {status}: {}", body.chars().take(200).collect::<String>().trim()),
        (error, Some(description)) => format!("{error}: {description}"),
        (error, None) => error.to_owned(),
    };
    match status {
        408 | 429 | 500..=599 => {
            Err(OAuthError::Transient { detail, retry_after: retry_after.and_then(http::retry_after_seconds) })
        }
        _ if error == "invalid_grant" => Err(OAuthError::InvalidGrant { detail }),
        _ if status == 401 || error == "invalid_client" => Err(OAuthError::InvalidClient { detail }),
        _ => Err(OAuthError::Refused { status, detail }),
    }
}

/// The tokens of a successful answer, obtained at `now`. The body holds secrets: messages name
/// what is wrong with it, never its content.
fn tokens(body: &str, now: DateTime<Utc>) -> Result<Tokens, OAuthError> {
    let invalid = |detail: &str| OAuthError::Invalid { detail: detail.to_owned() };
    let json: Value = serde_json::from_str(body).map_err(|_| invalid("the answer is not JSON"))?;
    if let Some(kind) = json.get("token_type")
        && !kind.as_str().is_some_and(|k| k.eq_ignore_ascii_case("bearer"))
    {
        return Err(invalid("the token type is not bearer"));
    }
    let secret = |key: &str| {
        json.get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .map(SecretString::new)
            .ok_or_else(|| invalid(&format!("the answer has no {key}")))
    };
    let expiry = |key: &str| {
        let value = json.get(key);
        value
            .and_then(Value::as_i64)
            .or_else(|| value.and_then(Value::as_str).and_then(|s| s.parse().ok()))
            .filter(|s| *s > 0)
            .and_then(chrono::Duration::try_seconds)
            .and_then(|life| now.checked_add_signed(life))
            .ok_or_else(|| invalid(&format!("the answer has no valid {key}")))
    };
    Ok(Tokens {
        access_token: secret("access_token")?,
        access_expires_at: expiry("expires_in")?,
        refresh_token: secret("refresh_token")?,
        refresh_expires_at: expiry("x_refresh_token_expires_in")?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    const ANSWER: &str = r#"{"token_type":"bearer","access_token":"eyJ-access","expires_in":3600,"refresh_token":"AB11-refresh","x_refresh_token_expires_in":8726400}"#;

    fn app() -> OAuthApp {
        OAuthApp {
            client_id: "ABc123".into(),
            client_secret: SecretString::new("s3cr3t"),
            authorize_url: Url::parse(AUTHORIZE_URL).unwrap(),
            token_url: Url::parse(TOKEN_URL).unwrap(),
            redirect_uri: Url::parse("https://invoiceflow.example/quickbooks/callback").unwrap(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc()
    }

    #[test]
    fn the_authorization_url_asks_for_the_accounting_scope() {
        let url = app().authorization_url("st&te 1");
        assert_eq!(
            url.as_str(),
            "https://appcenter.intuit.com/connect/oauth2?client_id=ABc123&response_type=code\
             &scope=com.intuit.quickbooks.accounting\
             &redirect_uri=https%3A%2F%2Finvoiceflow.example%2Fquickbooks%2Fcallback&state=st%26te+1"
        );
    }

    #[test]
    fn the_token_request_is_a_form_with_basic_client_auth() {
        let client = http::client(false).unwrap();
        let refresh = SecretString::new("AB11+old");
        for (grant, body) in [
            (
                Grant::Code("code/1"),
                "grant_type=authorization_code&code=code%2F1\
                 &redirect_uri=https%3A%2F%2Finvoiceflow.example%2Fquickbooks%2Fcallback",
            ),
            (Grant::Refresh(&refresh), "grant_type=refresh_token&refresh_token=AB11%2Bold"),
        ] {
            let request = app().token_request(&client, grant).build().unwrap();
            assert_eq!(request.method(), "POST");
            assert_eq!(request.url().as_str(), TOKEN_URL);
            let header = |name| request.headers().get(name).unwrap().to_str().unwrap().to_owned();
            let credentials = base64::engine::general_purpose::STANDARD.encode("ABc123:s3cr3t");
            assert_eq!(header("authorization"), format!("Basic {credentials}"));
            assert_eq!(header("accept"), "application/json");
            assert_eq!(header("content-type"), "application/x-www-form-urlencoded");
            assert_eq!(request.body().and_then(reqwest::Body::as_bytes), Some(body.as_bytes()));
        }
    }

    #[test]
    fn tokens_expire_counting_from_now() {
        let tokens = read_answer(200, None, ANSWER, now()).unwrap();
        assert_eq!(tokens.access_token.expose(), "eyJ-access");
        assert_eq!(tokens.refresh_token.expose(), "AB11-refresh");
        assert_eq!(tokens.access_expires_at, now() + chrono::Duration::hours(1));
        assert_eq!(tokens.refresh_expires_at, now() + chrono::Duration::days(101));
        let printed = format!("{tokens:?}");
        assert!(!printed.contains("eyJ") && !printed.contains("AB11"), "{printed}");
    }

    #[test]
    fn an_answer_without_usable_tokens_is_invalid_and_its_content_is_not_repeated() {
        for body in [
            "<html>",
            r#"{"token_type":"bearer","access_token":"eyJ-secret","expires_in":3600}"#,
            r#"{"token_type":"mac","access_token":"eyJ-secret","expires_in":3600,"refresh_token":"r","x_refresh_token_expires_in":1}"#,
            r#"{"access_token":"eyJ-secret","expires_in":-5,"refresh_token":"r","x_refresh_token_expires_in":1}"#,
            r#"{"access_token":"eyJ-secret","expires_in":1e400,"refresh_token":"r","x_refresh_token_expires_in":1}"#,
        ] {
            match read_answer(200, None, body, now()) {
                Err(e @ OAuthError::Invalid { .. }) => assert!(!e.to_string().contains("eyJ"), "{e}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn refusals_say_whether_to_reconnect_reconfigure_or_try_again() {
        let grant = r#"{"error":"invalid_grant","error_description":"Token invalid"}"#;
        assert_eq!(
            read_answer(400, None, grant, now()),
            Err(OAuthError::InvalidGrant { detail: "invalid_grant: Token invalid".into() })
        );
        assert_eq!(
            read_answer(401, None, r#"{"error":"invalid_client"}"#, now()),
            Err(OAuthError::InvalidClient { detail: "invalid_client".into() })
        );
        assert!(matches!(
            read_answer(400, None, r#"{"error":"invalid_client"}"#, now()),
            Err(OAuthError::InvalidClient { .. })
        ));
        assert_eq!(
            read_answer(400, None, r#"{"error":"unsupported_grant_type"}"#, now()),
            Err(OAuthError::Refused { status: 400, detail: "unsupported_grant_type".into() })
        );
        assert_eq!(
            read_answer(503, Some("30"), "busy", now()),
            Err(OAuthError::Transient {
                detail: "HTTP 503: busy".into(),
                retry_after: Some(chrono::Duration::seconds(30))
            })
        );
        assert!(read_answer(429, None, "", now()).is_err_and(|e| e.is_transient()));
        assert!(read_answer(400, None, grant, now()).is_err_and(|e| !e.is_transient()));
    }
}
