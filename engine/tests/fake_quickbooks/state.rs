//! What the fake remembers: its clock, the companies and their entities (with deletions, for
//! CDC), OAuth grants, armed failures, traffic and the request log. Everything here is plain data
//! behind the handle's one mutex, never held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound as _, Utc};
use serde_json::{Value, json};

use super::faults::{Failure, qbo_time};
use super::routes::{Endpoint, Recorded};

/// The QuickBooks entities the fake keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A receivable.
    Invoice,
    /// A payable.
    Bill,
    /// A payment received.
    Payment,
    /// A bank deposit.
    Deposit,
}

impl Kind {
    /// All of them, in CDC's usual order.
    pub const ALL: [Kind; 4] = [Kind::Invoice, Kind::Bill, Kind::Payment, Kind::Deposit];

    /// The entity's name in JSON and queries: `Invoice`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Invoice => "Invoice",
            Kind::Bill => "Bill",
            Kind::Payment => "Payment",
            Kind::Deposit => "Deposit",
        }
    }

    /// The entity by its name, in any case (`Invoice`, `invoice`).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The entity by its URL segment, which QuickBooks writes in lowercase (`invoice`).
    pub fn from_path(segment: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name().to_ascii_lowercase() == segment)
    }
}

/// One entity as stored: its JSON (with `Id`, `SyncToken`, `MetaData`) and, for ordering, its
/// last update and the change sequence number that breaks ties between equal instants.
pub(crate) struct Stored {
    pub json: Value,
    pub updated: DateTime<Utc>,
    pub seq: u64,
}

/// A deletion, as CDC reports it.
pub(crate) struct Deleted {
    pub kind: Kind,
    pub id: String,
    pub at: DateTime<Utc>,
    pub seq: u64,
}

/// One company (realm).
#[derive(Default)]
pub(crate) struct Company {
    pub entities: BTreeMap<Kind, BTreeMap<String, Stored>>,
    pub deleted: Vec<Deleted>,
    next_id: u64,
}

/// An issued token: which company it opens, and when (the fake's clock) it was issued.
pub(crate) struct Issued {
    pub realm: String,
    pub at: DateTime<Utc>,
}

/// An authorization code the authorize endpoint handed out.
pub(crate) struct Code {
    pub realm: String,
    pub redirect_uri: String,
}

/// A failure armed by `fail_next`.
pub(crate) struct Armed {
    pub scope: Endpoint,
    pub failure: Failure,
    pub remaining: usize,
}

/// One company's traffic, by the real clock.
#[derive(Default)]
pub(crate) struct Traffic {
    pub in_flight: usize,
    pub max_in_flight: usize,
    /// Arrivals of the last minute.
    pub recent: VecDeque<Instant>,
}

/// QuickBooks' limits per company.
pub(crate) const MAX_CONCURRENT: usize = 10;
pub(crate) const MAX_PER_SECOND: usize = 10;
pub(crate) const MAX_PER_MINUTE: usize = 500;

/// How long tokens live, in seconds (QuickBooks' figures).
pub(crate) const ACCESS_TOKEN_SECONDS: i64 = 3600;
pub(crate) const REFRESH_TOKEN_SECONDS: i64 = 8_726_400;

/// The client the token endpoint accepts until `set_client` says otherwise.
pub(crate) const DEFAULT_CLIENT: (&str, &str) = ("fake-client-id", "fake-client-secret");

pub(crate) struct State {
    pub now: DateTime<Utc>,
    pub companies: BTreeMap<String, Company>,
    seq: u64,
    // OAuth
    pub client: (String, String),
    pub rotate_refresh_tokens: bool,
    pub approve_as: Option<String>,
    pub codes: HashMap<String, Code>,
    pub access_tokens: HashMap<String, Issued>,
    pub refresh_tokens: HashMap<String, Issued>,
    issued: u64,
    // Behaviour
    pub failures: VecDeque<Armed>,
    pub enforce_limits: bool,
    pub latency: Option<Duration>,
    // Observation
    pub traffic: HashMap<String, Traffic>,
    pub limit_violations: usize,
    pub log: Vec<Recorded>,
    pub minorversion_missing: Vec<Recorded>,
}

impl State {
    pub fn new(now: DateTime<Utc>) -> State {
        State {
            now,
            companies: BTreeMap::new(),
            seq: 0,
            client: (DEFAULT_CLIENT.0.to_owned(), DEFAULT_CLIENT.1.to_owned()),
            rotate_refresh_tokens: true,
            approve_as: None,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            issued: 0,
            failures: VecDeque::new(),
            enforce_limits: false,
            latency: None,
            traffic: HashMap::new(),
            limit_violations: 0,
            log: Vec::new(),
            minorversion_missing: Vec::new(),
        }
    }

