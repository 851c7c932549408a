//! Reading QuickBooks companies against servers shaped like Intuit's token endpoint and the
//! QuickBooks API: OAuth, queries, fetches by id, CDC, and the answers that are errors.

use std::time::Duration;

use base64::Engine;
use invoiceflow_connectors::http;
use invoiceflow_connectors::quickbooks::api::{ApiError, CompanyApi, Entity, is_deleted};
use invoiceflow_connectors::quickbooks::limits::Limiter;
use invoiceflow_connectors::quickbooks::oauth::{OAuthApp, OAuthError};
use invoiceflow_connectors::secret::SecretString;
use serde_json::{Value, json};

use crate::at;
use crate::http_peer::{Answer, HttpPeer, Received};

const REALM: &str = "9341453050298464";

const TOKENS: &str = r#"{"token_type":"bearer","access_token":"eyJ-access-2","expires_in":3600,"refresh_token":"AB11-rotated","x_refresh_token_expires_in":8726400}"#;

fn app(peer: &HttpPeer) -> OAuthApp {
    OAuthApp {
        client_id: "ABclient".into(),
        client_secret: SecretString::new("s3cr3t"),
        authorize_url: peer.url("/connect/oauth2").parse().unwrap(),
        token_url: peer.url("/oauth2/v1/tokens/bearer").parse().unwrap(),
        redirect_uri: "https://invoiceflow.example/quickbooks/callback".parse().unwrap(),
    }
}

fn company(peer: &HttpPeer) -> CompanyApi {
    CompanyApi::new(REALM, &peer.url("/"), Limiter::default()).unwrap()
}

fn token() -> SecretString {
    SecretString::new("eyJ-access")
}

fn client() -> reqwest::Client {
    http::client(true).unwrap()
}

