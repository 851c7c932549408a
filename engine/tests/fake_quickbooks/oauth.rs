//! Intuit's OAuth 2 as a client meets it: the authorize page (played as a user who approves), the
//! token endpoint (authorization code and refresh grants, rotation, `invalid_grant`), and the
//! bearer check the API makes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use serde_json::json;

use super::form;
use super::server::Reply;
use super::state::{ACCESS_TOKEN_SECONDS, Code, Issued, REFRESH_TOKEN_SECONDS, State};

/// Tokens a grant hands out, for a test that skips the OAuth dance (`FakeQuickBooks::grant`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The bearer token the API accepts for an hour (the fake's clock).
    pub access_token: String,
    /// What `grant_type=refresh_token` takes.
    pub refresh_token: String,
}

/// Issues an access token for `realm` and a refresh token (`refresh`, kept, or a new one).
pub(crate) fn issue(state: &mut State, realm: &str, refresh: Option<String>) -> Grant {
    let now = state.now;
    let access_token = state.token("fake-access");
    state.access_tokens.insert(access_token.clone(), Issued { realm: realm.to_owned(), at: now });
    let refresh_token = refresh.unwrap_or_else(|| {
        let token = state.token("fake-refresh");
        state.refresh_tokens.insert(token.clone(), Issued { realm: realm.to_owned(), at: now });
        token
    });
    Grant { access_token, refresh_token }
}

/// `POST /oauth2/v1/tokens/bearer`; also says which company the grant was for, when known.
pub(crate) fn token(state: &mut State, authorization: Option<&str>, body: &[u8]) -> (Reply, Option<String>) {
    let error = |status, error: &str| (Reply::json(status, json!({"error": error})), None);
    if client(authorization).as_ref() != Some(&state.client) {
        return error(401, "invalid_client");
    }
    let params = form::parse(&String::from_utf8_lossy(body));
    let (realm, kept) = match form::get(&params, "grant_type") {
        Some("authorization_code") => {
            let code = form::get(&params, "code").and_then(|c| state.codes.remove(c));
            match code {
                // A code serves once, and only with the redirect it was issued for.
                Some(Code { realm, redirect_uri })
                    if Some(redirect_uri.as_str()) == form::get(&params, "redirect_uri") =>
                {
                    (realm, None)
                }
                _ => return error(400, "invalid_grant"),
            }
        }
        Some("refresh_token") => {
            let Some(old) = form::get(&params, "refresh_token") else { return error(400, "invalid_request") };
            let live = state
                .refresh_tokens
                .get(old)
                .filter(|i| state.now < i.at + Duration::seconds(REFRESH_TOKEN_SECONDS))
                .map(|i| i.realm.clone());
            let Some(realm) = live else { return error(400, "invalid_grant") };
            if state.rotate_refresh_tokens {
                state.refresh_tokens.remove(old);
                (realm, None)
            } else {
                (realm, Some(old.to_owned()))
            }
        }
        Some(_) => return error(400, "unsupported_grant_type"),
        None => return error(400, "invalid_request"),
    };
    let grant = issue(state, &realm, kept);
    (answer(state, &grant), Some(realm))
}

fn answer(state: &State, grant: &Grant) -> Reply {
    let refresh_left = state
        .refresh_tokens
        .get(&grant.refresh_token)
        .map_or(REFRESH_TOKEN_SECONDS, |i| REFRESH_TOKEN_SECONDS - (state.now - i.at).num_seconds());
    Reply::json(
        200,
        json!({
            "token_type": "bearer",
            "access_token": grant.access_token,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": refresh_left,
        }),
    )
}

/// The client id and secret of an HTTP Basic `Authorization` header.
fn client(authorization: Option<&str>) -> Option<(String, String)> {
    let (scheme, encoded) = authorization?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `GET /connect/oauth2`: the user approves as the company `approve_as` named (or declines when
/// none was), and the browser is sent back to `redirect_uri` with a code or an error.
pub(crate) fn authorize(state: &mut State, params: &[(String, String)]) -> Reply {
    let param = |name| form::get(params, name).filter(|v| !v.is_empty());
    if param("client_id") != Some(state.client.0.as_str()) {
        return Reply::json(400, json!({"error": "invalid_client"}));
    }
    if param("response_type") != Some("code") {
        return Reply::json(400, json!({"error": "unsupported_response_type"}));
    }
    let (Some(redirect_uri), Some(_scope)) = (param("redirect_uri"), param("scope")) else {
        return Reply::json(400, json!({"error": "invalid_request"}));
    };
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let state_param = form::encode(param("state").unwrap_or_default());
    let Some(realm) = state.approve_as.clone() else {
        return Reply::redirect(format!("{redirect_uri}{separator}error=access_denied&state={state_param}"));
    };
    let code = state.token("fake-code");
    state.codes.insert(code.clone(), Code { realm: realm.clone(), redirect_uri: redirect_uri.to_owned() });
    Reply::redirect(format!(
        "{redirect_uri}{separator}code={code}&state={state_param}&realmId={}",
        form::encode(&realm)
    ))
}

/// The company a bearer token opens, or why it opens none (the 401's `detail`).
pub(crate) fn bearer_realm(state: &State, authorization: Option<&str>) -> Result<String, &'static str> {
    let token = authorization
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or("Token invalid")?;
    let issued = state.access_tokens.get(token).ok_or("Token invalid")?;
    if state.now >= issued.at + Duration::seconds(ACCESS_TOKEN_SECONDS) {
        return Err("Token expired");
    }
    Ok(issued.realm.clone())
}
