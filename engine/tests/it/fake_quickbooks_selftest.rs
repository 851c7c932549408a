//! The fake QuickBooks, exercised with plain HTTP as a client would: OAuth, the API's shapes,
//! failure injection, limits, the request log and webhook signatures.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION, RETRY_AFTER};
use serde_json::Value;

use crate::fake_quickbooks::{
    BillSpec, Endpoint, Failure, FakeQuickBooks, InvoiceSpec, Kind, cloud_events_body, notification_body, sign,
};

const REALM: &str = "9341453050298464";
const CALLBACK: &str = "http%3A%2F%2Flocalhost%2Fcallback";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// An HTTP client for loopback that shows redirects instead of following them.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// A company with nothing in it at 2026-11-01 12:00 UTC, and a token for it (which lives an hour
/// of the fake's clock).
async fn company() -> (FakeQuickBooks, String) {
    let qb = FakeQuickBooks::start().await;
    qb.set_now(at("2026-11-01T12:00:00Z"));
    qb.add_company(REALM);
    let token = qb.grant(REALM).access_token;
    (qb, token)
}

/// `GET /v3/company/REALM/{path}` with `params` (and `minorversion=75` unless `bare`).
async fn get(qb: &FakeQuickBooks, token: Option<&str>, path: &str, params: &[(&str, &str)], bare: bool) -> Answer {
    let mut url = Url::parse(&format!("{}/v3/company/{REALM}/{path}", qb.base_url())).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    if !bare {
        url.query_pairs_mut().append_pair("minorversion", "75");
    }
    let request = client().get(url);
    send(match token {
        Some(t) => request.header(AUTHORIZATION, format!("Bearer {t}")),
        None => request,
    })
    .await
}

async fn query(qb: &FakeQuickBooks, token: &str, statement: &str) -> Answer {
    get(qb, Some(token), "query", &[("query", statement)], false).await
}

/// The ids of a query answer's (or a CDC entry's) `kind` list.
fn ids(response: &Value, kind: &str) -> Vec<String> {
    response[kind].as_array().into_iter().flatten().map(|e| e["Id"].as_str().unwrap().to_owned()).collect()
}

