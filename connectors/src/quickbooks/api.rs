//! Reading a QuickBooks Online company (DOMAIN.md §5): queries, fetching many entities by id, and
//! change data capture (CDC) to catch up on what webhooks missed.
//!
//! Every request names `minorversion`, asks for JSON, carries the access token it is given (the
//! engine keeps and refreshes tokens) and waits for its turn in the company's [`Limiter`]. The
//! client neither sleeps nor retries — the engine keeps retry state durably — except that a 429
//! pauses the limiter. Entities come back as JSON values: turning them into records is done
//! elsewhere. URLs, statements and answers are built and read by pure functions, tested offline.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde_json::Value;

use super::MINOR_VERSION;
use super::fault;
use super::limits::Limiter;
use crate::http::{self, HttpError};
use crate::secret::SecretString;

/// The production API.
pub const PRODUCTION: &str = "https://quickbooks.api.intuit.com";
/// The sandbox API.
pub const SANDBOX: &str = "https://sandbox-quickbooks.api.intuit.com";
/// The most objects one query or CDC answer holds, and so the most ids one fetch statement names.
pub const MAX_RESULTS: usize = 1000;
/// How far back CDC reaches, in days.
pub const CDC_LOOK_BACK_DAYS: i64 = 30;
/// The largest answer read (1000 invoices of many lines fit several times over).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The kinds of QuickBooks entities invoiceflow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    /// `Invoice`.
    Invoice,
    /// `Bill`.
    Bill,
    /// `Payment` (a customer's).
    Payment,
    /// `Deposit`.
    Deposit,
}

impl Entity {
    /// Every kind, in the order above.
    pub const ALL: [Entity; 4] = [Entity::Invoice, Entity::Bill, Entity::Payment, Entity::Deposit];

    /// Its name in the API (`Invoice`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Invoice => "Invoice",
            Entity::Bill => "Bill",
            Entity::Payment => "Payment",
            Entity::Deposit => "Deposit",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is none of the [`Entity`] kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an entity invoiceflow reads (Invoice, Bill, Payment, Deposit)")]
pub struct UnknownEntity(pub String);

impl FromStr for Entity {
    type Err = UnknownEntity;

    /// The kind named `name`, whatever its case (webhooks say `Invoice`, CloudEvents `invoice`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Entity::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownEntity(name.into()))
    }
}

/// Why a call gave no answer to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// HTTP 401: the access token expired or was revoked. Refresh it once and try again; if that
    /// fails too, the company needs reconnecting.
    #[error("QuickBooks refused the access token (HTTP 401)")]
    Unauthorized,
    /// HTTP 429: the company's limits are exceeded; its limiter is paused for `retry_after`.
    #[error("QuickBooks: too many requests (HTTP 429), wait {} s", retry_after.num_seconds())]
    RateLimited {
        /// How long to wait: `Retry-After`, or 60 s.
        retry_after: chrono::Duration,
    },
    /// A `Fault` in the answer, whatever its status (an HTTP 200 included): a bad query (a
    /// `ValidationFault`), a missing permission… Only a `SystemFault` is worth trying again.
    #[error("QuickBooks {kind}: {detail}")]
    Fault {
        /// The fault's `type`.
        kind: String,
        /// Its errors, each as `code Message: Detail`.
        detail: String,
    },
    /// HTTP 5xx or 408: back off and try again.
    #[error("QuickBooks HTTP {status}: {detail}")]
    Server {
        /// The status.
        status: u16,
        /// The fault's errors, or an excerpt of the answer.
        detail: String,
    },
    /// No answer: DNS, connection, timeout.
    #[error("QuickBooks did not answer: {detail}")]
    Transport {
        /// What happened.
        detail: String,
    },
    /// A request refused before it was sent (an id that is not a QuickBooks id, a CDC window
    /// older than 30 days) or an answer that cannot be read.
    #[error("invalid QuickBooks request or answer: {detail}")]
    Invalid {
        /// What is wrong.
        detail: String,
    },
    /// Another HTTP 4xx (or 3xx) without a fault: not worth trying again as is.
    #[error("QuickBooks refused the request (HTTP {status}): {detail}")]
    Refused {
        /// The status.
        status: u16,
        /// An excerpt of the answer.
        detail: String,
    },
}