/// The pairs of a form or a query string, in order.
fn pairs(text: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(text.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The value of `key` in the request's query string.
fn param(r: &Received, key: &str) -> String {
    pairs(r.uri.query().unwrap_or_default()).into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default()
}

#[tokio::test]
async fn a_code_is_exchanged_with_the_apps_basic_auth_and_a_form() {
    let peer = HttpPeer::start(vec![Answer::new(200, TOKENS)]).await;
    let tokens = app(&peer).exchange_code(&client(), "code-from-intuit", at()).await.unwrap();
    assert_eq!(tokens.access_token.expose(), "eyJ-access-2");
    assert_eq!(tokens.access_expires_at, at() + chrono::Duration::seconds(3600));
    assert_eq!(tokens.refresh_expires_at, at() + chrono::Duration::seconds(8_726_400));
    let received = peer.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!((r.method.as_str(), r.uri.path()), ("POST", "/oauth2/v1/tokens/bearer"));
    let basic = base64::engine::general_purpose::STANDARD.encode("ABclient:s3cr3t");
    assert_eq!(r.header("authorization"), format!("Basic {basic}"));
    assert_eq!(r.header("accept"), "application/json");
    assert_eq!(r.header("content-type"), "application/x-www-form-urlencoded");
    assert_eq!(
        pairs(&r.body),
        [
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), "code-from-intuit".to_owned()),
            ("redirect_uri".to_owned(), "https://invoiceflow.example/quickbooks/callback".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_refresh_returns_the_rotated_refresh_token() {
    let peer = HttpPeer::start(vec![Answer::new(200, TOKENS)]).await;
    let old = SecretString::new("AB11-old");
    let tokens = app(&peer).refresh(&client(), &old, at()).await.unwrap();
    assert_eq!(tokens.refresh_token.expose(), "AB11-rotated", "the newest refresh token is the one to keep");
    assert_eq!(tokens.access_token.expose(), "eyJ-access-2");
    let received = peer.received();
    assert_eq!(
        pairs(&received[0].body),
        [("grant_type".to_owned(), "refresh_token".to_owned()), ("refresh_token".to_owned(), "AB11-old".to_owned())]
    );
}

#[tokio::test]
async fn an_invalid_grant_means_reconnect_and_is_asked_once() {
    let refused = r#"{"error":"invalid_grant","error_description":"Incorrect or invalid refresh token"}"#;
    let peer = HttpPeer::start(vec![Answer::new(400, refused)]).await;
    let error = app(&peer).refresh(&client(), &SecretString::new("AB11-revoked"), at()).await.unwrap_err();
    assert_eq!(error, OAuthError::InvalidGrant { detail: "invalid_grant: Incorrect or invalid refresh token".into() });
    assert!(!error.is_transient());
    let printed = format!("{error} {error:?}");
    assert!(!printed.contains("AB11") && !printed.contains("s3cr3t"), "{printed}");
    assert_eq!(peer.received().len(), 1, "no retry");
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut app = app(&HttpPeer::start(vec![]).await);
    app.token_url = format!("http://{addr}/oauth2/v1/tokens/bearer").parse().unwrap();
    let error = app.exchange_code(&client(), "code", at()).await.unwrap_err();
    assert!(matches!(error, OAuthError::Transient { retry_after: None, .. }), "{error:?}");
}

#[tokio::test]
async fn a_query_is_a_get_with_the_statement_the_minor_version_and_the_token() {
    let answer = r#"{"QueryResponse":{"Invoice":[{"Id":"239","TotalAmt":"1250.00"}],"startPosition":1,"maxResults":1},"time":"2026-11-25T01:00:00.000-08:00"}"#;
    let peer = HttpPeer::start(vec![Answer::new(200, answer)]).await;
    let statement = "select * from Invoice where MetaData.LastUpdatedTime >= '2026-11-01T00:00:00Z' STARTPOSITION 1 MAXRESULTS 1000";
    let response = company(&peer).query(&client(), &token(), statement).await.unwrap();
    assert_eq!(response["Invoice"][0]["Id"], "239");
    assert_eq!(response["startPosition"], 1);
    let r = &peer.received()[0];
    assert_eq!((r.method.as_str(), r.uri.path()), ("GET", "/v3/company/9341453050298464/query"));
    assert_eq!(param(r, "query"), statement);
    assert_eq!(param(r, "minorversion"), "75");
    assert_eq!(r.header("authorization"), "Bearer eyJ-access");
    assert_eq!(r.header("accept"), "application/json");
}

#[tokio::test]
async fn fetching_1001_ids_takes_two_queries_and_deleted_ids_are_absent() {
    let first =
        json!({"QueryResponse": {"Invoice": [{"Id": "1"}, {"Id": "1000"}], "startPosition": 1, "maxResults": 2}});
    let peer = HttpPeer::start(vec![
        Answer::new(200, &first.to_string()),
        Answer::new(200, r#"{"QueryResponse":{},"time":"2026-11-25T01:00:00.000-08:00"}"#),
    ])
    .await;
    let ids: Vec<String> = (1..=1001).map(|i| i.to_string()).collect();
    let found = company(&peer).fetch(&client(), &token(), Entity::Invoice, &ids).await.unwrap();
    assert_eq!(found.iter().map(|o| o["Id"].as_str().unwrap()).collect::<Vec<_>>(), ["1", "1000"]);
    let received = peer.received();
    assert_eq!(received.len(), 2);
    let listed: Vec<String> = (1..=1000).map(|i| format!("'{i}'")).collect();
    assert_eq!(
        param(&received[0], "query"),
        format!("select * from Invoice where Id in ({}) MAXRESULTS 1000", listed.join(", "))
    );
    assert_eq!(param(&received[1], "query"), "select * from Invoice where Id in ('1001') MAXRESULTS 1000");
    assert!(
        received.iter().all(|r| param(r, "minorversion") == "75" && r.header("authorization") == "Bearer eyJ-access")
    );
}

#[tokio::test]
async fn fetch_statements_can_name_fewer_ids_and_bad_ids_are_refused_before_any_call() {
    let peer = HttpPeer::start(vec![
        Answer::new(200, r#"{"QueryResponse":{"Bill":[{"Id":"4"}]}}"#),
        Answer::new(200, r#"{"QueryResponse":{"Bill":[{"Id":"6"}]}}"#),
    ])
    .await;
    let api = company(&peer).with_ids_per_query(2);
    let ids: Vec<String> = ["4", "5", "6"].map(String::from).to_vec();
    let found = api.fetch(&client(), &token(), Entity::Bill, &ids).await.unwrap();
    assert_eq!(found, [json!({"Id": "4"}), json!({"Id": "6"})]);
    let statements: Vec<String> = peer.received().iter().map(|r| param(r, "query")).collect();
    assert_eq!(
        statements,
        [
            "select * from Bill where Id in ('4', '5') MAXRESULTS 1000",
            "select * from Bill where Id in ('6') MAXRESULTS 1000"
        ]
    );
    let injection = vec!["7".to_owned(), "7') or Id > ('0".to_owned()];
    let error = api.fetch(&client(), &token(), Entity::Bill, &injection).await.unwrap_err();
    assert!(matches!(error, ApiError::Invalid { .. }), "{error:?}");
    assert_eq!(peer.received().len(), 2, "nothing sent");
}

#[tokio::test]
async fn cdc_lists_changed_and_deleted_objects_and_says_when_a_list_is_cut() {
    let changed = json!({
        "CDCResponse": [{"QueryResponse": [
            {"Invoice": [{"Id": "239", "SyncToken": "3", "Balance": "0"}], "startPosition": 1, "maxResults": 1, "totalCount": 1},
            {"Bill": [{"domain": "QBO", "status": "Deleted", "Id": "5",
                       "MetaData": {"LastUpdatedTime": "2026-11-24T15:12:04-08:00"}}]}
        ]}],
        "time": "2026-11-25T09:00:00.000-08:00"
    });
    let invoices: Vec<Value> = (1..=1000).map(|i| json!({"Id": i.to_string()})).collect();
    let cut =
        json!({"CDCResponse": [{"QueryResponse": [{"Invoice": invoices}]}], "time": "2026-11-25T09:00:01.000-08:00"});
    let peer = HttpPeer::start(vec![Answer::new(200, &changed.to_string()), Answer::new(200, &cut.to_string())]).await;
    let api = company(&peer);
    let since = at() - chrono::Duration::days(2);

    let answer = api.cdc(&client(), &token(), &[Entity::Invoice, Entity::Bill], since, at()).await.unwrap();
    assert_eq!(answer.objects(Entity::Invoice)[0]["Id"], "239");
    let bills = answer.objects(Entity::Bill);
    assert_eq!((bills.len(), bills[0]["Id"].as_str(), is_deleted(&bills[0])), (1, Some("5"), true));
    assert!(answer.truncated.is_empty());
    assert_eq!(answer.time, Some("2026-11-25T17:00:00Z".parse().unwrap()));
    let r = &peer.received()[0];
    assert_eq!(r.uri.path(), "/v3/company/9341453050298464/cdc");
    assert_eq!(
        pairs(r.uri.query().unwrap()),
        [
            ("entities".to_owned(), "Invoice,Bill".to_owned()),
            ("changedSince".to_owned(), "2026-11-23T09:00:00Z".to_owned()),
            ("minorversion".to_owned(), "75".to_owned()),
        ]
    );

    let answer = api.cdc(&client(), &token(), &[Entity::Invoice], since, at()).await.unwrap();
    assert_eq!(answer.objects(Entity::Invoice).len(), 1000);
    assert_eq!(answer.truncated, [Entity::Invoice], "1000 objects: the window must be split");

    let error = api.cdc(&client(), &token(), &Entity::ALL, at() - chrono::Duration::days(31), at()).await.unwrap_err();
    assert!(matches!(error, ApiError::Invalid { .. }), "{error:?}");
    assert_eq!(peer.received().len(), 2, "a window CDC cannot answer is not asked");
}

#[tokio::test]
async fn a_429_pauses_the_company_for_retry_after_or_a_minute() {
    let peer = HttpPeer::start(vec![Answer::new(429, "").with("retry-after", "120"), Answer::new(429, "")]).await;
    let api = company(&peer);
    let before = tokio::time::Instant::now();
    let error = api.query(&client(), &token(), "select * from Invoice").await.unwrap_err();
    assert_eq!(error, ApiError::RateLimited { retry_after: chrono::Duration::seconds(120) });
    assert!(error.is_transient());
    let paused = api.limiter().paused_until().expect("paused");
    assert!(paused >= before + Duration::from_secs(120) && paused < before + Duration::from_secs(125), "{paused:?}");

    let other = company(&peer);
    let before = tokio::time::Instant::now();
    let error = other.query(&client(), &token(), "select * from Bill").await.unwrap_err();
    assert_eq!(error, ApiError::RateLimited { retry_after: chrono::Duration::seconds(60) });
    let paused = other.limiter().paused_until().expect("paused");
    assert!(paused >= before + Duration::from_secs(60) && paused < before + Duration::from_secs(65), "{paused:?}");
}

#[tokio::test]
async fn a_401_is_unauthorized_whatever_its_body_says() {
    let expired = r#"{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}"#;
    let peer = HttpPeer::start(vec![Answer::new(401, expired)]).await;
    let error = company(&peer).query(&client(), &token(), "select * from Invoice").await.unwrap_err();
    assert_eq!(error, ApiError::Unauthorized);
    assert!(!error.is_transient(), "a new token is needed first");
}

#[tokio::test]
async fn a_fault_inside_a_200_is_an_error() {
    let fault = r#"{"Fault":{"Error":[{"Message":"Error parsing query","Detail":"QueryParserError: Encountered \"from\"","code":"4000"}],"type":"ValidationFault"},"time":"2026-11-25T01:00:00.000-08:00"}"#;
    let peer = HttpPeer::start(vec![Answer::new(200, fault)]).await;
    let ids = vec!["239".to_owned()];
    let error = company(&peer).fetch(&client(), &token(), Entity::Invoice, &ids).await.unwrap_err();
    match &error {
        ApiError::Fault { kind, detail } => {
            assert_eq!(kind, "ValidationFault");
            assert!(detail.starts_with("4000 Error parsing query"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_500_is_a_server_error_to_back_off_from() {
    let peer = HttpPeer::start(vec![Answer::new(500, "<html>Internal Server Error</html>")]).await;
    let api = company(&peer);
    let error = api.cdc(&client(), &token(), &[Entity::Payment], at(), at()).await.unwrap_err();
    assert_eq!(error, ApiError::Server { status: 500, detail: "<html>Internal Server Error</html>".into() });
    assert!(error.is_transient());
    assert_eq!(api.limiter().paused_until(), None, "only a 429 pauses the company");
}

#[tokio::test]
async fn no_answer_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let api = CompanyApi::new(REALM, &format!("http://{addr}"), Limiter::default()).unwrap();
    let error = api.query(&client(), &token(), "select * from Deposit").await.unwrap_err();
    assert!(matches!(&error, ApiError::Transport { .. }), "{error:?}");
    assert!(error.is_transient());
}