async fn token(qb: &FakeQuickBooks, client_auth: (&str, &str), form: &str) -> Answer {
    let request = client()
        .post(qb.token_url())
        .basic_auth(client_auth.0, Some(client_auth.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    send(request).await
}

async fn refresh(qb: &FakeQuickBooks, refresh_token: &str) -> Answer {
    token(
        qb,
        ("fake-client-id", "fake-client-secret"),
        &format!("grant_type=refresh_token&refresh_token={refresh_token}"),
    )
    .await
}

#[tokio::test]
async fn authorization_code_then_refresh_rotates_and_refuses_used_tokens() {
    let qb = FakeQuickBooks::start().await;
    qb.add_company(REALM);
    qb.set_client("app", "s3cret");
    qb.approve_as(REALM);
    let authorize = format!(
        "{}?client_id=app&response_type=code&scope=com.intuit.quickbooks.accounting&redirect_uri={CALLBACK}&state=a%20b",
        qb.authorize_url()
    );
    let approved = send(client().get(authorize)).await;
    assert_eq!(approved.status, 302);
    let back = Url::parse(approved.headers[LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/callback");
    let back: HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!((back["state"].as_str(), back["realmId"].as_str()), ("a b", REALM));

    let exchange = format!("grant_type=authorization_code&code={}&redirect_uri={CALLBACK}", back["code"]);
    let first = token(&qb, ("app", "s3cret"), &exchange).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["token_type"], "bearer");
    assert_eq!(
        (first.body["expires_in"].as_i64(), first.body["x_refresh_token_expires_in"].as_i64()),
        (Some(3600), Some(8_726_400))
    );
    assert_eq!(token(&qb, ("app", "s3cret"), &exchange).await.body["error"], "invalid_grant", "a code serves once");

    let old = first.body["refresh_token"].as_str().unwrap();
    let form = |t: &str| format!("grant_type=refresh_token&refresh_token={t}");
    let second = token(&qb, ("app", "s3cret"), &form(old)).await;
    assert_eq!(second.status, 200);
    let new = second.body["refresh_token"].as_str().unwrap();
    assert_ne!(new, old, "rotated");
    let stale = token(&qb, ("app", "s3cret"), &form(old)).await;
    assert_eq!((stale.status, stale.body["error"].as_str()), (400, Some("invalid_grant")));
    let wrong = token(&qb, ("app", "wrong"), &form(new)).await;
    assert_eq!((wrong.status, wrong.body["error"].as_str()), (401, Some("invalid_client")));

    let access = second.body["access_token"].as_str().unwrap();
    assert_eq!(query(&qb, access, "select * from Invoice").await.status, 200);
    let refreshes = qb.requests().into_iter().filter(|r| r.endpoint == Endpoint::Token && r.status == 200).count();
    assert_eq!(refreshes, 2);
}

#[tokio::test]
async fn a_user_who_was_not_told_whom_to_approve_as_declines() {
    let qb = FakeQuickBooks::start().await;
    let url = format!(
        "{}?client_id=fake-client-id&response_type=code&scope=s&redirect_uri={CALLBACK}&state=x",
        qb.authorize_url()
    );
    let declined = send(client().get(url)).await;
    assert_eq!(declined.headers[LOCATION], "http://localhost/callback?error=access_denied&state=x");
}

#[tokio::test]
async fn without_rotation_the_refresh_token_stays_valid() {
    let (qb, _) = company().await;
    qb.rotate_refresh_tokens(false);
    let grant = qb.grant(REALM);
    qb.advance(chrono::Duration::days(1));
    let answer = refresh(&qb, &grant.refresh_token).await;
    assert_eq!(answer.body["refresh_token"].as_str(), Some(grant.refresh_token.as_str()));
    assert_eq!(answer.body["x_refresh_token_expires_in"].as_i64(), Some(8_726_400 - 86_400));
    assert_eq!(refresh(&qb, &grant.refresh_token).await.status, 200);
}

#[tokio::test]
async fn expired_revoked_missing_or_foreign_tokens_get_quickbooks_401() {
    let (qb, access) = company().await;
    let refresh_token = qb.grant(REALM).refresh_token;
    assert_eq!(query(&qb, &access, "select * from Invoice").await.status, 200);

    qb.expire_access_tokens();
    let expired = query(&qb, &access, "select * from Invoice").await;
    assert_eq!(expired.status, 401);
    let error = &expired.body["fault"]["error"][0];
    assert_eq!((error["code"].as_str(), error["detail"].as_str()), (Some("3200"), Some("Token expired")));
    assert_eq!(expired.body["fault"]["type"], "AUTHENTICATION");

    let renewed = refresh(&qb, &refresh_token).await.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(query(&qb, &renewed, "select * from Invoice").await.status, 200);
    qb.advance(chrono::Duration::minutes(60));
    assert_eq!(query(&qb, &renewed, "select * from Invoice").await.status, 401, "an hour later");

    assert_eq!(get(&qb, None, "query", &[("query", "select * from Invoice")], false).await.status, 401);
    qb.add_company("other");
    let foreign = qb.grant("other").access_token;
    assert_eq!(query(&qb, &foreign, "select * from Invoice").await.status, 401);

    let latest = qb.grant(REALM);
    qb.revoke_all(REALM);
    assert_eq!(query(&qb, &latest.access_token, "select * from Invoice").await.status, 401);
    assert_eq!(refresh(&qb, &latest.refresh_token).await.body["error"], "invalid_grant");
}

#[tokio::test]
async fn queries_by_ids_and_by_time_window_in_pages() {
    let (qb, token) = company().await;
    for _ in 0..5 {
        qb.put(REALM, Kind::Invoice, InvoiceSpec::default().json());
        qb.advance(chrono::Duration::minutes(1));
    }

    let by_ids = query(&qb, &token, "select * from Invoice where Id in ('4', '2', '9') MAXRESULTS 10").await;
    let response = &by_ids.body["QueryResponse"];
    assert_eq!(ids(response, "Invoice"), ["2", "4"]);
    assert_eq!((response["startPosition"].as_i64(), response["maxResults"].as_i64()), (Some(1), Some(2)));
    assert_eq!(response["Invoice"][0]["MetaData"]["LastUpdatedTime"], "2026-11-01T04:01:00-08:00");

    // 12:01 to 12:04 (exclusive) are invoices 2, 3 and 4; the bounds are written in two zones.
    let page = |start: u32| {
        format!(
            "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '2026-11-01T04:01:00-08:00' \
             AND MetaData.LastUpdatedTime < '2026-11-01T12:04:00Z' ORDERBY MetaData.LastUpdatedTime \
             STARTPOSITION {start} MAXRESULTS 2"
        )
    };
    assert_eq!(ids(&query(&qb, &token, &page(1)).await.body["QueryResponse"], "Invoice"), ["2", "3"]);
    let second = query(&qb, &token, &page(3)).await.body;
    assert_eq!(ids(&second["QueryResponse"], "Invoice"), ["4"]);
    assert_eq!(second["QueryResponse"]["startPosition"].as_i64(), Some(3));
    let past_the_end = query(&qb, &token, &page(5)).await.body;
    assert_eq!(past_the_end["QueryResponse"], serde_json::json!({}));
    assert!(past_the_end["time"].is_string());

    let unsupported = query(&qb, &token, "select * from Invoice where Balance > '0'").await;
    assert_eq!(unsupported.status, 400);
    let detail = unsupported.body["Fault"]["Error"][0]["Detail"].as_str().unwrap();
    assert!(detail.starts_with("QueryParserError"), "{detail}");
}

#[tokio::test]
async fn cdc_returns_the_oldest_1000_changes_and_deletions() {
    let (qb, _) = company().await;
    for _ in 0..1005 {
        qb.put(REALM, Kind::Invoice, InvoiceSpec::default().json());
        qb.advance(chrono::Duration::seconds(1));
    }
    let bill = qb.put(REALM, Kind::Bill, BillSpec::default().json());
    qb.advance(chrono::Duration::hours(1));
    qb.delete(REALM, Kind::Bill, &bill);

    let params = [("entities", "Invoice,Bill,Payment"), ("changedSince", "2026-11-01T04:00:00-08:00")];
    let token = qb.grant(REALM).access_token;
    let cdc = get(&qb, Some(&token), "cdc", &params, false).await;
    assert_eq!(cdc.status, 200);
    let responses = &cdc.body["CDCResponse"][0]["QueryResponse"];
    let invoices = ids(&responses[0], "Invoice");
    assert_eq!((invoices.len(), invoices[0].as_str(), invoices[999].as_str()), (1000, "1", "1000"));
    assert_eq!(responses[0]["totalCount"].as_i64(), Some(1000));
    let deleted = &responses[1]["Bill"][0];
    assert_eq!((deleted["status"].as_str(), deleted["Id"].as_str()), (Some("Deleted"), Some(bill.as_str())));
    assert_eq!(deleted["MetaData"]["LastUpdatedTime"], "2026-11-01T05:16:45-08:00");
    assert_eq!(responses[2], serde_json::json!({}), "no payment changed");

    qb.advance(chrono::Duration::days(31));
    let token = qb.grant(REALM).access_token;
    let too_old = get(&qb, Some(&token), "cdc", &params, false).await;
    assert_eq!((too_old.status, too_old.body["Fault"]["type"].as_str()), (400, Some("ValidationFault")));
    assert!(too_old.body["Fault"]["Error"][0]["Detail"].as_str().unwrap().contains("30 days"));
}

#[tokio::test]
async fn an_entity_is_read_wrapped_and_its_sync_token_follows_changes() {
    let (qb, token) = company().await;
    let id = qb.put(REALM, Kind::Invoice, InvoiceSpec { id: Some("239"), ..InvoiceSpec::default() }.json());
    assert_eq!(id, "239");
    let read = get(&qb, Some(&token), "invoice/239", &[], false).await;
    assert_eq!(read.status, 200);
    let invoice = &read.body["Invoice"];
    assert_eq!((invoice["SyncToken"].as_str(), invoice["TotalAmt"].to_string()), (Some("0"), "150.00".to_owned()));
    assert_eq!(invoice["CustomerRef"]["name"], "Amy's Bird Sanctuary");
    assert!(read.body["time"].is_string());

    let voided = qb.void_invoice(REALM, "239");
    assert_eq!((voided["SyncToken"].as_str(), voided["PrivateNote"].as_str()), (Some("1"), Some("Voided")));
    assert_eq!((voided["TotalAmt"].to_string(), voided["Balance"].to_string()), ("0".to_owned(), "0".to_owned()));

    let missing = get(&qb, Some(&token), "invoice/240", &[], false).await;
    assert_eq!(
        (missing.status, missing.body["Fault"]["Error"][0]["Message"].as_str()),
        (400, Some("Object Not Found"))
    );
    assert_eq!(get(&qb, Some(&token), "bill/239", &[], false).await.status, 400, "kinds are apart");
}

#[tokio::test]
async fn sending_an_invoice_marks_it_emailed_to_the_address_given() {
    let (qb, token) = company().await;
    qb.put(REALM, Kind::Invoice, InvoiceSpec { id: Some("239"), ..InvoiceSpec::default() }.json());
    let url =
        format!("{}/v3/company/{REALM}/invoice/239/send?minorversion=75&sendTo=ap%40client.example", qb.base_url());
    let sent = send(client().post(url).bearer_auth(&token)).await;
    assert_eq!(sent.status, 200);
    let invoice = &sent.body["Invoice"];
    assert_eq!(
        (invoice["EmailStatus"].as_str(), invoice["BillEmail"]["Address"].as_str()),
        (Some("EmailSent"), Some("ap@client.example"))
    );
    assert_eq!(invoice["DeliveryInfo"]["DeliveryType"], "Email");
    assert_eq!(qb.get(REALM, Kind::Invoice, "239").unwrap()["SyncToken"], "1");
    assert_eq!(qb.count(Endpoint::Send), 1);
}

#[tokio::test]
async fn requests_are_logged_and_a_missing_minorversion_is_refused() {
    let (qb, token) = company().await;
    let statement = "select * from Invoice";
    assert_eq!(get(&qb, Some(&token), "query", &[("query", statement)], true).await.status, 400);
    assert_eq!(get(&qb, None, "cdc", &[], false).await.status, 401);

    let log = qb.requests();
    assert_eq!(log.len(), 2);
    let first = &log[0];
    assert_eq!((first.method.as_str(), first.path.as_str()), ("GET", "/v3/company/9341453050298464/query"));
    assert_eq!((first.endpoint, first.realm.as_deref(), first.status), (Endpoint::Query, Some(REALM), 400));
    assert_eq!(first.param("query").as_deref(), Some(statement));
    assert_eq!((log[1].endpoint, log[1].status), (Endpoint::Cdc, 401));
    assert!(log[0].at <= log[1].at);
    assert_eq!(qb.minorversion_missing().len(), 1);
    assert_eq!((qb.count(Endpoint::Query), qb.count(Endpoint::Any), qb.count(Endpoint::Entity)), (1, 2, 0));
}

#[tokio::test]
async fn injected_failures_come_in_order_where_they_are_scoped() {
    let (qb, token) = company().await;
    qb.fail_next_on(Endpoint::Query, 1, Failure::TooManyRequests { retry_after: Some(7) });
    qb.fail_next(1, Failure::ServerError);
    qb.fail_next(1, Failure::FaultIn200);
    qb.fail_next_on(Endpoint::Token, 1, Failure::Unauthorized);

    let entity = get(&qb, Some(&token), "invoice/1", &[], false).await;
    assert_eq!(
        (entity.status, entity.body["Fault"]["type"].as_str()),
        (500, Some("SystemFault")),
        "the query's failure waits"
    );
    let throttled = query(&qb, &token, "select * from Invoice").await;
    assert_eq!((throttled.status, throttled.headers[RETRY_AFTER].to_str().unwrap()), (429, "7"));
    let fault = query(&qb, &token, "select * from Invoice").await;
    assert_eq!((fault.status, fault.body["Fault"]["type"].as_str()), (200, Some("SystemFault")));
    let refused = refresh(&qb, &qb.grant(REALM).refresh_token).await;
    assert_eq!((refused.status, refused.body["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(query(&qb, &token, "select * from Invoice").await.status, 200);
    let statuses: Vec<u16> = qb.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 200, 401, 200]);
}

#[tokio::test]
async fn past_ten_requests_at_once_a_company_is_throttled() {
    let (qb, token) = company().await;
    qb.set_latency(Duration::from_millis(400));
    qb.enforce_limits(true);
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let (qb, token) = (qb.clone(), token.clone());
            tokio::spawn(async move { query(&qb, &token, "select * from Invoice").await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(r.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [[200; 10].as_slice(), &[429, 429]].concat());
    assert_eq!((qb.limit_violations(), qb.max_concurrent(REALM)), (2, 12));
}

#[test]
fn webhook_bodies_have_intuits_shapes_and_signature() {
    let body = notification_body(
        "1269959970",
        &[
            ("Vendor", "40", "Update", "2016-10-05T03:09:04.000Z"),
            ("Customer", "43", "Create", "2016-10-05T03:07:04.000Z"),
        ],
    );
    assert_eq!(
        body,
        r#"{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":[{"name":"Vendor","id":"40","operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},{"name":"Customer","id":"43","operation":"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}"#
    );
    assert_eq!(
        sign("00faeec4-08d0-4996-bb37-698ae19f0149", body.as_bytes()),
        "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM="
    );

    let events: Value =
        serde_json::from_str(&cloud_events_body(REALM, &[("Invoice", "239", "Update", "2026-11-25T09:00:00Z")]))
            .unwrap();
    let event = &events[0];
    assert_eq!((event["specversion"].as_str(), event["type"].as_str()), (Some("1.0"), Some("qbo.invoice.updated.v1")));
    assert_eq!((event["intuitentityid"].as_str(), event["intuitaccountid"].as_str()), (Some("239"), Some(REALM)));
    assert_eq!(event["data"], serde_json::json!({}));
}