impl ApiError {
    /// Whether the same call may succeed later, unchanged (after a back-off or the 429's wait).
    /// [`ApiError::Unauthorized`] is not: it needs a new token first.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Server { .. } | Self::Transport { .. } => true,
            Self::Fault { kind, .. } => kind.eq_ignore_ascii_case("SystemFault"),
            Self::Unauthorized | Self::Invalid { .. } | Self::Refused { .. } => false,
        }
    }
}

/// What CDC answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CdcAnswer {
    /// Each kind asked for, with the objects changed since the given instant (deleted ones as
    /// `{"status":"Deleted","Id",…}`: see [`is_deleted`]).
    pub entities: Vec<(Entity, Vec<Value>)>,
    /// Kinds whose answer may be cut at [`MAX_RESULTS`] objects: ask again over shorter windows.
    pub truncated: Vec<Entity>,
    /// QuickBooks' time of the answer, the next window's start.
    pub time: Option<DateTime<Utc>>,
}

impl CdcAnswer {
    /// The changed objects of kind `entity`.
    pub fn objects(&self, entity: Entity) -> &[Value] {
        self.entities.iter().find(|(e, _)| *e == entity).map_or(&[], |(_, objects)| objects)
    }
}

/// Whether `object`, from a CDC answer, was deleted.
pub fn is_deleted(object: &Value) -> bool {
    object.get("status").and_then(Value::as_str) == Some("Deleted")
}

/// One company's API.
#[derive(Debug, Clone)]
pub struct CompanyApi {
    realm_id: String,
    base: Url,
    limiter: Limiter,
    ids_per_query: usize,
}

impl CompanyApi {
    /// The company `realm_id` at the API `base` ([`PRODUCTION`], [`SANDBOX`] or a test server),
    /// paced by `limiter` (the company's, shared by everything that calls it). The API base is an
    /// operator's setting, not a webhook target: it is not held to the private-address guard.
    ///
    /// # Errors
    /// [`HttpError`] for a base that is not an http(s) URL.
    pub fn new(realm_id: &str, base: &str, limiter: Limiter) -> Result<Self, HttpError> {
        Ok(Self { realm_id: realm_id.to_owned(), base: http::target(base, true)?, limiter, ids_per_query: MAX_RESULTS })
    }

    /// The same, naming at most `n` ids per fetch statement (1 to [`MAX_RESULTS`], the default).
    pub fn with_ids_per_query(mut self, n: usize) -> Self {
        self.ids_per_query = n.clamp(1, MAX_RESULTS);
        self
    }

    /// The company's realm id.
    pub fn realm_id(&self) -> &str {
        &self.realm_id
    }

    /// The company's limiter.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Runs the query `statement` as written (`select * from Invoice where … STARTPOSITION 1
    /// MAXRESULTS 1000`: literals quoted by the caller) and returns its `QueryResponse`.
    ///
    /// # Errors
    /// [`ApiError`], as documented on each variant.
    pub async fn query(
        &self,
        client: &reqwest::Client,
        token: &SecretString,
        statement: &str,
    ) -> Result<Value, ApiError> {
        let mut answer = self.get(client, token, self.url("query", &[("query", statement)])).await?;
        match answer.as_object_mut().and_then(|a| a.remove("QueryResponse")) {
            Some(response @ Value::Object(_)) => Ok(response),
            _ => Err(invalid("the query answer has no QueryResponse object")),
        }
    }

    /// The entities of kind `entity` with these `ids`, in as few queries as possible (at most
    /// [`MAX_RESULTS`] ids each). Ids that do not come back are simply absent: deleted since.
    ///
    /// # Errors
    /// [`ApiError::Invalid`], before any call, for an id that is not a QuickBooks id (digits);
    /// else [`ApiError`] from the first query that fails.
    pub async fn fetch(
        &self,
        client: &reqwest::Client,
        token: &SecretString,
        entity: Entity,
        ids: &[String],
    ) -> Result<Vec<Value>, ApiError> {
        let ids = checked_ids(ids)?;
        let mut found = Vec::new();
        for chunk in ids.chunks(self.ids_per_query) {
            let mut response = self.query(client, token, &fetch_statement(entity, chunk)).await?;
            match response.as_object_mut().and_then(|r| r.remove(entity.as_str())) {
                None => {}
                Some(Value::Array(objects)) => found.extend(objects),
                Some(_) => return Err(invalid(&format!("the query answer's {entity} is not a list"))),
            }
        }
        Ok(found)
    }