    /// The company `realm`; a test naming a company it did not add is a broken test.
    pub fn company(&mut self, realm: &str) -> &mut Company {
        self.companies.get_mut(realm).unwrap_or_else(|| panic!("no company {realm}: call add_company first"))
    }

    /// Stores `json` as entity `kind` of `realm`: a new one (`Id` given or assigned, `SyncToken`
    /// 0, `CreateTime` now) or a replacement of the stored one (`SyncToken` bumped, `CreateTime`
    /// kept). `LastUpdatedTime` is now either way. Returns the id.
    pub fn put(&mut self, realm: &str, kind: Kind, mut json: Value) -> String {
        let now = self.now.trunc_subsecs(0);
        self.seq += 1;
        let seq = self.seq;
        let company = self.company(realm);
        let id = match json.get("Id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                company.next_id += 1;
                company.next_id.to_string()
            }
        };
        if let Ok(n) = id.parse::<u64>() {
            company.next_id = company.next_id.max(n);
        }
        let entities = company.entities.entry(kind).or_default();
        let (sync, created) = match entities.get(&id) {
            Some(old) => (sync_token(&old.json) + 1, old.json["MetaData"]["CreateTime"].clone()),
            None => (0, json!(qbo_time(now))),
        };
        let Some(object) = json.as_object_mut() else { panic!("test data: a {} is a JSON object", kind.name()) };
        object.insert("Id".into(), json!(id));
        object.insert("SyncToken".into(), json!(sync.to_string()));
        object.entry("domain").or_insert_with(|| json!("QBO"));
        object.entry("sparse").or_insert_with(|| json!(false));
        object.insert("MetaData".into(), json!({"CreateTime": created, "LastUpdatedTime": qbo_time(now)}));
        entities.insert(id.clone(), Stored { json, updated: now, seq });
        company.deleted.retain(|d| !(d.kind == kind && d.id == id));
        id
    }

    /// The stored JSON of an entity.
    pub fn get(&mut self, realm: &str, kind: Kind, id: &str) -> Option<Value> {
        self.company(realm).entities.get(&kind).and_then(|e| e.get(id)).map(|s| s.json.clone())
    }

    /// Changes an entity with `change`, then stores it as `put` does; `None` when it is missing.
    pub fn update(&mut self, realm: &str, kind: Kind, id: &str, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let mut json = self.get(realm, kind, id)?;
        change(&mut json);
        json["Id"] = json!(id);
        self.put(realm, kind, json);
        self.get(realm, kind, id)
    }

    /// Deletes an entity, remembering when for CDC; `false` when it is missing.
    pub fn delete(&mut self, realm: &str, kind: Kind, id: &str) -> bool {
        let at = self.now.trunc_subsecs(0);
        self.seq += 1;
        let seq = self.seq;
        let company = self.company(realm);
        let removed = company.entities.get_mut(&kind).and_then(|e| e.remove(id)).is_some();
        if removed {
            company.deleted.push(Deleted { kind, id: id.to_owned(), at, seq });
        }
        removed
    }

    /// A new token string, unique within this fake.
    pub fn token(&mut self, prefix: &str) -> String {
        self.issued += 1;
        format!("{prefix}-{:06}", self.issued)
    }
}

/// An entity's `SyncToken` as a number (0 when absent or unreadable).
fn sync_token(json: &Value) -> u64 {
    json.get("SyncToken").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// `a` and `b` as QuickBooks orders ids: numerically when both are numbers.
pub(crate) fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// What QuickBooks does to a voided invoice: every amount 0, `PrivateNote` prefixed "Voided".
pub(crate) fn void(json: &mut Value) {
    json["TotalAmt"] = json!(0);
    json["Balance"] = json!(0);
    if let Some(lines) = json.get_mut("Line").and_then(Value::as_array_mut) {
        for line in lines {
            line["Amount"] = json!(0);
        }
    }
    if json.get("TxnTaxDetail").is_some_and(Value::is_object) {
        json["TxnTaxDetail"]["TotalTax"] = json!(0);
    }
    let note = json.get("PrivateNote").and_then(Value::as_str).unwrap_or_default();
    json["PrivateNote"] = json!(if note.is_empty() { "Voided".to_owned() } else { format!("Voided - {note}") });
}
