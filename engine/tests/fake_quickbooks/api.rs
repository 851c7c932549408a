//! The accounting API under `/v3/company/{realm}/`: query, CDC, entity reads and
//! send-invoice, answered from the state in QuickBooks' shapes. Authentication and
//! `minorversion` were checked before these run.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::{Map, Value, json};

use super::faults::{
    answer_time, invalid_request, look_back_exceeded, object_not_found, parse_instant, qbo_time, query_parser_error,
};
use super::form;
use super::query::{self, Field, Order};
use super::server::Reply;
use super::state::{Kind, State, Stored, id_order};

/// CDC's look-back, and the most objects per entity one answer holds.
const CDC_LOOK_BACK_DAYS: i64 = 30;
const CDC_MAX_PER_ENTITY: usize = 1000;

/// `GET query?query=…`.
pub(crate) fn query(state: &mut State, realm: &str, params: &[(String, String)]) -> Reply {
    let now = state.now;
    let Some(text) = form::get(params, "query") else {
        return Reply::json(400, invalid_request("the query parameter is missing", now));
    };
    let statement = match query::parse(text) {
        Ok(s) => s,
        Err(detail) => return Reply::json(400, query_parser_error(&detail, now)),
    };
    let stored = state.company(realm).entities.get(&statement.kind);
    // Ids named are looked up, not every entity tested against the list: a fetch of 1,000 ids
    // from a company of tens of thousands of invoices stays cheap (the benchmarks make many).
    let candidates: Vec<(&String, &Stored)> = match (stored, statement.ids()) {
        (None, _) => Vec::new(),
        (Some(stored), Some(ids)) => {
            let ids: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
            ids.into_iter().filter_map(|id| stored.get_key_value(id)).collect()
        }
        (Some(stored), None) => stored.iter().collect(),
    };
    let mut found: Vec<(&String, &Stored)> =
        candidates.into_iter().filter(|(id, s)| statement.matches(id, s.updated)).collect();
    // Without ORDERBY, QuickBooks' order is its own; the fake's is by id, so paging is stable.
    found.sort_by(|(a_id, a), (b_id, b)| match statement.order {
        Some(Order { field: Field::LastUpdatedTime, .. }) => {
            a.updated.cmp(&b.updated).then_with(|| id_order(a_id, b_id))
        }
        Some(Order { field: Field::Id, .. }) | None => id_order(a_id, b_id),
    });
    if statement.order.is_some_and(|o| o.descending) {
        found.reverse();
    }
    let page: Vec<Value> =
        found.into_iter().skip(statement.start - 1).take(statement.max).map(|(_, s)| s.json.clone()).collect();
    let count = page.len();
    let response = if page.is_empty() {
        json!({})
    } else {
        json!({statement.kind.name(): page, "startPosition": statement.start, "maxResults": count})
    };
    Reply::json(200, json!({"QueryResponse": response, "time": answer_time(now)}))
}

/// `GET cdc?entities=…&changedSince=…`: per entity, what changed since then, oldest first and
/// at most 1000, deletions as `status: Deleted` stubs.
pub(crate) fn cdc(state: &mut State, realm: &str, params: &[(String, String)]) -> Reply {
    let now = state.now;
    let (Some(entities), Some(since)) = (form::get(params, "entities"), form::get(params, "changedSince")) else {
        return Reply::json(400, invalid_request("cdc needs entities and changedSince", now));
    };
    let Some(since) = parse_instant(since) else {
        return Reply::json(400, invalid_request(&format!("changedSince {since:?} is not a date-time"), now));
    };
    if since < now - Duration::days(CDC_LOOK_BACK_DAYS) {
        return Reply::json(400, look_back_exceeded(now));
    }
    let mut kinds = Vec::new();
    for name in entities.split(',').map(str::trim) {
        match Kind::from_name(name) {
            Some(kind) => kinds.push(kind),
            None => return Reply::json(400, invalid_request(&format!("the fake keeps no entity {name:?}"), now)),
        }
    }
    let company = state.company(realm);
    let responses: Vec<Value> = kinds
        .into_iter()
        .map(|kind| {
            let mut changes: Vec<(chrono::DateTime<chrono::Utc>, u64, Value)> = company
                .entities
                .get(&kind)
                .into_iter()
                .flat_map(|e| e.values())
                .filter(|s| s.updated >= since)
                .map(|s| (s.updated, s.seq, s.json.clone()))
                .collect();
            changes.extend(company.deleted.iter().filter(|d| d.kind == kind && d.at >= since).map(|d| {
                let stub = json!({
                    "domain": "QBO",
                    "status": "Deleted",
                    "Id": d.id,
                    "MetaData": {"LastUpdatedTime": qbo_time(d.at)},
                });
                (d.at, d.seq, stub)
            }));
            changes.sort_by_key(|(at, seq, _)| (*at, *seq));
            changes.truncate(CDC_MAX_PER_ENTITY);
            if changes.is_empty() {
                return json!({});
            }
            let n = changes.len();
            let objects: Vec<Value> = changes.into_iter().map(|(_, _, v)| v).collect();
            json!({kind.name(): objects, "startPosition": 1, "maxResults": n, "totalCount": n})
        })
        .collect();
    Reply::json(200, json!({"CDCResponse": [{"QueryResponse": responses}], "time": answer_time(now)}))
}

/// `GET <entity>/<id>`.
pub(crate) fn entity(state: &mut State, realm: &str, kind: Kind, id: &str) -> Reply {
    let now = state.now;
    match state.get(realm, kind, id) {
        Some(json) => Reply::json(200, wrapped(kind, json, now)),
        None => Reply::json(400, object_not_found(kind.name(), id, now)),
    }
}

/// `POST invoice/<id>/send[?sendTo=…]`: QuickBooks emails the invoice, to `sendTo` (which becomes
/// its `BillEmail`) or to its `BillEmail`, and marks it sent.
pub(crate) fn send(state: &mut State, realm: &str, id: &str, params: &[(String, String)]) -> Reply {
    let now = state.now;
    let Some(invoice) = state.get(realm, Kind::Invoice, id) else {
        return Reply::json(400, object_not_found("Invoice", id, now));
    };
    let to = form::get(params, "sendTo").or_else(|| invoice["BillEmail"]["Address"].as_str()).unwrap_or_default();
    if !to.contains('@') {
        let fault = super::faults::fault("ValidationFault", "6140", "Invalid Email Address", "sendTo", now);
        return Reply::json(400, fault);
    }
    let to = to.to_owned();
    let sent = state.update(realm, Kind::Invoice, id, |json| {
        json["BillEmail"] = json!({"Address": to});
        json["EmailStatus"] = json!("EmailSent");
        json["DeliveryInfo"] = json!({"DeliveryType": "Email", "DeliveryTime": qbo_time(now)});
    });
    match sent {
        Some(json) => Reply::json(200, wrapped(Kind::Invoice, json, now)),
        None => Reply::json(400, object_not_found("Invoice", id, now)),
    }
}

/// `{"Invoice":{…},"time":…}`.
fn wrapped(kind: Kind, json: Value, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut map = Map::new();
    map.insert(kind.name().into(), json);
    map.insert("time".into(), json!(answer_time(now)));
    Value::Object(map)
}