    /// The objects of kinds `entities` changed since `changed_since`, asked at `now`.
    ///
    /// # Errors
    /// [`ApiError::Invalid`], before any call, when `entities` is empty or `changed_since` is more
    /// than [`CDC_LOOK_BACK_DAYS`] before `now` (query instead); else [`ApiError`].
    pub async fn cdc(
        &self,
        client: &reqwest::Client,
        token: &SecretString,
        entities: &[Entity],
        changed_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<CdcAnswer, ApiError> {
        let url = self.cdc_url(entities, changed_since, now)?;
        let answer = self.get(client, token, url).await?;
        read_cdc(answer, entities)
    }

    /// Asks QuickBooks, in the company's turn, to email invoice `id` with its own template (to
    /// `to` instead of its `BillEmail` when given); `request_id` is the delivery's idempotency
    /// key. What the answer means for the delivery is [`super::classify`]'s.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] for a 401 only, so that the caller refreshes the token.
    pub async fn send_invoice(
        &self,
        client: &reqwest::Client,
        token: &SecretString,
        id: &str,
        to: Option<&str>,
        request_id: &str,
    ) -> Result<crate::Attempted, ApiError> {
        let _permit = self.limiter.acquire().await;
        let sent = client
            .post(super::send_invoice_url(&self.base, &self.realm_id, id, to))
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header("Request-Id", request_id)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Ok(http::unanswered(&e)),
        };
        let status = response.status().as_u16();
        if status == 401 {
            return Err(ApiError::Unauthorized);
        }
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = match read_body(response).await {
            Ok(body) => body,
            Err(e) => return Ok(crate::Attempted::Transient { retry_after: None, detail: e.to_string() }),
        };
        let attempted = super::classify(status, &body, retry_after.as_deref());
        if let crate::Attempted::Transient { retry_after: Some(wait), .. } = &attempted
            && status == 429
        {
            let wait = wait.to_std().unwrap_or(std::time::Duration::from_secs(60));
            self.limiter.pause_until(tokio::time::Instant::now() + wait);
        }
        Ok(attempted)
    }

    /// `{base}/v3/company/{realm}/{endpoint}?{pairs}&minorversion=…`.
    fn url(&self, endpoint: &str, pairs: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v3", "company", &self.realm_id, endpoint]);
        }
        url.query_pairs_mut().extend_pairs(pairs).append_pair("minorversion", &MINOR_VERSION.to_string());
        url
    }

    /// The CDC URL, for a window CDC can answer.
    fn cdc_url(&self, entities: &[Entity], changed_since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Url, ApiError> {
        if entities.is_empty() {
            return Err(invalid("CDC needs at least one entity"));
        }
        if changed_since < now - chrono::Duration::days(CDC_LOOK_BACK_DAYS) {
            return Err(invalid(&format!(
                "CDC reaches {CDC_LOOK_BACK_DAYS} days back, not to {changed_since}: query instead"
            )));
        }
        let names: Vec<&str> = unique(entities).into_iter().map(Entity::as_str).collect();
        // Whole seconds, rounded down: the window can only grow.
        let since = changed_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(self.url("cdc", &[("entities", &names.join(",")), ("changedSince", &since)]))
    }

    /// One GET in the company's turn; a 429 pauses the company.
    async fn get(&self, client: &reqwest::Client, token: &SecretString, url: Url) -> Result<Value, ApiError> {
        let _permit = self.limiter.acquire().await;
        let response = client
            .get(url)
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            // Without the URL: a fetch's is kilobytes of ids.
            .map_err(|e| ApiError::Transport { detail: http::describe(&e.without_url()) })?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = read_body(response).await?;
        let answer = read_answer(status, retry_after.as_deref(), &body);
        if let Err(ApiError::RateLimited { retry_after }) = &answer {
            let wait = retry_after.to_std().unwrap_or(std::time::Duration::from_secs(60));
            self.limiter.pause_until(tokio::time::Instant::now() + wait);
        }
        answer
    }
}

fn invalid(detail: &str) -> ApiError {
    ApiError::Invalid { detail: detail.to_owned() }
}

/// The body of an answer, up to [`MAX_BODY`].
async fn read_body(mut response: reqwest::Response) -> Result<String, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| ApiError::Transport { detail: http::describe(&e.without_url()) })?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(invalid(&format!("the answer is larger than {} MiB", MAX_BODY / (1024 * 1024))));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// What an answer (status, `Retry-After`, body) means: its JSON, or why there is none to use.
/// The status decides first for a 401, a 429 and a 5xx (their bodies hold a fault too); then a
/// fault is an error whatever the status.
fn read_answer(status: u16, retry_after: Option<&str>, body: &str) -> Result<Value, ApiError> {
    let json = serde_json::from_str::<Value>(body);
    let fault = json.as_ref().ok().and_then(fault::in_value);
    let excerpt = || body.chars().take(200).collect::<String>().trim().to_owned();
    match status {
        401 => return Err(ApiError::Unauthorized),
        429 => {
            let retry_after = retry_after.and_then(http::retry_after_seconds);
            return Err(ApiError::RateLimited {
                retry_after: retry_after.unwrap_or_else(|| chrono::Duration::seconds(60)),
            });
        }
        408 | 500..=599 => {
            let detail = fault.map_or_else(excerpt, |f| format!("{}: {}", f.kind, f.detail));
            return Err(ApiError::Server { status, detail });
        }
        _ => {}
    }
    if let Some(fault) = fault {
        return Err(ApiError::Fault { kind: fault.kind, detail: fault.detail });
    }
    match status {
        200..=299 => json.map_err(|e| invalid(&format!("the answer is not JSON: {e}"))),
        _ => Err(ApiError::Refused { status, detail: excerpt() }),
    }
}

/// `ids` checked to be QuickBooks ids (digits: nothing can escape a quoted literal), each once.
fn checked_ids(ids: &[String]) -> Result<Vec<&str>, ApiError> {
    let mut checked: Vec<&str> = Vec::with_capacity(ids.len());
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for id in ids {
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            let shown: String = id.chars().take(40).collect();
            return Err(invalid(&format!("{shown:?} is not a QuickBooks id (digits only)")));
        }
        if seen.insert(id.as_str()) {
            checked.push(id);
        }
    }
    Ok(checked)
}

/// `select * from {entity} where Id in ('1', '2', …) MAXRESULTS 1000`, for checked ids.
fn fetch_statement(entity: Entity, ids: &[&str]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    format!("select * from {entity} where Id in ({}) MAXRESULTS {MAX_RESULTS}", quoted.join(", "))
}

/// `entities`, each once, in their order.
fn unique(entities: &[Entity]) -> Vec<Entity> {
    let mut once = Vec::with_capacity(entities.len());
    for e in entities {
        if !once.contains(e) {
            once.push(*e);
        }
    }
    once
}

/// A CDC answer's objects for each kind asked (`asked`), the kinds possibly cut, and its time.
///
/// Intuit documents the 1000-object cap per answer without saying whether it counts per kind or
/// in total: a kind with 1000 objects is cut, and 1000 in total may have cut any kind asked.
fn read_cdc(answer: Value, asked: &[Entity]) -> Result<CdcAnswer, ApiError> {
    let Value::Object(mut answer) = answer else { return Err(invalid("the CDC answer is not an object")) };
    let time = answer
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc());
    let Some(Value::Array(responses)) = answer.remove("CDCResponse") else {
        return Err(invalid("the CDC answer has no CDCResponse list"));
    };
    let mut entities: Vec<(Entity, Vec<Value>)> = unique(asked).into_iter().map(|e| (e, Vec::new())).collect();
    for response in responses {
        if let Some(fault) = fault::in_value(&response) {
            return Err(ApiError::Fault { kind: fault.kind, detail: fault.detail });
        }
        let Value::Object(mut response) = response else { continue };
        let lists = match response.remove("QueryResponse") {
            Some(Value::Array(lists)) => lists,
            Some(list @ Value::Object(_)) => vec![list],
            _ => continue,
        };
        for list in lists {
            let Value::Object(list) = list else { continue };
            for (name, objects) in list {
                let (Ok(entity), Value::Array(objects)) = (name.parse::<Entity>(), objects) else { continue };
                if let Some((_, found)) = entities.iter_mut().find(|(e, _)| *e == entity) {
                    found.extend(objects);
                }
            }
        }
    }
    let total: usize = entities.iter().map(|(_, objects)| objects.len()).sum();
    let truncated = entities
        .iter()
        .filter(|(_, objects)| total >= MAX_RESULTS || objects.len() >= MAX_RESULTS)
        .map(|(e, _)| *e)
        .collect();
    Ok(CdcAnswer { entities, truncated, time })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api() -> CompanyApi {
        CompanyApi::new("9341", "http://127.0.0.1:9000/qbo", Limiter::default()).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn entities_are_named_as_the_api_names_them_and_read_whatever_the_case() {
        assert_eq!(Entity::ALL.map(Entity::as_str), ["Invoice", "Bill", "Payment", "Deposit"]);
        assert_eq!("invoice".parse(), Ok(Entity::Invoice));
        assert_eq!("DEPOSIT".parse(), Ok(Entity::Deposit));
        assert_eq!("Vendor".parse::<Entity>(), Err(UnknownEntity("Vendor".into())));
    }

    #[test]
    fn urls_name_the_company_the_endpoint_and_the_minor_version() {
        assert_eq!(
            api().url("query", &[("query", "select * from Bill")]).as_str(),
            "http://127.0.0.1:9000/qbo/v3/company/9341/query?query=select+*+from+Bill&minorversion=75"
        );
        let production = CompanyApi::new("1", PRODUCTION, Limiter::default()).unwrap();
        assert_eq!(
            production.url("cdc", &[]).as_str(),
            "https://quickbooks.api.intuit.com/v3/company/1/cdc?minorversion=75"
        );
    }

    #[test]
    fn fetch_statements_quote_checked_ids_once_each() {
        let ids: Vec<String> = ["12", "7", "12"].map(String::from).to_vec();
        let checked = checked_ids(&ids).unwrap();
        assert_eq!(checked, ["12", "7"]);
        assert_eq!(
            fetch_statement(Entity::Invoice, &checked),
            "select * from Invoice where Id in ('12', '7') MAXRESULTS 1000"
        );
    }

    #[test]
    fn ids_that_could_escape_the_statement_are_refused() {
        for bad in ["1' or '1'='1", "1\\", "", "12a", " 12", "١٢"] {
            let ids = vec!["1".to_owned(), bad.to_owned()];
            assert!(matches!(checked_ids(&ids), Err(ApiError::Invalid { .. })), "{bad:?}");
        }
    }

    #[test]
    fn cdc_reaches_thirty_days_back_at_most() {
        let now = at("2026-11-25T09:00:00Z");
        let url = api().cdc_url(&[Entity::Invoice, Entity::Bill, Entity::Invoice], at("2026-11-24T08:30:15.250Z"), now);
        let url = url.unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(
            pairs,
            [
                ("entities".into(), "Invoice,Bill".into()),
                ("changedSince".into(), "2026-11-24T08:30:15Z".into()),
                ("minorversion".into(), "75".into())
            ]
        );
        assert!(api().cdc_url(&Entity::ALL, now - chrono::Duration::days(30), now).is_ok());
        let too_old = now - chrono::Duration::days(30) - chrono::Duration::seconds(1);
        assert!(matches!(api().cdc_url(&Entity::ALL, too_old, now), Err(ApiError::Invalid { .. })));
        assert!(matches!(api().cdc_url(&[], now, now), Err(ApiError::Invalid { .. })));
    }

    #[test]
    fn the_status_decides_for_401_429_and_5xx() {
        let expired = r#"{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}"#;
        assert_eq!(read_answer(401, None, expired), Err(ApiError::Unauthorized));
        assert_eq!(
            read_answer(429, None, ""),
            Err(ApiError::RateLimited { retry_after: chrono::Duration::seconds(60) })
        );
        assert_eq!(
            read_answer(429, Some("7"), ""),
            Err(ApiError::RateLimited { retry_after: chrono::Duration::seconds(7) })
        );
        let system = r#"{"Fault":{"Error":[{"Message":"Internal","code":"10000"}],"type":"SystemFault"}}"#;
        assert_eq!(
            read_answer(503, None, system),
            Err(ApiError::Server { status: 503, detail: "SystemFault: 10000 Internal:".into() })
        );
        assert_eq!(read_answer(408, None, "slow"), Err(ApiError::Server { status: 408, detail: "slow".into() }));
    }

    #[test]
    fn a_fault_is_an_error_whatever_the_status() {
        let parse = r#"{"Fault":{"Error":[{"Message":"Error parsing query","Detail":"QueryParserError","code":"4000"}],"type":"ValidationFault"},"time":"2026-11-25T09:00:00.000-08:00"}"#;
        for status in [200, 400] {
            let error = read_answer(status, None, parse).unwrap_err();
            assert_eq!(
                error,
                ApiError::Fault {
                    kind: "ValidationFault".into(),
                    detail: "4000 Error parsing query: QueryParserError".into()
                }
            );
            assert!(!error.is_transient());
        }
        assert!(read_answer(200, None, r#"{"Fault":{"type":"SystemFault"}}"#).unwrap_err().is_transient());
    }

    #[test]
    fn other_answers_are_json_refusals_or_unreadable() {
        assert_eq!(read_answer(200, None, r#"{"QueryResponse":{}}"#), Ok(json!({"QueryResponse": {}})));
        assert!(matches!(read_answer(200, None, "<html>"), Err(ApiError::Invalid { .. })));
        assert_eq!(read_answer(404, None, "gone"), Err(ApiError::Refused { status: 404, detail: "gone".into() }));
        assert!(!ApiError::Unauthorized.is_transient());
        assert!(ApiError::Transport { detail: "reset".into() }.is_transient());
    }

    #[test]
    fn cdc_answers_list_changed_and_deleted_objects_by_kind() {
        let answer = json!({
            "CDCResponse": [{"QueryResponse": [
                {"Invoice": [{"Id": "1", "SyncToken": "2"}, {"domain": "QBO", "status": "Deleted", "Id": "5",
                  "MetaData": {"LastUpdatedTime": "2026-11-24T10:00:00-08:00"}}],
                 "startPosition": 1, "maxResults": 2, "totalCount": 2},
                {"Payment": [{"Id": "9"}]},
                {"Vendor": [{"Id": "3"}]}
            ]}],
            "time": "2026-11-25T09:00:00.000-08:00"
        });
        let cdc = read_cdc(answer, &[Entity::Invoice, Entity::Bill, Entity::Payment]).unwrap();
        assert_eq!(
            cdc.entities.iter().map(|(e, o)| (*e, o.len())).collect::<Vec<_>>(),
            [(Entity::Invoice, 2), (Entity::Bill, 0), (Entity::Payment, 1)]
        );
        assert_eq!(cdc.objects(Entity::Invoice).iter().map(is_deleted).collect::<Vec<_>>(), [false, true]);
        assert_eq!(cdc.objects(Entity::Deposit), &[] as &[Value]);
        assert!(cdc.truncated.is_empty());
        assert_eq!(cdc.time, Some(at("2026-11-25T17:00:00Z")));
    }

    #[test]
    fn a_cdc_answer_at_the_cap_asks_for_a_shorter_window() {
        let many = |n: usize| (0..n).map(|i| json!({"Id": i.to_string()})).collect::<Vec<_>>();
        let answer = json!({"CDCResponse": [{"QueryResponse": [{"Invoice": many(1000)}, {"Bill": many(3)}]}]});
        let cdc = read_cdc(answer, &[Entity::Invoice, Entity::Bill]).unwrap();
        assert_eq!(cdc.truncated, [Entity::Invoice, Entity::Bill], "1000 in total may have cut the bills");
        let answer = json!({"CDCResponse": [{"QueryResponse": [{"Invoice": many(999)}]}]});
        assert!(read_cdc(answer, &[Entity::Invoice]).unwrap().truncated.is_empty());
        assert!(matches!(read_cdc(json!({"QueryResponse": {}}), &[Entity::Invoice]), Err(ApiError::Invalid { .. })));
    }
}
