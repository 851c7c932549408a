//! The store contract: every behaviour the engine relies on, run against SQLite and PostgreSQL.
//!
//! PostgreSQL runs when `TEST_DATABASE_URL` is set (`.ci/run` sets it); each test gets a schema of
//! its own, dropped at the end. Without it, each PostgreSQL test prints
//! "skipped: TEST_DATABASE_URL not set" and passes.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use invoiceflow::store::quickbooks::{ConnectionState, InboxGauge, InboxItem, QuickBooksStore, TokenPair};
use invoiceflow::store::{
    AnchorColumn, AnchorQuery, Attempt, Calendar, Claimed, DeliveryQuery, DisabledDestination, DueScan, EventQuery,
    Finished, FiringDecision, FiringQuery, Gauges, IntentQuery, InvoiceQuery, LinkChange, Moment, NewFiring, NewIntent,
    PgStore, RULE_DELIVERY_EXPIRY, RuleFailure, SqliteStore, Store, Stored, StoredDelivery, StoredFiring, Writer,
};
use invoiceflow_connectors::secret::SecretString;
use invoiceflow_rules::parse::{Incoming, Item, ParseContext, parse_value};
use invoiceflow_rules::retry::{Attempted, Next};
use invoiceflow_rules::script::{Action, Cause, Intent};
use invoiceflow_rules::workflow::config::WorkflowKind;
use invoiceflow_rules::{
    AccountName, Currency, Holder, HolderId, HolderKind, Property, RecordId, RecordKey, RecordKind,
};
use serde_json::json;

/// Every company is in UTC; "today" is fixed.
struct Fixed(NaiveDate);

impl Calendar for Fixed {
    fn today(&self, _: &AccountName) -> NaiveDate {
        self.0
    }
    fn day_start(&self, _: &AccountName, day: NaiveDate) -> DateTime<Utc> {
        day.and_hms_opt(0, 0, 0).unwrap().and_utc()
    }
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::from_str(text).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// Parses canonical JSON records (account `acme`, home currency USD).
fn records(values: &[serde_json::Value]) -> Vec<Incoming> {
    let account = AccountName::new("acme").unwrap();
    let usd = |_: &AccountName| Currency::from_code("USD").unwrap();
    let ctx = ParseContext { account: &account, home_currency: &usd, received_at: at("2026-11-01T00:00:00Z") };
    values
        .iter()
        .flat_map(|v| parse_value(v.clone(), &ctx))
        .map(|item| match item {
            Item::Record(r) => r,
            other => panic!("test record refused: {other:?}"),
        })
        .collect()
}

fn invoice(id: &str, balance: &str, updated_at: &str) -> serde_json::Value {
    json!({"id": id, "number": format!("N{id}"), "customer": "Amy's Bird Sanctuary", "recipient": "amy@example.com",
        "amount": "150.00", "balance": balance, "currency": "USD", "txn_date": "2026-10-01", "due_date": "2026-11-20",
        "email_status": "EmailSent", "updated_at": updated_at})
}

fn key(kind: RecordKind, id: &str) -> RecordKey {
    RecordKey::new(kind, AccountName::new("acme").unwrap(), RecordId::new(id).unwrap())
}

fn deal(id: &str) -> Holder {
    Holder { kind: HolderKind::Deal, id: HolderId::new(id).unwrap() }
}

async fn apply<S: Store>(
    store: &S,
    today: &str,
    now: &str,
    values: &[serde_json::Value],
) -> invoiceflow::store::Outcome {
    let cal = Fixed(day(today));
    store.apply(records(values), &Moment { now: at(now), calendar: &cal }).await.unwrap()
}

async fn events_of<S: Store>(store: &S, k: &RecordKey) -> Vec<invoiceflow::store::Event> {
    store.events(&EventQuery { record: Some(k.clone()), after_seq: None, limit: 1000 }).await.unwrap()
}

async fn one<S: Store>(store: &S, k: &RecordKey) -> Stored {
    let mut found = store.find(k.kind, &k.id, Some(&k.account)).await.unwrap();
    assert_eq!(found.len(), 1, "expected exactly one {k}");
    found.remove(0)
}

// ---- the contract ------------------------------------------------------------------------------

async fn imports_new_records_with_one_creation_event<S: Store>(s: &S) {
    let o = apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[invoice("1", "150.00", "2026-11-01T10:00:00Z")]).await;
    assert_eq!((o.imported, o.updated, o.unchanged, o.stale, o.events), (1, 0, 0, 0, 1));
    let k = key(RecordKind::Invoice, "1");
    assert_eq!(one(s, &k).await.status, "sent");
    let events = events_of(s, &k).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.property, e.old.as_deref(), e.new.as_deref()), (Property::Lifecycle, None, Some("active")));
    assert_eq!(e.source_time, at("2026-11-01T10:00:00Z"));
    assert_eq!(e.ingest_time, at("2026-11-10T12:00:00Z"));
}

async fn reimporting_identical_data_adds_no_events<S: Store>(s: &S) {
    let batch = [invoice("1", "150.00", "2026-11-01T10:00:00Z"), invoice("2", "50.00", "2026-11-01T10:00:00Z")];
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &batch).await;
    let before = s.events(&EventQuery { limit: 1000, ..Default::default() }).await.unwrap().len();
    let o = apply(s, "2026-11-10", "2026-11-11T12:00:00Z", &batch).await;
    assert_eq!((o.imported, o.updated, o.unchanged, o.events), (0, 0, 2, 0));
    let after = s.events(&EventQuery { limit: 1000, ..Default::default() }).await.unwrap().len();
    assert_eq!(before, after);
}

async fn an_older_update_is_stale_and_ignored<S: Store>(s: &S) {
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[invoice("1", "100.00", "2026-11-05T10:00:00Z")]).await;
    let o = apply(s, "2026-11-10", "2026-11-10T13:00:00Z", &[invoice("1", "0.00", "2026-11-04T10:00:00Z")]).await;
    assert_eq!((o.stale, o.updated, o.events), (1, 0, 0));
    let stored = one(s, &key(RecordKind::Invoice, "1")).await;
    assert_eq!(stored.status, "partially_paid");
}

async fn an_update_records_each_watched_change<S: Store>(s: &S) {
    let k = key(RecordKind::Invoice, "1");
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[invoice("1", "150.00", "2026-11-01T10:00:00Z")]).await;
    let o = apply(s, "2026-11-10", "2026-11-12T08:00:00Z", &[invoice("1", "0.00", "2026-11-11T09:30:00Z")]).await;
    assert_eq!((o.updated, o.events), (1, 2));
    let events = events_of(s, &k).await;
    let changes: Vec<_> = events[1..].iter().map(|e| (e.property, e.old.as_deref(), e.new.as_deref())).collect();
    assert_eq!(
        changes,
        vec![(Property::Balance, Some("150.00"), Some("0.00")), (Property::Status, Some("sent"), Some("paid"))]
    );
    assert!(events[1..].iter().all(|e| e.source_time == at("2026-11-11T09:30:00Z")));
    assert!(events[1..].iter().all(|e| e.ingest_time == at("2026-11-12T08:00:00Z")));
    assert_eq!(one(s, &k).await.status, "paid");
}

async fn several_versions_in_one_batch_apply_in_order<S: Store>(s: &S) {
    let batch = [
        invoice("1", "150.00", "2026-11-01T10:00:00Z"),
        invoice("1", "100.00", "2026-11-02T10:00:00Z"),
        invoice("1", "120.00", "2026-11-01T12:00:00Z"),
    ];
    let o = apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &batch).await;
    assert_eq!((o.imported, o.updated, o.stale), (1, 1, 1));
    let stored = one(s, &key(RecordKind::Invoice, "1")).await;
    let invoiceflow_rules::Record::Invoice(inv) = stored.record else { panic!("not an invoice") };
    assert_eq!(inv.balance.amount_string(), "100.00");
}

async fn deal_id_field_links_and_relinks<S: Store>(s: &S) {
    let mut v = invoice("1", "150.00", "2026-11-01T10:00:00Z");
    v["deal_id"] = json!("deal-1");
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[v.clone()]).await;
    let k = key(RecordKind::Invoice, "1");
    assert_eq!(s.holders_of(std::slice::from_ref(&k)).await.unwrap(), vec![(k.clone(), deal("deal-1"))]);
    v["deal_id"] = json!("deal-2");
    v["updated_at"] = json!("2026-11-02T10:00:00Z");
    apply(s, "2026-11-10", "2026-11-10T13:00:00Z", &[v]).await;
    assert_eq!(s.holders_of(std::slice::from_ref(&k)).await.unwrap(), vec![(k.clone(), deal("deal-2"))]);
    let of_deal = |d: &str| InvoiceQuery { holder: Some(deal(d)), limit: 10, ..Default::default() };
    assert!(s.invoices(&of_deal("deal-1")).await.unwrap().is_empty());
    assert_eq!(s.invoices(&of_deal("deal-2")).await.unwrap().len(), 1);
    let last = events_of(s, &k).await.pop().unwrap();
    assert_eq!(
        (last.property, last.old.as_deref(), last.new.as_deref()),
        (Property::DealId, Some("deal-1"), Some("deal-2"))
    );
}

async fn a_deal_change_within_one_batch_leaves_only_the_last_link<S: Store>(s: &S) {
    // Regression: removals ran before additions, so A stayed linked after A → B in one batch.
    let mut v1 = invoice("1", "150.00", "2026-11-01T10:00:00Z");
    v1["deal_id"] = json!("deal-a");
    let mut v2 = v1.clone();
    v2["deal_id"] = json!("deal-b");
    v2["updated_at"] = json!("2026-11-02T10:00:00Z");
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[v1, v2]).await;
    let k = key(RecordKind::Invoice, "1");
    assert_eq!(s.holders_of(std::slice::from_ref(&k)).await.unwrap(), vec![(k.clone(), deal("deal-b"))]);
}

async fn manual_link_and_unlink_record_events<S: Store>(s: &S) {
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[invoice("1", "150.00", "2026-11-01T10:00:00Z")]).await;
    let k = key(RecordKind::Invoice, "1");
    let now = at("2026-11-10T14:00:00Z");
    assert_eq!(s.link(&deal("deal-9"), &k, now).await.unwrap(), LinkChange::Done);
    assert_eq!(s.link(&deal("deal-9"), &k, now).await.unwrap(), LinkChange::AlreadySo);
    let q = InvoiceQuery { holder: Some(deal("deal-9")), limit: 10, ..Default::default() };
    assert_eq!(s.invoices(&q).await.unwrap().len(), 1);
    assert_eq!(s.unlink(&deal("deal-9"), &k, now).await.unwrap(), LinkChange::Done);
    assert_eq!(s.unlink(&deal("deal-9"), &k, now).await.unwrap(), LinkChange::AlreadySo);
    assert!(s.invoices(&q).await.unwrap().is_empty());
    let links: Vec<_> =
        events_of(s, &k).await.into_iter().filter(|e| e.property == Property::DealId).map(|e| (e.old, e.new)).collect();
    assert_eq!(links, vec![(None, Some("deal-9".to_owned())), (Some("deal-9".to_owned()), None)]);
}

async fn an_unlinked_field_link_stays_unlinked_until_the_field_changes<S: Store>(s: &S) {
    let mut v = invoice("1", "150.00", "2026-11-01T10:00:00Z");
    v["deal_id"] = json!("deal-1");
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[v.clone()]).await;
    let k = key(RecordKind::Invoice, "1");
    let now = at("2026-11-10T14:00:00Z");
    let holders = || async { s.holders_of(std::slice::from_ref(&k)).await.unwrap() };
    let of_deal = |d: &str| InvoiceQuery { holder: Some(deal(d)), limit: 10, ..Default::default() };
    assert_eq!(s.unlink(&deal("deal-1"), &k, now).await.unwrap(), LinkChange::Done);
    assert_eq!(s.unlink(&deal("deal-1"), &k, now).await.unwrap(), LinkChange::AlreadySo);
    assert!(holders().await.is_empty());
    assert!(s.invoices(&of_deal("deal-1")).await.unwrap().is_empty());
    // The same data again does not undo the unlink…
    apply(s, "2026-11-10", "2026-11-10T15:00:00Z", &[v.clone()]).await;
    assert!(holders().await.is_empty());
    // …a new value of the field does, and so does going back to the old one.
    v["deal_id"] = json!("deal-2");
    v["updated_at"] = json!("2026-11-02T10:00:00Z");
    apply(s, "2026-11-10", "2026-11-10T16:00:00Z", &[v.clone()]).await;
    assert_eq!(holders().await, vec![(k.clone(), deal("deal-2"))]);
    assert_eq!(s.unlink(&deal("deal-2"), &k, now).await.unwrap(), LinkChange::Done);
    v["deal_id"] = json!("deal-1");
    v["updated_at"] = json!("2026-11-03T10:00:00Z");
    apply(s, "2026-11-10", "2026-11-10T17:00:00Z", &[v]).await;
    assert_eq!(holders().await, vec![(k.clone(), deal("deal-1"))]);
    // Linking by hand what the field links already is a no-op; after an unlink it restores it.
    assert_eq!(s.link(&deal("deal-1"), &k, now).await.unwrap(), LinkChange::AlreadySo);
    assert_eq!(s.unlink(&deal("deal-1"), &k, now).await.unwrap(), LinkChange::Done);
    assert_eq!(s.link(&deal("deal-1"), &k, now).await.unwrap(), LinkChange::Done);
    assert_eq!(holders().await, vec![(k.clone(), deal("deal-1"))]);
    assert_eq!(s.invoices(&of_deal("deal-1")).await.unwrap().len(), 1);
}

async fn a_hand_made_link_adds_to_the_field_link<S: Store>(s: &S) {
    let mut v = invoice("1", "150.00", "2026-11-01T10:00:00Z");
    v["deal_id"] = json!("deal-1");
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[v, invoice("2", "150.00", "2026-11-01T10:00:00Z")]).await;
    let (k1, k2) = (key(RecordKind::Invoice, "1"), key(RecordKind::Invoice, "2"));
    let now = at("2026-11-10T14:00:00Z");
    assert_eq!(s.link(&deal("deal-9"), &k1, now).await.unwrap(), LinkChange::Done);
    assert_eq!(s.link(&deal("deal-1"), &k2, now).await.unwrap(), LinkChange::Done);
    assert_eq!(
        s.holders_of(&[k1.clone(), k2.clone()]).await.unwrap(),
        vec![(k1.clone(), deal("deal-1")), (k1.clone(), deal("deal-9")), (k2.clone(), deal("deal-1"))]
    );
    let of_deal = InvoiceQuery { holder: Some(deal("deal-1")), limit: 10, ..Default::default() };
    let ids: Vec<String> = s.invoices(&of_deal).await.unwrap().iter().map(|i| i.record.key().id.to_string()).collect();
    assert_eq!(ids, ["1", "2"], "one by its field, one by hand, in key order");
    let first = InvoiceQuery { limit: 1, ..of_deal.clone() };
    let page = s.invoices(&first).await.unwrap();
    assert_eq!(page.len(), 1);
    let rest = InvoiceQuery { after: Some((k1.account.clone(), k1.id.clone())), ..of_deal };
    let ids: Vec<String> = s.invoices(&rest).await.unwrap().iter().map(|i| i.record.key().id.to_string()).collect();
    assert_eq!(ids, ["2"], "pages continue after the last key");
}

async fn refresh_records_overdue_once<S: Store>(s: &S) {
    apply(s, "2026-11-19", "2026-11-19T12:00:00Z", &[invoice("1", "150.00", "2026-11-01T10:00:00Z")]).await;
    let k = key(RecordKind::Invoice, "1");
    let cal = Fixed(day("2026-11-22"));
    let moment = Moment { now: at("2026-11-22T06:00:00Z"), calendar: &cal };
    let o = s.refresh(&moment).await.unwrap();
    assert_eq!(o.events, 1);
    let e = events_of(s, &k).await.pop().unwrap();
    assert_eq!((e.property, e.old.as_deref(), e.new.as_deref()), (Property::Status, Some("sent"), Some("overdue")));
    assert_eq!(
        e.source_time,
        Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(),
        "overdue from the day after the due date"
    );
    assert_eq!(one(s, &k).await.status, "overdue");
    assert_eq!(s.refresh(&moment).await.unwrap().events, 0, "a second refresh records nothing");
    // Paid invoices and invoices not yet due are left alone.
    apply(s, "2026-11-22", "2026-11-22T07:00:00Z", &[invoice("2", "0.00", "2026-11-01T10:00:00Z")]).await;
    assert_eq!(s.refresh(&moment).await.unwrap().events, 0);
}

async fn deletion_voids_and_records_lifecycle<S: Store>(s: &S) {
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[invoice("1", "150.00", "2026-11-01T10:00:00Z")]).await;
    let deleted = json!({"id": "1", "deleted": true, "updated_at": "2026-11-03T10:00:00Z"});
    let o = apply(s, "2026-11-10", "2026-11-10T13:00:00Z", &[deleted]).await;
    assert_eq!(o.updated, 1);
    let k = key(RecordKind::Invoice, "1");
    assert_eq!(one(s, &k).await.status, "voided");
    let changes: Vec<_> = events_of(s, &k).await[1..].iter().map(|e| (e.property, e.new.clone())).collect();
    assert_eq!(changes, vec![(Property::Lifecycle, Some("deleted".into())), (Property::Status, Some("voided".into()))]);
    let unknown = json!({"id": "404", "deleted": true});
    assert_eq!(apply(s, "2026-11-10", "2026-11-10T13:00:00Z", &[unknown]).await.unchanged, 1);
}

fn payment(id: &str) -> serde_json::Value {
    json!({"type": "payment", "id": id, "customer": "Amy", "amount": "150.00", "txn_date": "2026-11-05",
        "invoices": ["1"], "updated_at": "2026-11-05T10:00:00Z"})
}

fn deposit(id: &str, payments: &[&str]) -> serde_json::Value {
    json!({"type": "deposit", "id": id, "amount": "150.00", "txn_date": "2026-11-07", "deposit_account": "Checking",
        "payments": payments, "updated_at": "2026-11-07T10:00:00Z"})
}

async fn deposit_moves_payment_out_of_undeposited_funds<S: Store>(s: &S) {
    apply(s, "2026-11-06", "2026-11-06T12:00:00Z", &[payment("p1")]).await;
    let p1 = key(RecordKind::Payment, "p1");
    assert_eq!(one(s, &p1).await.status, "undeposited");
    apply(s, "2026-11-07", "2026-11-07T12:00:00Z", &[deposit("d1", &["p1"])]).await;
    assert_eq!(one(s, &p1).await.status, "deposited");
    let e = events_of(s, &p1).await.pop().unwrap();
    assert_eq!(
        (e.property, e.old.as_deref(), e.new.as_deref()),
        (Property::Status, Some("undeposited"), Some("deposited"))
    );
    // A deposit seen before its payment still counts.
    apply(s, "2026-11-07", "2026-11-07T12:00:00Z", &[deposit("d2", &["p2"])]).await;
    apply(s, "2026-11-08", "2026-11-08T12:00:00Z", &[payment("p2")]).await;
    assert_eq!(one(s, &key(RecordKind::Payment, "p2")).await.status, "deposited");
}

async fn invoices_page_in_key_order<S: Store>(s: &S) {
    let batch: Vec<_> = (1..=25).map(|i| invoice(&format!("{i:03}"), "150.00", "2026-11-01T10:00:00Z")).collect();
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &batch).await;
    let mut q = InvoiceQuery { limit: 10, ..Default::default() };
    let mut seen = Vec::new();
    loop {
        let page = s.invoices(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = Some((last.record.key().account.clone(), last.record.key().id.clone()));
        seen.extend(page.iter().map(|p| p.record.key().id.to_string()));
    }
    let expected: Vec<String> = (1..=25).map(|i| format!("{i:03}")).collect();
    assert_eq!(seen, expected);
}

async fn find_tells_companies_apart<S: Store>(s: &S) {
    let mut other = invoice("1", "10.00", "2026-11-01T10:00:00Z");
    other["account"] = json!("other");
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[invoice("1", "150.00", "2026-11-01T10:00:00Z"), other]).await;
    let id = RecordId::new("1").unwrap();
    assert_eq!(s.find(RecordKind::Invoice, &id, None).await.unwrap().len(), 2);
    let only = s.find(RecordKind::Invoice, &id, Some(&AccountName::new("other").unwrap())).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].record.key().account.as_str(), "other");
    assert!(s.find(RecordKind::Bill, &id, None).await.unwrap().is_empty());
}

async fn a_writer_commits_its_batches_together_or_not_at_all<S: Store>(s: &S) {
    let cal = Fixed(day("2026-11-10"));
    let at_now = Moment { now: at("2026-11-10T12:00:00Z"), calendar: &cal };
    let mut writer = s.writer().await.unwrap();
    writer.apply(records(&[invoice("1", "150.00", "2026-11-01T10:00:00Z")]), &at_now).await.unwrap();
    // A later batch in the same transaction sees the earlier one.
    let o = writer.apply(records(&[invoice("1", "100.00", "2026-11-02T10:00:00Z")]), &at_now).await.unwrap();
    assert_eq!((o.imported, o.updated), (0, 1));
    drop(writer);
    let id = RecordId::new("1").unwrap();
    assert!(s.find(RecordKind::Invoice, &id, None).await.unwrap().is_empty(), "a dropped writer rolls back");
    let mut writer = s.writer().await.unwrap();
    writer.apply(records(&[invoice("1", "150.00", "2026-11-01T10:00:00Z")]), &at_now).await.unwrap();
    writer.apply(records(&[invoice("2", "150.00", "2026-11-01T10:00:00Z")]), &at_now).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(s.invoices(&InvoiceQuery { limit: 10, ..Default::default() }).await.unwrap().len(), 2);
}

async fn a_writer_sees_the_deposits_of_its_earlier_batches<S: Store>(s: &S) {
    // The writer reads a batch while the previous one is still being written: a payment whose
    // deposit came in the batch before must still be seen as deposited.
    let cal = Fixed(day("2026-11-10"));
    let at_now = Moment { now: at("2026-11-10T12:00:00Z"), calendar: &cal };
    let mut writer = s.writer().await.unwrap();
    writer.apply(records(&[deposit("d1", &["p1"])]), &at_now).await.unwrap();
    writer.apply(records(&[payment("p1")]), &at_now).await.unwrap();
    writer.apply(records(&[payment("p2")]), &at_now).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(one(s, &key(RecordKind::Payment, "p1")).await.status, "deposited");
    assert_eq!(one(s, &key(RecordKind::Payment, "p2")).await.status, "undeposited");
}

async fn a_bulk_import_reads_and_writes_the_same<S: Store>(s: &S) {
    let bulk = s.begin_bulk(1_000_000).await.unwrap();
    let mut v = invoice("1", "150.00", "2026-11-01T10:00:00Z");
    v["deal_id"] = json!("deal-1");
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[v]).await;
    let of_deal = InvoiceQuery { holder: Some(deal("deal-1")), limit: 10, ..Default::default() };
    assert_eq!(s.invoices(&of_deal).await.unwrap().len(), 1, "queries stay right while indexes are aside");
    if bulk {
        s.end_bulk().await.unwrap();
    }
    assert_eq!(s.invoices(&of_deal).await.unwrap().len(), 1);
    assert_eq!(
        s.refresh(&Moment { now: at("2026-11-25T12:00:00Z"), calendar: &Fixed(day("2026-11-25")) })
            .await
            .unwrap()
            .updated,
        1
    );
}

async fn migrating_twice_is_harmless<S: Store>(s: &S) {
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
}

/// Event `event`: a status change from sent to paid.
fn paid_change(event: i64) -> Cause {
    Cause::Change { event, property: "status".into(), from: Some("sent".into()), to: Some("paid".into()) }
}

/// An intent of rule `rule` about invoice `id`: a Slack message saying `text`.
fn intent(rule: &str, id: &str, event: i64, text: &str) -> Intent {
    Intent {
        rule: rule.to_owned(),
        version: "0587fc9c3c4f".to_owned(),
        cause: paid_change(event),
        record: key(RecordKind::Invoice, id).into(),
        seen: serde_json::from_value(
            json!({"status": "paid", "balance": "0.00", "amount": "150.00", "days_overdue": -2}),
        )
        .unwrap(),
        action: Action::Slack { destination: "finance".to_owned(), text: text.to_owned(), blocks: None },
    }
}

fn new_intent(key: &str, intent: Intent) -> NewIntent {
    NewIntent { key: key.to_owned(), intent }
}

fn all_intents() -> IntentQuery {
    IntentQuery { limit: 1000, ..Default::default() }
}

async fn an_intent_is_stored_once_per_key<S: Store>(s: &S) {
    let now = at("2026-11-26T17:00:00Z");
    let paid = intent("payment-received", "1", 7, "💰 Amy's Bird Sanctuary paid invoice #N1 ($150.00)");
    let first = new_intent("rule:payment-received:event:7:0", paid.clone());
    assert_eq!(s.save_evaluations("rules", 7, std::slice::from_ref(&first), &[], now).await.unwrap(), 1);
    let later = at("2026-11-26T18:00:00Z");
    assert_eq!(s.save_evaluations("rules", 7, std::slice::from_ref(&first), &[], later).await.unwrap(), 0);
    // The same key with another intent (a crash, then a re-evaluation by an edited rule) is skipped too.
    let edited = new_intent("rule:payment-received:event:7:0", intent("payment-received", "1", 7, "edited"));
    assert_eq!(s.save_evaluations("rules", 7, &[edited], &[], later).await.unwrap(), 0);

    let stored = s.intents(&all_intents()).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].key, "rule:payment-received:event:7:0");
    assert_eq!(stored[0].created_at, now, "the first save is kept");
    assert_eq!(stored[0].intent, paid, "the intent comes back as it was saved");
    assert_eq!(stored[0].intent.seen.get("days_overdue"), Some(json!(-2)));

    // A new key is stored; several in one call count each new one.
    let batch = [
        new_intent("rule:payment-received:event:7:0", paid.clone()),
        new_intent("rule:payment-received:event:9:0", intent("payment-received", "2", 9, "two")),
        new_intent("rule:other:event:9:0", intent("other", "2", 9, "other")),
    ];
    assert_eq!(s.save_evaluations("rules", 9, &batch, &[], later).await.unwrap(), 2);
    let keys: Vec<String> = s.intents(&all_intents()).await.unwrap().into_iter().map(|i| i.key).collect();
    assert_eq!(
        keys,
        ["rule:payment-received:event:7:0", "rule:payment-received:event:9:0", "rule:other:event:9:0"],
        "oldest first"
    );
}

async fn intents_are_listed_by_rule_record_and_after_a_sequence_number<S: Store>(s: &S) {
    let now = at("2026-11-26T17:00:00Z");
    let batch = [
        new_intent("a", intent("payment-received", "1", 7, "one")),
        new_intent("b", intent("payment-received", "2", 8, "two")),
        new_intent("c", intent("due-date-moved", "2", 9, "three")),
    ];
    assert_eq!(s.save_evaluations("rules", 9, &batch, &[], now).await.unwrap(), 3);
    let keys =
        |q: IntentQuery| async move { s.intents(&q).await.unwrap().into_iter().map(|i| i.key).collect::<Vec<_>>() };
    let rule = IntentQuery { rule: Some("payment-received".into()), ..all_intents() };
    assert_eq!(keys(rule).await, ["a", "b"]);
    let record = IntentQuery { record: Some(key(RecordKind::Invoice, "2")), ..all_intents() };
    assert_eq!(keys(record).await, ["b", "c"]);
    let both = IntentQuery {
        rule: Some("due-date-moved".into()),
        record: Some(key(RecordKind::Invoice, "2")),
        ..all_intents()
    };
    assert_eq!(keys(both).await, ["c"]);
    let other_kind = IntentQuery { record: Some(key(RecordKind::Bill, "2")), ..all_intents() };
    assert!(keys(other_kind).await.is_empty(), "a bill with the same id is another record");
    let all = s.intents(&all_intents()).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "increasing sequence numbers");
    let after = IntentQuery { after_seq: Some(all[0].seq), ..all_intents() };
    assert_eq!(keys(after).await, ["b", "c"]);
    let first = IntentQuery { limit: 2, ..all_intents() };
    assert_eq!(keys(first).await, ["a", "b"]);
}

async fn the_cursor_only_moves_forward<S: Store>(s: &S) {
    let now = at("2026-11-26T17:00:00Z");
    assert_eq!(s.cursor("rules").await.unwrap(), 0, "0 before its first move");
    s.save_evaluations("rules", 10, &[], &[], now).await.unwrap();
    assert_eq!(s.cursor("rules").await.unwrap(), 10);
    s.save_evaluations("rules", 5, &[], &[], now).await.unwrap();
    assert_eq!(s.cursor("rules").await.unwrap(), 10, "never back");
    s.save_evaluations("rules", 12, &[], &[], now).await.unwrap();
    assert_eq!(s.cursor("rules").await.unwrap(), 12);
    assert_eq!(s.cursor("schedules").await.unwrap(), 0, "each cursor is its own");
    s.save_evaluations("schedules", 3, &[], &[], now).await.unwrap();
    assert_eq!((s.cursor("rules").await.unwrap(), s.cursor("schedules").await.unwrap()), (12, 3));
}

async fn last_event_seq_follows_the_events<S: Store>(s: &S) {
    assert_eq!(s.last_event_seq().await.unwrap(), 0, "0 with no event");
    let newest = || async {
        s.events(&EventQuery { limit: 1000, ..Default::default() }).await.unwrap().last().map(|e| e.seq).unwrap()
    };
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &[invoice("1", "150.00", "2026-11-01T10:00:00Z")]).await;
    let first = s.last_event_seq().await.unwrap();
    assert!(first > 0);
    assert_eq!(first, newest().await);
    apply(s, "2026-11-10", "2026-11-12T08:00:00Z", &[invoice("1", "0.00", "2026-11-11T09:30:00Z")]).await;
    let second = s.last_event_seq().await.unwrap();
    assert!(second > first, "{second} > {first}");
    assert_eq!(second, newest().await);
    // Saving evaluations writes no event.
    s.save_evaluations("rules", second, &[], &[], at("2026-11-12T09:00:00Z")).await.unwrap();
    assert_eq!(s.last_event_seq().await.unwrap(), second);
    let k = key(RecordKind::Invoice, "1");
    s.link(&deal("deal-1"), &k, at("2026-11-12T10:00:00Z")).await.unwrap();
    assert_eq!(s.last_event_seq().await.unwrap(), newest().await, "a manual link is an event too");
    assert!(s.last_event_seq().await.unwrap() > second);
}

async fn records_returns_the_stored_ones_and_skips_unknown_keys<S: Store>(s: &S) {
    apply(
        s,
        "2026-11-10",
        "2026-11-10T12:00:00Z",
        &[invoice("1", "150.00", "2026-11-01T10:00:00Z"), invoice("2", "0.00", "2026-11-01T10:00:00Z"), payment("p1")],
    )
    .await;
    assert!(s.records(&[]).await.unwrap().is_empty());
    let keys = [
        key(RecordKind::Invoice, "2"),
        key(RecordKind::Invoice, "404"),
        key(RecordKind::Payment, "p1"),
        key(RecordKind::Bill, "1"),
        key(RecordKind::Invoice, "1"),
    ];
    let mut found = s.records(&keys).await.unwrap();
    found.sort_by(|a, b| a.record.key().cmp(b.record.key()));
    let got: Vec<(RecordKey, String)> = found.iter().map(|r| (r.record.key().clone(), r.status.clone())).collect();
    let mut expected = vec![
        (key(RecordKind::Invoice, "1"), "sent".to_owned()),
        (key(RecordKind::Invoice, "2"), "paid".to_owned()),
        (key(RecordKind::Payment, "p1"), "undeposited".to_owned()),
    ];
    expected.sort();
    assert_eq!(got, expected);
    let one_of_them = s.records(&[key(RecordKind::Invoice, "1")]).await.unwrap();
    assert_eq!(one_of_them, vec![one(s, &key(RecordKind::Invoice, "1")).await], "the same as find");
    assert!(s.records(&[key(RecordKind::Invoice, "404")]).await.unwrap().is_empty());
}

async fn failures_are_listed_with_their_fields<S: Store>(s: &S) {
    let now = at("2026-11-26T17:00:00Z");
    let broken = RuleFailure {
        rule: "fragile".to_owned(),
        version: "2e3975beccb8".to_owned(),
        record: key(RecordKind::Invoice, "108"),
        cause: paid_change(72),
        message: "line 6:45: Division by zero: 1 / 0 — \"quoted\"".to_owned(),
        limit: false,
    };
    let slow = RuleFailure {
        rule: "slow".to_owned(),
        version: "aaaaaaaaaaaa".to_owned(),
        record: key(RecordKind::Bill, "7"),
        cause: Cause::Schedule { slot: at("2026-11-26T13:00:00Z") },
        message: "too many operations".to_owned(),
        limit: true,
    };
    let paid = new_intent("k", intent("payment-received", "108", 72, "paid"));
    let added = s.save_evaluations("rules", 72, &[paid], &[broken.clone(), slow.clone()], now).await.unwrap();
    assert_eq!(added, 1, "failures are not counted as intents");
    assert_eq!(s.cursor("rules").await.unwrap(), 72);

    let query = |rule: Option<&str>, record: Option<RecordKey>, after_seq: i64, limit: u32| IntentQuery {
        rule: rule.map(str::to_owned),
        record,
        after_seq: Some(after_seq),
        limit,
    };
    let all = s.failures(&query(None, None, 0, 100)).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].failure, broken);
    assert_eq!(all[1].failure, slow);
    assert!(all.iter().all(|f| f.created_at == now));
    assert!(all[0].seq < all[1].seq);
    let of = |q| async move { s.failures(&q).await.unwrap().into_iter().map(|f| f.failure).collect::<Vec<_>>() };
    assert_eq!(of(query(Some("slow"), None, 0, 100)).await, std::slice::from_ref(&slow));
    assert!(of(query(Some("payment-received"), None, 0, 100)).await.is_empty());
    assert_eq!(of(query(None, Some(key(RecordKind::Invoice, "108")), 0, 100)).await, std::slice::from_ref(&broken));
    assert!(of(query(None, Some(key(RecordKind::Invoice, "7")), 0, 100)).await.is_empty(), "a bill is not an invoice");
    assert_eq!(of(query(None, None, all[0].seq, 100)).await, std::slice::from_ref(&slow));
    assert_eq!(s.failures(&query(None, None, 0, 1)).await.unwrap().len(), 1);
}

fn bill(id: &str, due_date: &str) -> serde_json::Value {
    json!({"type": "bill", "id": id, "number": format!("B{id}"), "vendor": "Hall Properties", "amount": "900.00",
        "balance": "900.00", "currency": "USD", "txn_date": "2026-10-01", "due_date": due_date,
        "updated_at": "2026-11-01T10:00:00Z"})
}

/// Invoice `id` of company `account`, dated `txn_date`, due `due_date`, with `balance` of 150.00 left.
fn dated_invoice(account: &str, id: &str, balance: &str, txn_date: &str, due_date: &str) -> serde_json::Value {
    let mut v = invoice(id, balance, "2026-11-01T10:00:00Z");
    v["account"] = json!(account);
    v["txn_date"] = json!(txn_date);
    v["due_date"] = json!(due_date);
    v
}

/// Every `account/id` a due scan finds, page after page of `limit`, with the page sizes.
async fn scanned<S: Store>(s: &S, mut q: DueScan) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    loop {
        let page = s.scan_due(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = Some(last.position());
        sizes.push(page.len());
        for e in &page {
            let stored = e.decode().unwrap();
            assert_eq!(&e.key().unwrap(), stored.record.key());
            ids.push(id_of(&stored));
        }
    }
    ids.sort();
    (ids, sizes)
}

async fn a_due_scan_finds_records_by_status_and_either_date_page_by_page<S: Store>(s: &S) {
    let mut batch: Vec<serde_json::Value> = (1..=7)
        .map(|i| {
            dated_invoice(
                if i % 2 == 0 { "acme" } else { "other" },
                &i.to_string(),
                "150.00",
                "2026-10-01",
                "2026-11-20",
            )
        })
        .collect();
    batch.push(dated_invoice("acme", "20", "150.00", "2026-10-07", "2026-12-01"));
    batch.push(dated_invoice("acme", "21", "0.00", "2026-10-01", "2026-11-20"));
    batch.push(dated_invoice("acme", "22", "150.00", "2026-09-01", "2026-09-30"));
    batch.push(bill("1", "2026-11-20"));
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &batch).await;
    let scan = |due: &[&str], txn: &[&str], limit: u32| DueScan {
        kind: RecordKind::Invoice,
        statuses: OPEN.to_vec(),
        due_dates: due.iter().map(|d| day(d)).collect(),
        txn_dates: txn.iter().map(|d| day(d)).collect(),
        after: None,
        limit,
    };
    let mut seven: Vec<String> =
        (1..=7).map(|i| format!("{}/{i}", if i % 2 == 0 { "acme" } else { "other" })).collect();
    seven.sort();
    let (ids, sizes) = scanned(s, scan(&["2026-11-20"], &[], 3)).await;
    assert_eq!(ids, seven, "the paid invoice and the bill are left out");
    assert_eq!(sizes, [3, 3, 1], "pages of three, each record once");
    let (ids, _) = scanned(s, scan(&[], &["2026-10-07"], 3)).await;
    assert_eq!(ids, ["acme/20"]);
    let (ids, _) = scanned(s, scan(&["2026-09-30"], &["2026-10-07"], 100)).await;
    assert_eq!(ids, ["acme/20", "acme/22"], "either date");
    assert!(scanned(s, scan(&["2026-11-21"], &["2026-11-20"], 100)).await.0.is_empty());
    let paid = DueScan { statuses: vec!["paid"], ..scan(&["2026-11-20"], &[], 100) };
    assert_eq!(scanned(s, paid).await.0, ["acme/21"]);
    let bills = DueScan { kind: RecordKind::Bill, statuses: vec!["open"], ..scan(&["2026-11-20"], &[], 100) };
    assert_eq!(scanned(s, bills).await.0, ["acme/1"]);
}

/// The statuses a payment reminder may still act on.
const OPEN: [&str; 4] = ["awaiting_send", "sent", "partially_paid", "overdue"];

/// Invoices in these statuses with their `anchor` date on one of these days: one query per
/// status and day, as the reminder workflows ask.
#[derive(Clone)]
struct Anchored {
    kind: RecordKind,
    anchor: AnchorColumn,
    statuses: Vec<&'static str>,
    dates: Vec<NaiveDate>,
}

fn anchor_query(anchor: AnchorColumn, statuses: &[&'static str], dates: &[&str]) -> Anchored {
    Anchored {
        kind: RecordKind::Invoice,
        anchor,
        statuses: statuses.to_vec(),
        dates: dates.iter().map(|d| day(d)).collect(),
    }
}

/// A stored record as `account/id`.
fn id_of(r: &Stored) -> String {
    format!("{}/{}", r.record.key().account, r.record.key().id)
}

/// The `account/id` of each record the queries of `q` return, each query's in key order; the
/// whole sorted when the queries are several.
async fn anchored_ids<S: Store>(s: &S, q: &Anchored) -> Vec<String> {
    let mut ids = Vec::new();
    for status in &q.statuses {
        for date in &q.dates {
            let one = AnchorQuery { kind: q.kind, status, anchor: q.anchor, date: *date, after: None, limit: 100 };
            let page: Vec<String> = s.anchored(&one).await.unwrap().iter().map(id_of).collect();
            let mut sorted = page.clone();
            sorted.sort();
            assert_eq!(page, sorted, "one status and day come in key order");
            ids.extend(page);
        }
    }
    ids.sort();
    ids
}

async fn anchored_finds_records_by_due_or_txn_date_and_status<S: Store>(s: &S) {
    let mut unsent = dated_invoice("acme", "5", "150.00", "2026-10-01", "2026-11-27");
    unsent["email_status"] = json!("NotSet");
    let batch = [
        dated_invoice("acme", "1", "150.00", "2026-10-01", "2026-11-20"),
        dated_invoice("acme", "2", "50.00", "2026-10-05", "2026-11-20"),
        dated_invoice("acme", "3", "0.00", "2026-10-01", "2026-11-20"),
        dated_invoice("acme", "4", "150.00", "2026-10-01", "2026-11-25"),
        unsent,
        dated_invoice("other", "0", "150.00", "2026-10-01", "2026-11-20"),
        bill("1", "2026-11-20"),
    ];
    apply(s, "2026-11-10", "2026-11-10T12:00:00Z", &batch).await;
    let statuses: Vec<(String, String)> = s
        .invoices(&InvoiceQuery { limit: 100, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.record.key().id.to_string(), r.status))
        .collect();
    let expected = [("1", "sent"), ("2", "partially_paid"), ("3", "paid"), ("4", "sent"), ("5", "awaiting_send")];
    for (id, status) in expected {
        assert!(statuses.contains(&(id.to_owned(), status.to_owned())), "{id} is {status}: {statuses:?}");
    }

    let due = |statuses: &[&'static str], dates: &[&str]| anchor_query(AnchorColumn::DueDate, statuses, dates);
    let txn = |statuses: &[&'static str], dates: &[&str]| anchor_query(AnchorColumn::TxnDate, statuses, dates);
    assert_eq!(
        anchored_ids(s, &due(&OPEN, &["2026-11-20"])).await,
        ["acme/1", "acme/2", "other/0"],
        "the paid invoice and the bill are left out; ordered by company, then id"
    );
    assert_eq!(anchored_ids(s, &due(&["paid"], &["2026-11-20"])).await, ["acme/3"]);
    assert_eq!(anchored_ids(s, &due(&["sent"], &["2026-11-20", "2026-11-25"])).await, ["acme/1", "acme/4", "other/0"]);
    assert_eq!(
        anchored_ids(s, &due(&["partially_paid", "awaiting_send"], &["2026-11-20", "2026-11-27"])).await,
        ["acme/2", "acme/5"]
    );
    assert!(anchored_ids(s, &due(&OPEN, &["2026-11-21"])).await.is_empty(), "no invoice is due that day");
    assert!(anchored_ids(s, &due(&OPEN, &["2026-10-01"])).await.is_empty(), "a txn date is not a due date");
    assert!(anchored_ids(s, &due(&OPEN, &[])).await.is_empty());
    assert!(anchored_ids(s, &due(&[], &["2026-11-20"])).await.is_empty());
    assert_eq!(anchored_ids(s, &txn(&OPEN, &["2026-10-01"])).await, ["acme/1", "acme/4", "acme/5", "other/0"]);
    assert_eq!(anchored_ids(s, &txn(&OPEN, &["2026-10-05"])).await, ["acme/2"]);
    assert_eq!(anchored_ids(s, &txn(&["paid"], &["2026-10-01", "2026-10-05"])).await, ["acme/3"]);
    assert!(anchored_ids(s, &txn(&OPEN, &["2026-11-20"])).await.is_empty(), "a due date is not a txn date");
    let bills = Anchored { kind: RecordKind::Bill, ..due(&["open"], &["2026-11-20"]) };
    assert_eq!(anchored_ids(s, &bills).await, ["acme/1"], "of one kind only");
    assert!(anchored_ids(s, &due(&["open"], &["2026-11-20"])).await.is_empty(), "a bill is not an invoice");

    // Pages of two continue after the last key and give every match once, in key order.
    let extra = ["7", "8", "9"].map(|id| dated_invoice("acme", id, "150.00", "2026-10-01", "2026-11-20"));
    apply(s, "2026-11-10", "2026-11-10T12:30:00Z", &extra).await;
    let mut q = AnchorQuery {
        kind: RecordKind::Invoice,
        status: "sent",
        anchor: AnchorColumn::DueDate,
        date: day("2026-11-20"),
        after: None,
        limit: 2,
    };
    let mut pages = Vec::new();
    loop {
        let page = s.anchored(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = Some(last.record.key().clone());
        pages.push(page.iter().map(id_of).collect::<Vec<_>>());
    }
    assert_eq!(pages, [vec!["acme/1", "acme/7"], vec!["acme/8", "acme/9"], vec!["other/0"]]);

    // An update moves the record to its new dates and status.
    let mut moved = dated_invoice("acme", "4", "100.00", "2026-10-09", "2026-11-30");
    moved["updated_at"] = json!("2026-11-02T10:00:00Z");
    apply(s, "2026-11-10", "2026-11-10T13:00:00Z", &[moved]).await;
    assert!(anchored_ids(s, &due(&OPEN, &["2026-11-25"])).await.is_empty(), "no longer due that day");
    assert_eq!(anchored_ids(s, &due(&["partially_paid"], &["2026-11-30"])).await, ["acme/4"]);
    assert_eq!(
        anchored_ids(s, &txn(&OPEN, &["2026-10-01"])).await,
        ["acme/1", "acme/5", "acme/7", "acme/8", "acme/9", "other/0"]
    );
    assert_eq!(anchored_ids(s, &txn(&OPEN, &["2026-10-09"])).await, ["acme/4"]);

    // A status that time changed (overdue after the due date) is the one filtered on.
    let cal = Fixed(day("2026-11-21"));
    s.refresh(&Moment { now: at("2026-11-21T06:00:00Z"), calendar: &cal }).await.unwrap();
    assert!(anchored_ids(s, &due(&["sent", "partially_paid"], &["2026-11-20"])).await.is_empty());
    assert_eq!(
        anchored_ids(s, &due(&["overdue"], &["2026-11-20"])).await,
        ["acme/1", "acme/2", "acme/7", "acme/8", "acme/9", "other/0"]
    );
    assert_eq!(anchored_ids(s, &due(&["paid"], &["2026-11-20"])).await, ["acme/3"], "a paid invoice stays paid");
}

/// The idempotency key of a payment reminder step.
fn firing_key(id: &str, step: &str, nominal: &str) -> String {
    format!("workflow:payment_due:{}:{step}:{nominal}", key(RecordKind::Invoice, id))
}

/// An intent a payment reminder step sends about invoice `id`: an email saying `text`.
fn reminder(firing: &str, n: usize, id: &str, step: &str, nominal: &str, text: &str) -> NewIntent {
    NewIntent {
        key: format!("{firing}:{n}"),
        intent: Intent {
            rule: "workflow:payment_due".to_owned(),
            version: "5f1c2a9e0b7d".to_owned(),
            cause: Cause::Workflow {
                step: step.to_owned(),
                nominal: day(nominal),
                due: at(&format!("{nominal}T09:00:00Z")),
            },
            record: key(RecordKind::Invoice, id).into(),
            seen: serde_json::from_value(json!({"status": "sent", "balance": "150.00", "amount": "150.00"})).unwrap(),
            action: Action::Email {
                to: vec!["amy@example.com".to_owned()],
                cc: Vec::new(),
                subject: format!("Invoice N{id}"),
                text: text.to_owned(),
                html: None,
            },
        },
    }
}

/// A firing of `workflow`'s step `step` for invoice `id`, due at 09:00 UTC on `nominal`.
fn firing(
    workflow: WorkflowKind,
    key_: &str,
    id: &str,
    step: &str,
    nominal: &str,
    decision: FiringDecision,
) -> NewFiring {
    NewFiring {
        key: key_.to_owned(),
        workflow,
        record: key(RecordKind::Invoice, id),
        step: step.to_owned(),
        nominal: day(nominal),
        due_at: at(&format!("{nominal}T09:00:00Z")),
        decision,
    }
}

/// The keys of the stored intents, oldest first.
async fn intent_keys<S: Store>(s: &S) -> Vec<String> {
    s.intents(&all_intents()).await.unwrap().into_iter().map(|i| i.key).collect()
}

fn all_firings() -> FiringQuery {
    FiringQuery { limit: 1000, ..Default::default() }
}

async fn a_firing_is_written_once_per_key_and_per_step<S: Store>(s: &S) {
    use WorkflowKind::{PaymentDue, UnsentInvoice, VendorPayment};
    let k1 = firing_key("1", "stage-1", "2026-11-17");
    let first_intents = vec![
        reminder(&k1, 0, "1", "stage-1", "2026-11-17", "due soon"),
        reminder(&k1, 1, "1", "stage-1", "2026-11-17", "copy"),
    ];
    let sent = |expires_at: Option<&str>, intents: Vec<NewIntent>| FiringDecision::Sent {
        expires_at: expires_at.map(at),
        intents,
    };
    let first =
        firing(PaymentDue, &k1, "1", "stage-1", "2026-11-17", sent(Some("2026-11-19T09:00:00Z"), first_intents));
    let t1 = at("2026-11-17T09:00:05Z");
    assert_eq!(s.save_firings(None, std::slice::from_ref(&first), t1).await.unwrap(), 1);
    assert_eq!(intent_keys(s).await, [format!("{k1}:0"), format!("{k1}:1")]);
    let stored = s.intents(&all_intents()).await.unwrap();
    assert_eq!(
        stored[0].intent.cause,
        Cause::Workflow { step: "stage-1".to_owned(), nominal: day("2026-11-17"), due: at("2026-11-17T09:00:00Z") }
    );
    assert_eq!(stored[0].created_at, t1);

    // The same firing again adds nothing.
    assert_eq!(s.save_firings(None, std::slice::from_ref(&first), at("2026-11-17T10:00:00Z")).await.unwrap(), 0);
    assert_eq!(intent_keys(s).await.len(), 2, "no intent twice");

    // The same step under another key (the due date moved) is not written, nor are its intents.
    let k1_moved = firing_key("1", "stage-1", "2026-11-20");
    let moved = firing(
        PaymentDue,
        &k1_moved,
        "1",
        "stage-1",
        "2026-11-20",
        sent(Some("2026-11-22T09:00:00Z"), vec![reminder(&k1_moved, 0, "1", "stage-1", "2026-11-20", "again")]),
    );
    assert_eq!(s.save_firings(None, &[moved], at("2026-11-20T09:00:05Z")).await.unwrap(), 0);
    assert_eq!(intent_keys(s).await, [format!("{k1}:0"), format!("{k1}:1")], "the moved step sends nothing");

    // Another step is written.
    let k2 = firing_key("1", "stage-2", "2026-11-27");
    let second = firing(
        PaymentDue,
        &k2,
        "1",
        "stage-2",
        "2026-11-27",
        sent(Some("2026-11-29T09:00:00Z"), vec![reminder(&k2, 0, "1", "stage-2", "2026-11-27", "overdue")]),
    );
    let t2 = at("2026-11-27T09:00:05Z");
    assert_eq!(s.save_firings(None, std::slice::from_ref(&second), t2).await.unwrap(), 1);
    assert_eq!(intent_keys(s).await, [format!("{k1}:0"), format!("{k1}:1"), format!("{k2}:0")]);

    // A skipped step keeps its reason and sends nothing.
    let k3 = firing_key("2", "stage-1", "2026-11-17");
    let reason = "missed while the engine was down — \"caught up\" late".to_owned();
    let skipped =
        firing(PaymentDue, &k3, "2", "stage-1", "2026-11-17", FiringDecision::Skipped { reason: reason.clone() });
    let t3 = at("2026-11-28T08:00:00Z");
    assert_eq!(s.save_firings(None, std::slice::from_ref(&skipped), t3).await.unwrap(), 1);
    assert_eq!(intent_keys(s).await.len(), 3);

    // The same step name of another workflow is another step.
    let k4 = "workflow:unsent_invoice:invoice acme/1:stage-1:2026-11-17".to_owned();
    let unsent = firing(UnsentInvoice, &k4, "1", "stage-1", "2026-11-17", sent(None, Vec::new()));
    let t4 = at("2026-11-28T09:00:00Z");
    assert_eq!(s.save_firings(None, std::slice::from_ref(&unsent), t4).await.unwrap(), 1);

    // In one call: an old firing, a new one, and the new one's step again under another key.
    let k5 = firing_key("3", "stage-1", "2026-11-17");
    let k5_moved = firing_key("3", "stage-1", "2026-11-18");
    let new = firing(
        PaymentDue,
        &k5,
        "3",
        "stage-1",
        "2026-11-17",
        sent(Some("2026-11-19T09:00:00Z"), vec![reminder(&k5, 0, "3", "stage-1", "2026-11-17", "three")]),
    );
    let twin = firing(
        PaymentDue,
        &k5_moved,
        "3",
        "stage-1",
        "2026-11-18",
        sent(Some("2026-11-20T09:00:00Z"), vec![reminder(&k5_moved, 0, "3", "stage-1", "2026-11-18", "twin")]),
    );
    let t5 = at("2026-11-29T09:00:00Z");
    assert_eq!(s.save_firings(None, &[first.clone(), new, twin], t5).await.unwrap(), 1);
    assert_eq!(intent_keys(s).await, [format!("{k1}:0"), format!("{k1}:1"), format!("{k2}:0"), format!("{k5}:0")]);

    // `decided` lists the steps of one workflow for the records asked about.
    let (i1, i2, i3) = (key(RecordKind::Invoice, "1"), key(RecordKind::Invoice, "2"), key(RecordKind::Invoice, "3"));
    let mut steps = s.decided(PaymentDue, &[i1.clone(), i2.clone(), key(RecordKind::Invoice, "9")]).await.unwrap();
    steps.sort();
    assert_eq!(steps, [(i1.clone(), "stage-1".to_owned()), (i1.clone(), "stage-2".to_owned())], "sent steps only");
    assert_eq!(s.decided(PaymentDue, std::slice::from_ref(&i3)).await.unwrap(), [(i3.clone(), "stage-1".to_owned())]);
    assert_eq!(
        s.decided(UnsentInvoice, &[i1.clone(), i2.clone()]).await.unwrap(),
        [(i1.clone(), "stage-1".to_owned())]
    );
    assert!(s.decided(VendorPayment, &[i1.clone(), i2.clone()]).await.unwrap().is_empty());
    assert!(s.decided(PaymentDue, &[key(RecordKind::Bill, "1")]).await.unwrap().is_empty(), "a bill is not an invoice");
    assert!(s.decided(PaymentDue, &[]).await.unwrap().is_empty());

    // `firings` gives them back as saved, in the order they were decided.
    let stored = |key_: &str,
                  workflow,
                  id: &str,
                  step: &str,
                  nominal: &str,
                  expires_at: Option<&str>,
                  reason: Option<&str>,
                  decided_at| StoredFiring {
        key: key_.to_owned(),
        workflow,
        record: key(RecordKind::Invoice, id),
        step: step.to_owned(),
        nominal: day(nominal),
        due_at: at(&format!("{nominal}T09:00:00Z")),
        expires_at: expires_at.map(at),
        sent: reason.is_none(),
        reason: reason.map(str::to_owned),
        decided_at,
    };
    let expected = vec![
        stored(&k1, PaymentDue, "1", "stage-1", "2026-11-17", Some("2026-11-19T09:00:00Z"), None, t1),
        stored(&k2, PaymentDue, "1", "stage-2", "2026-11-27", Some("2026-11-29T09:00:00Z"), None, t2),
        stored(&k3, PaymentDue, "2", "stage-1", "2026-11-17", None, Some(&reason), t3),
        stored(&k4, UnsentInvoice, "1", "stage-1", "2026-11-17", None, None, t4),
        stored(&k5, PaymentDue, "3", "stage-1", "2026-11-17", Some("2026-11-19T09:00:00Z"), None, t5),
    ];
    assert_eq!(s.firings(&all_firings()).await.unwrap(), expected);
    let keys =
        |q: FiringQuery| async move { s.firings(&q).await.unwrap().into_iter().map(|f| f.key).collect::<Vec<_>>() };
    assert_eq!(
        keys(FiringQuery { workflow: Some(PaymentDue), ..all_firings() }).await,
        [k1.as_str(), k2.as_str(), k3.as_str(), k5.as_str()]
    );
    assert_eq!(keys(FiringQuery { workflow: Some(UnsentInvoice), ..all_firings() }).await, [k4.as_str()]);
    assert!(keys(FiringQuery { workflow: Some(VendorPayment), ..all_firings() }).await.is_empty());
    assert_eq!(
        keys(FiringQuery { record: Some(i1.clone()), ..all_firings() }).await,
        [k1.as_str(), k2.as_str(), k4.as_str()]
    );
    assert_eq!(keys(FiringQuery { record: Some(i2.clone()), ..all_firings() }).await, [k3.as_str()]);
    assert_eq!(
        keys(FiringQuery { workflow: Some(UnsentInvoice), record: Some(i1.clone()), ..all_firings() }).await,
        [k4.as_str()]
    );
    assert!(
        keys(FiringQuery { workflow: Some(UnsentInvoice), record: Some(i2.clone()), ..all_firings() }).await.is_empty()
    );
    assert!(keys(FiringQuery { record: Some(key(RecordKind::Bill, "1")), ..all_firings() }).await.is_empty());
    assert_eq!(keys(FiringQuery { limit: 2, ..all_firings() }).await, [k1.as_str(), k2.as_str()]);

    // A step skipped on one date may still be sent on another (its due date moved), once.
    let k3_moved = firing_key("2", "stage-1", "2026-12-01");
    let later = firing(PaymentDue, &k3_moved, "2", "stage-1", "2026-12-01", sent(None, Vec::new()));
    assert_eq!(s.save_firings(None, std::slice::from_ref(&later), t5).await.unwrap(), 1);
    let k3_again = firing_key("2", "stage-1", "2026-12-02");
    let again = firing(PaymentDue, &k3_again, "2", "stage-1", "2026-12-02", sent(None, Vec::new()));
    assert_eq!(s.save_firings(None, std::slice::from_ref(&again), t5).await.unwrap(), 0, "sent once");
    assert_eq!(s.decided(PaymentDue, std::slice::from_ref(&i2)).await.unwrap(), [(i2.clone(), "stage-1".to_owned())]);
}

async fn save_firings_moves_the_cursor_and_reset_forgets_it<S: Store>(s: &S) {
    let name = "workflow:payment_due";
    let now = at("2026-11-26T17:00:00Z");
    s.save_evaluations("rules", 7, &[], &[], now).await.unwrap();
    assert_eq!(s.cursor(name).await.unwrap(), 0, "0 before its first move");
    assert_eq!(s.save_firings(Some((name, 20)), &[], now).await.unwrap(), 0);
    assert_eq!(s.cursor(name).await.unwrap(), 20);
    let k = firing_key("1", "stage-1", "2026-11-17");
    let sent = FiringDecision::Sent { expires_at: None, intents: Vec::new() };
    let skipped = firing(WorkflowKind::PaymentDue, &k, "1", "stage-1", "2026-11-17", sent);
    assert_eq!(s.save_firings(Some((name, 30)), std::slice::from_ref(&skipped), now).await.unwrap(), 1);
    assert_eq!(s.cursor(name).await.unwrap(), 30, "with firings too");
    assert_eq!(s.save_firings(Some((name, 10)), &[], now).await.unwrap(), 0);
    assert_eq!(s.cursor(name).await.unwrap(), 30, "never back");
    s.save_firings(None, &[], now).await.unwrap();
    assert_eq!(s.cursor(name).await.unwrap(), 30, "no cursor given, none moved");
    assert_eq!(s.cursor("rules").await.unwrap(), 7, "each cursor is its own");

    s.reset_cursor(name).await.unwrap();
    assert_eq!(s.cursor(name).await.unwrap(), 0, "forgotten");
    assert_eq!(s.cursor("rules").await.unwrap(), 7, "only that one");
    let decided = s.decided(WorkflowKind::PaymentDue, &[key(RecordKind::Invoice, "1")]).await.unwrap();
    assert_eq!(decided, [(key(RecordKind::Invoice, "1"), "stage-1".to_owned())], "the ledger is kept");
    s.reset_cursor(name).await.unwrap();
    s.reset_cursor("never-moved").await.unwrap();
    assert_eq!(s.cursor(name).await.unwrap(), 0, "resetting twice, or an unknown cursor, is harmless");
    assert_eq!(s.save_firings(Some((name, 5)), std::slice::from_ref(&skipped), now).await.unwrap(), 0);
    assert_eq!(s.cursor(name).await.unwrap(), 5, "from 0 again, a firing already decided still moves the cursor");
}

// ---- the outbox --------------------------------------------------------------------------------

fn all_deliveries() -> DeliveryQuery {
    DeliveryQuery { status: None, of: IntentQuery { limit: 1000, ..Default::default() } }
}

fn in_status(status: &str) -> DeliveryQuery {
    DeliveryQuery { status: Some(status.to_owned()), ..all_deliveries() }
}

async fn deliveries_of<S: Store>(s: &S) -> Vec<StoredDelivery> {
    s.deliveries(&all_deliveries()).await.unwrap()
}

/// The sequence numbers of the deliveries `q` lists.
async fn delivery_seqs<S: Store>(s: &S, q: &DeliveryQuery) -> Vec<i64> {
    s.deliveries(q).await.unwrap().iter().map(|d| d.seq).collect()
}

/// Delivery `seq` as `deliveries` lists it.
async fn delivery<S: Store>(s: &S, seq: i64) -> StoredDelivery {
    let mut found: Vec<_> = deliveries_of(s).await.into_iter().filter(|d| d.seq == seq).collect();
    assert_eq!(found.len(), 1, "one delivery {seq}: {found:?}");
    found.remove(0)
}

/// Where a delivery stands; when it is next due only for a pending one (the time means nothing
/// else).
#[derive(Debug, PartialEq)]
struct State {
    status: String,
    attempts: u32,
    reason: Option<String>,
    leased_by: Option<String>,
    next_at: Option<DateTime<Utc>>,
}

async fn state<S: Store>(s: &S, seq: i64) -> State {
    let d = delivery(s, seq).await;
    let next_at = (d.status == "pending").then_some(d.next_at);
    State { status: d.status, attempts: d.attempts, reason: d.reason, leased_by: d.leased_by, next_at }
}

/// Pending, due at `next_at`, held by `leased_by`.
fn pending(attempts: u32, next_at: DateTime<Utc>, reason: Option<&str>, leased_by: Option<&str>) -> State {
    State {
        status: "pending".to_owned(),
        attempts,
        reason: reason.map(str::to_owned),
        leased_by: leased_by.map(str::to_owned),
        next_at: Some(next_at),
    }
}

/// Delivered, dead, expired or cancelled.
fn ended(status: &str, attempts: u32, reason: Option<&str>) -> State {
    State { status: status.to_owned(), attempts, reason: reason.map(str::to_owned), leased_by: None, next_at: None }
}

/// The sequence numbers of what a claim returned.
fn seqs(claimed: &[Claimed]) -> Vec<i64> {
    claimed.iter().map(|c| c.seq).collect()
}

/// An attempt from `started` to `finished` that gave `outcome`.
fn attempt(started: &str, finished: &str, outcome: Attempted) -> Attempt {
    Attempt { started_at: at(started), finished_at: at(finished), outcome }
}

fn transient(detail: &str) -> Attempted {
    Attempted::Transient { retry_after: None, detail: detail.to_owned() }
}

/// An intent of rule `rule` about invoice `id` that does `action`.
fn intent_with(rule: &str, id: &str, event: i64, action: Action) -> Intent {
    Intent { action, ..intent(rule, id, event, "") }
}

/// `n` Slack intents of rule `paid`, keys `k00`, `k01`, …, saved at `now`; their sequence numbers.
async fn save_paid<S: Store>(s: &S, n: usize, now: DateTime<Utc>) -> Vec<i64> {
    let batch: Vec<NewIntent> =
        (0..n).map(|i| new_intent(&format!("k{i:02}"), intent("paid", &i.to_string(), 7, "paid"))).collect();
    assert_eq!(s.save_evaluations("rules", 7, &batch, &[], now).await.unwrap(), n as u64);
    s.intents(&all_intents()).await.unwrap().iter().map(|i| i.seq).collect()
}

const LEASE: chrono::Duration = chrono::Duration::minutes(5);

async fn each_intent_gets_one_pending_delivery_with_its_expiry<S: Store>(s: &S) {
    let t0 = at("2026-11-26T17:00:00Z");
    let slack = new_intent("rule:paid:event:7:0", intent("paid", "1", 7, "💰 paid"));
    let email = Action::Email {
        to: vec!["ar@example.com".to_owned()],
        cc: Vec::new(),
        subject: "Paid".to_owned(),
        text: "N1 was paid".to_owned(),
        html: None,
    };
    let email = new_intent("rule:paid:event:7:1", intent_with("paid", "1", 7, email));
    let webhook = Action::Webhook { destination: "crm".to_owned(), payload: json!({"invoice": "N1"}) };
    let webhook = new_intent("rule:paid:event:7:2", intent_with("paid", "1", 7, webhook));
    let batch = [slack.clone(), email, webhook];
    assert_eq!(s.save_evaluations("rules", 7, &batch, &[], t0).await.unwrap(), 3);
    let expect =
        |i: &invoiceflow::store::StoredIntent, channel: &str, destination: Option<&str>, now, expires| StoredDelivery {
            seq: i.seq,
            key: i.key.clone(),
            channel: channel.to_owned(),
            destination: destination.map(str::to_owned),
            status: "pending".to_owned(),
            attempts: 0,
            next_at: now,
            expires_at: Some(expires),
            reason: None,
            leased_by: None,
            decided_at: i.created_at,
            updated_at: now,
            intent: i.intent.clone(),
        };
    let intents = s.intents(&all_intents()).await.unwrap();
    let in_48h = at("2026-11-28T17:00:00Z");
    assert_eq!(t0 + RULE_DELIVERY_EXPIRY, in_48h);
    let mut expected = vec![
        expect(&intents[0], "slack", Some("finance"), t0, in_48h),
        expect(&intents[1], "email", None, t0, in_48h),
        expect(&intents[2], "webhook", Some("crm"), t0, in_48h),
    ];
    assert_eq!(deliveries_of(s).await, expected, "one pending delivery per intent, due at once, for 48 hours");

    // The same intents again, alone or with a new one, add no second delivery and keep the first.
    let t1 = at("2026-11-26T18:00:00Z");
    assert_eq!(s.save_evaluations("rules", 7, &batch, &[], t1).await.unwrap(), 0);
    let task = Action::Task { title: "Call Amy".to_owned(), notes: None, assignee: None, due: None, approval: false };
    let task = new_intent("rule:paid:event:8:0", intent_with("paid", "2", 8, task));
    assert_eq!(s.save_evaluations("rules", 8, &[slack, task], &[], t1).await.unwrap(), 1);
    let intents = s.intents(&all_intents()).await.unwrap();
    expected.push(expect(&intents[3], "task", None, t1, at("2026-11-28T18:00:00Z")));
    assert_eq!(deliveries_of(s).await, expected, "no delivery twice; a new one from its own save");

    // A schedule slot's intents too.
    let t2 = at("2026-11-26T19:00:00Z");
    let slot = new_intent("rule:weekly:slot:0", intent("weekly", "3", 0, "weekly"));
    let enroll = [key(RecordKind::Invoice, "3")];
    assert_eq!(s.save_slot("weekly", &enroll, &[], std::slice::from_ref(&slot), &[], t2).await.unwrap(), 1);
    assert_eq!(s.save_slot("weekly", &[], &[], std::slice::from_ref(&slot), &[], t2).await.unwrap(), 0);
    let intents = s.intents(&all_intents()).await.unwrap();
    expected.push(expect(&intents[4], "slack", Some("finance"), t2, at("2026-11-28T19:00:00Z")));
    assert_eq!(deliveries_of(s).await, expected);

    // A workflow step's intents expire when the step says (the next step's time), else in 48 hours.
    let t3 = at("2026-11-27T09:00:05Z");
    let step_expiry = at("2026-11-28T09:00:00Z");
    let sent = |k: &str, id: &str, expires_at: Option<DateTime<Utc>>, n: usize| {
        let intents = (0..n).map(|i| reminder(k, i, id, "stage-1", "2026-11-27", "due")).collect();
        firing(WorkflowKind::PaymentDue, k, id, "stage-1", "2026-11-27", FiringDecision::Sent { expires_at, intents })
    };
    let (k1, k2, k3) = (
        firing_key("1", "stage-1", "2026-11-27"),
        firing_key("2", "stage-1", "2026-11-27"),
        firing_key("3", "stage-1", "2026-11-27"),
    );
    let first = sent(&k1, "1", Some(step_expiry), 2);
    let skipped = FiringDecision::Skipped { reason: "paid meanwhile".to_owned() };
    let firings = [
        first.clone(),
        sent(&k2, "2", None, 1),
        firing(WorkflowKind::PaymentDue, &k3, "3", "stage-1", "2026-11-27", skipped),
    ];
    assert_eq!(s.save_firings(None, &firings, t3).await.unwrap(), 3);
    let intents = s.intents(&all_intents()).await.unwrap();
    assert_eq!(intents.len(), 8);
    expected.push(expect(&intents[5], "email", None, t3, step_expiry));
    expected.push(expect(&intents[6], "email", None, t3, step_expiry));
    expected.push(expect(&intents[7], "email", None, t3, t3 + RULE_DELIVERY_EXPIRY));
    assert_eq!(deliveries_of(s).await, expected, "a skipped step delivers nothing");
    assert_eq!(s.save_firings(None, &[first], at("2026-11-27T10:00:00Z")).await.unwrap(), 0);
    assert_eq!(deliveries_of(s).await, expected, "the same firing again adds no delivery");

    // Listed by status, after a sequence number, at most `limit`.
    let all: Vec<i64> = expected.iter().map(|d| d.seq).collect();
    assert_eq!(delivery_seqs(s, &in_status("pending")).await, all);
    assert!(delivery_seqs(s, &in_status("delivered")).await.is_empty());
    assert_eq!(
        delivery_seqs(
            s,
            &DeliveryQuery { of: IntentQuery { after_seq: Some(all[5]), ..all_deliveries().of }, ..all_deliveries() }
        )
        .await,
        all[6..]
    );
    assert_eq!(
        delivery_seqs(s, &DeliveryQuery { of: IntentQuery { limit: 2, ..all_deliveries().of }, ..all_deliveries() })
            .await,
        all[..2]
    );
}

async fn a_claimed_delivery_belongs_to_one_node_until_its_lease_runs_out<S: Store>(s: &S) {
    let t0 = at("2026-11-26T17:00:00Z");
    let paid = new_intent("rule:paid:event:7:0", intent("paid", "1", 7, "💰 paid"));
    s.save_evaluations("rules", 7, std::slice::from_ref(&paid), &[], t0).await.unwrap();
    let seq = s.intents(&all_intents()).await.unwrap()[0].seq;

    // A leases it until 17:05:01.
    let a = s.claim("node-a", at("2026-11-26T17:00:01Z"), LEASE, 10).await.unwrap();
    let expected = Claimed {
        seq,
        key: paid.key.clone(),
        intent: paid.intent.clone(),
        attempts: 0,
        expires_at: Some(at("2026-11-28T17:00:00Z")),
    };
    assert_eq!(a, std::slice::from_ref(&expected));
    assert_eq!(state(s, seq).await, pending(0, t0, None, Some("node-a")));

    // While A's lease runs, no node gets it, not even A again.
    let claim = |node: &'static str, now: &str| {
        let now = at(now);
        async move { seqs(&s.claim(node, now, LEASE, 10).await.unwrap()) }
    };
    assert!(claim("node-b", "2026-11-26T17:00:01Z").await.is_empty(), "B at the same moment");
    assert!(claim("node-a", "2026-11-26T17:03:00Z").await.is_empty(), "A again");
    assert!(claim("node-b", "2026-11-26T17:05:00Z").await.is_empty(), "B just before the lease runs out");
    assert!(!s.retry_delivery(seq, at("2026-11-26T17:04:00Z")).await.unwrap(), "no retry while it is being tried");
    assert!(claim("node-b", "2026-11-26T17:04:00Z").await.is_empty(), "the refused retry freed nothing");

    // Once it ran out (A died, or hangs), B takes it over: no attempt was finished yet.
    let b = s.claim("node-b", at("2026-11-26T17:05:02Z"), LEASE, 10).await.unwrap();
    assert_eq!(b, [expected]);
    assert_eq!(state(s, seq).await, pending(0, t0, None, Some("node-b")));

    // A's late attempt is recorded but moves nothing: the delivery is B's now.
    let late = attempt("2026-11-26T17:00:01Z", "2026-11-26T17:05:30Z", Attempted::Delivered);
    assert!(!s.finish(seq, "node-a", &late, &Next::Delivered).await.unwrap());
    assert_eq!(state(s, seq).await, pending(0, t0, None, Some("node-b")));

    // B's is the one that counts.
    let done = attempt("2026-11-26T17:05:02Z", "2026-11-26T17:05:03Z", Attempted::Delivered);
    assert!(s.finish(seq, "node-b", &done, &Next::Delivered).await.unwrap());
    assert_eq!(state(s, seq).await, ended("delivered", 1, None));
    assert_eq!(delivery(s, seq).await.expires_at, Some(at("2026-11-28T17:00:00Z")));

    // Delivered: never claimed again, and finishing again moves nothing.
    assert!(claim("node-c", "2026-11-26T18:00:00Z").await.is_empty());
    assert!(!s.finish(seq, "node-b", &done, &Next::Delivered).await.unwrap(), "B holds no lease any more");
    assert!(!s.finish(seq, "node-c", &done, &Next::RetryAt(at("2026-11-26T19:00:00Z"))).await.unwrap());
    assert_eq!(delivery_seqs(s, &in_status("delivered")).await, [seq]);
    assert_eq!(state(s, seq).await, ended("delivered", 1, None));
}

async fn a_node_claiming_again_gets_only_what_it_did_not_hold<S: Store>(s: &S) {
    let t0 = at("2026-11-26T17:00:00Z");
    let all = save_paid(s, 3, t0).await;
    let first = s.claim("node-a", t0, LEASE, 2).await.unwrap();
    assert_eq!(seqs(&first), all[..2], "at most `limit`, oldest first");
    // The same node asks again at the same instant (another of its workers, a coarse clock).
    let second = s.claim("node-a", t0, LEASE, 2).await.unwrap();
    assert_eq!(seqs(&second), all[2..], "the rest only: the first two are being delivered already");
    assert!(s.claim("node-a", t0, LEASE, 2).await.unwrap().is_empty());
}

async fn a_transient_failure_waits_for_its_next_try_and_expiry_drops_it<S: Store>(s: &S) {
    let t0 = at("2026-11-26T17:00:00Z");
    let all = save_paid(s, 2, t0).await;
    let (seq, other) = (all[0], all[1]);
    let expires = Some(at("2026-11-28T17:00:00Z"));
    let claim = |node: &'static str, now: &str| {
        let now = at(now);
        async move { s.claim(node, now, LEASE, 10).await.unwrap() }
    };
    assert_eq!(seqs(&claim("node-a", "2026-11-26T17:00:00Z").await), all, "due at once");

    // A transient failure: pending again, due at its next try, the error kept, the lease let go.
    let error = "503 Service Unavailable";
    let retry_at = at("2026-11-26T17:10:00Z");
    let failed = attempt("2026-11-26T17:00:00Z", "2026-11-26T17:00:02Z", transient(error));
    assert!(s.finish(seq, "node-a", &failed, &Next::RetryAt(retry_at)).await.unwrap());
    assert_eq!(state(s, seq).await, pending(1, retry_at, Some(error), None));
    let retry_late = at("2026-11-28T16:00:00Z");
    let timeout = attempt("2026-11-26T17:00:00Z", "2026-11-26T17:00:30Z", transient("timeout"));
    assert!(s.finish(other, "node-a", &timeout, &Next::RetryAt(retry_late)).await.unwrap());
    assert_eq!(state(s, other).await, pending(1, retry_late, Some("timeout"), None));

    // Not before its next try, whoever asks; at it, with the attempt counted and the error kept.
    assert!(claim("node-b", "2026-11-26T17:09:59Z").await.is_empty());
    let again = claim("node-b", "2026-11-26T17:10:00Z").await;
    assert_eq!(seqs(&again), [seq]);
    assert_eq!((again[0].attempts, again[0].expires_at), (1, expires));
    assert_eq!(state(s, seq).await, pending(1, retry_at, Some(error), Some("node-b")));

    // Its next try would come after its expiry: the retry policy says Expired, and it is dropped.
    let why = "503 Service Unavailable (the next try, at 2026-11-28 20:10 UTC, would be after the expiry)";
    let second = attempt("2026-11-26T17:10:00Z", "2026-11-26T17:10:01Z", transient(error));
    assert!(s.finish(seq, "node-b", &second, &Next::Expired(why.to_owned())).await.unwrap());
    assert_eq!(state(s, seq).await, ended("expired", 2, Some(why)));

    // One still pending when its expiry passes is expired by the next claim, not handed out; the
    // node holding it then (its lease runs to 17:03) holds it no more, and cannot finish it.
    assert!(claim("node-a", "2026-11-28T15:59:59Z").await.is_empty(), "not yet due");
    assert_eq!(seqs(&claim("node-a", "2026-11-28T16:58:00Z").await), [other], "due, not yet expired");
    assert!(claim("node-b", "2026-11-28T17:00:01Z").await.is_empty(), "past its expiry");
    let d = delivery(s, other).await;
    assert_eq!((d.status.as_str(), d.attempts, d.leased_by, d.expires_at), ("expired", 1, None, expires));
    assert!(d.reason.is_some_and(|r| r != "timeout"), "an expired delivery says why");
    let too_late = attempt("2026-11-28T16:58:00Z", "2026-11-28T17:00:02Z", Attempted::Delivered);
    assert!(!s.finish(other, "node-a", &too_late, &Next::Delivered).await.unwrap());
    assert_eq!(delivery(s, other).await.status, "expired");
    assert_eq!(delivery_seqs(s, &in_status("expired")).await, [seq, other]);
    assert!(delivery_seqs(s, &in_status("pending")).await.is_empty());
}

async fn dead_deliveries_can_be_retried_and_pending_ones_cancelled<S: Store>(s: &S) {
    let t0 = at("2026-11-26T17:00:00Z");
    let all = save_paid(s, 3, t0).await;
    let (dead, done, waiting) = (all[0], all[1], all[2]);
    assert_eq!(seqs(&s.claim("node-a", t0, LEASE, 10).await.unwrap()), all);
    let claim =
        |node: &'static str, now: DateTime<Utc>| async move { seqs(&s.claim(node, now, LEASE, 10).await.unwrap()) };

    let t = "2026-11-26T17:00:01Z";
    let gone = Attempted::Permanent { detail: "404 channel_not_found".to_owned(), disable_destination: false };
    let why = "404 channel_not_found";
    assert!(s.finish(dead, "node-a", &attempt(t, t, gone), &Next::Dead(why.to_owned())).await.unwrap());
    assert_eq!(state(s, dead).await, ended("dead", 1, Some(why)));
    assert!(s.finish(done, "node-a", &attempt(t, t, Attempted::Delivered), &Next::Delivered).await.unwrap());
    let retry_at = at("2026-11-26T17:05:00Z");
    let bad_gateway = attempt(t, t, transient("502 Bad Gateway"));
    assert!(s.finish(waiting, "node-a", &bad_gateway, &Next::RetryAt(retry_at)).await.unwrap());

    // A pending delivery can be cancelled, and is then never claimed; only a pending one.
    let t1 = at("2026-11-26T17:01:00Z");
    let paid = "the customer paid meanwhile";
    assert!(s.cancel_delivery(waiting, paid, t1).await.unwrap());
    assert_eq!(state(s, waiting).await, ended("cancelled", 1, Some(paid)));
    assert!(!s.cancel_delivery(waiting, "twice", t1).await.unwrap(), "already cancelled");
    assert!(!s.cancel_delivery(done, "too late", t1).await.unwrap(), "delivered");
    assert!(!s.cancel_delivery(dead, "dead", t1).await.unwrap(), "dead");
    assert!(!s.cancel_delivery(all[2] + 1000, "unknown", t1).await.unwrap(), "no such delivery");
    assert_eq!(state(s, waiting).await, ended("cancelled", 1, Some(paid)), "the first reason is kept");
    assert_eq!(state(s, done).await, ended("delivered", 1, None));
    assert_eq!(state(s, dead).await, ended("dead", 1, Some(why)));
    assert!(claim("node-a", at("2026-11-26T18:00:00Z")).await.is_empty(), "dead, delivered and cancelled");

    // A delivered one is never retried.
    let t2 = at("2026-11-26T19:00:00Z");
    assert!(!s.retry_delivery(done, t2).await.unwrap());
    assert_eq!(state(s, done).await, ended("delivered", 1, None));
    assert!(!s.retry_delivery(all[2] + 1000, t2).await.unwrap(), "no such delivery");

    // A dead one is pending again, due at once, its attempts kept, its reason gone.
    assert!(s.retry_delivery(dead, t2).await.unwrap());
    assert_eq!(state(s, dead).await, pending(1, t2, None, None));
    let again = s.claim("node-b", t2, LEASE, 10).await.unwrap();
    assert_eq!(seqs(&again), [dead]);
    assert_eq!(again[0].attempts, 1);

    // Cancelling one a node holds takes it from that node: its late finish cannot revive it.
    let by_hand = "sent by hand";
    assert!(s.cancel_delivery(dead, by_hand, t2).await.unwrap());
    assert_eq!(state(s, dead).await, ended("cancelled", 1, Some(by_hand)));
    let late = attempt("2026-11-26T19:00:00Z", "2026-11-26T19:00:01Z", transient("timeout"));
    assert!(!s.finish(dead, "node-b", &late, &Next::RetryAt(at("2026-11-26T19:05:00Z"))).await.unwrap());
    assert_eq!(state(s, dead).await, ended("cancelled", 1, Some(by_hand)));
    assert!(claim("node-b", at("2026-11-26T19:30:00Z")).await.is_empty());

    // A cancelled one may be retried (it was cancelled by mistake).
    let t3 = at("2026-11-26T20:00:00Z");
    assert!(s.retry_delivery(waiting, t3).await.unwrap());
    assert_eq!(state(s, waiting).await, pending(1, t3, None, None));
    assert_eq!(claim("node-c", t3).await, [waiting]);
}

/// Node `node` finishes each of `seqs` as delivered; whether each moved.
async fn deliver_all<S: Store>(s: &S, node: &str, seqs: &[i64]) -> Vec<bool> {
    let ok = attempt("2026-11-26T20:00:00Z", "2026-11-26T20:00:01Z", Attempted::Delivered);
    let mut moved = Vec::new();
    for seq in seqs {
        moved.push(s.finish(*seq, node, &ok, &Next::Delivered).await.unwrap());
    }
    moved
}

async fn concurrent_claims_never_share_a_delivery<S: Store>(s: &S) {
    let t0 = at("2026-11-26T17:00:00Z");
    let all = save_paid(s, 20, t0).await;
    let sorted = |mut seqs: Vec<i64>| {
        seqs.sort_unstable();
        seqs
    };
    // Each round starts after the last one's leases ran out: every delivery is up for grabs again.
    let round_at = |round: i64| t0 + chrono::Duration::minutes(10 * round);
    for round in 0..12 {
        let now = round_at(round);
        let (a, b) = tokio::join!(s.claim("node-a", now, LEASE, 15), s.claim("node-b", now, LEASE, 15));
        let (a, b) = (seqs(&a.unwrap()), seqs(&b.unwrap()));
        assert!(a.len() <= 15 && b.len() <= 15, "round {round}: {a:?} {b:?}");
        let union = sorted(a.iter().chain(&b).copied().collect());
        assert_eq!(union, all, "round {round}: each delivery to one node, none left (a {a:?}, b {b:?})");
    }
    for round in 12..18 {
        let now = round_at(round);
        let (a, b, c) = tokio::join!(
            s.claim("node-a", now, LEASE, 8),
            s.claim("node-b", now, LEASE, 8),
            s.claim("node-c", now, LEASE, 8)
        );
        let claims = [seqs(&a.unwrap()), seqs(&b.unwrap()), seqs(&c.unwrap())];
        assert!(claims.iter().all(|c| c.len() <= 8), "round {round}: {claims:?}");
        let union = sorted(claims.iter().flatten().copied().collect());
        assert_eq!(union, all, "round {round}: each delivery to one of three nodes, none left ({claims:?})");
    }

    // The last round's holders deliver concurrently: each delivery once, by its holder.
    let now = round_at(18);
    let (a, b) = tokio::join!(s.claim("node-a", now, LEASE, 15), s.claim("node-b", now, LEASE, 15));
    let (a, b) = (seqs(&a.unwrap()), seqs(&b.unwrap()));
    assert_eq!(sorted(a.iter().chain(&b).copied().collect()), all);
    let (moved_a, moved_b) = tokio::join!(deliver_all(s, "node-a", &a), deliver_all(s, "node-b", &b));
    assert!(moved_a.into_iter().chain(moved_b).all(|moved| moved));
    let delivered = s.deliveries(&in_status("delivered")).await.unwrap();
    assert_eq!(delivered.iter().map(|d| d.seq).collect::<Vec<_>>(), all);
    assert!(delivered.iter().all(|d| d.attempts == 1 && d.leased_by.is_none()), "{delivered:?}");
    assert!(s.claim("node-c", now + chrono::Duration::hours(1), LEASE, 100).await.unwrap().is_empty());
}

/// One row of the attempt log (`delivery_attempts`). No store method reads it back: the tests read
/// it from the database itself.
#[derive(Debug, PartialEq)]
struct Logged {
    attempt: i64,
    node: String,
    outcome: String,
    detail: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
}

/// Attempt number `n` of `a`, by node `node`, logged as `outcome` with `detail`.
fn logged(n: i64, node: &str, outcome: &str, detail: Option<&str>, a: &Attempt) -> Logged {
    Logged {
        attempt: n,
        node: node.to_owned(),
        outcome: outcome.to_owned(),
        detail: detail.map(str::to_owned),
        started_at: a.started_at,
        finished_at: a.finished_at,
    }
}

/// The database a test's store writes to, for reading its attempt log.
enum AttemptLog {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl AttemptLog {
    /// The attempts logged for delivery `seq`, in the order they were recorded.
    async fn of(&self, seq: i64) -> Vec<Logged> {
        const SQL: &str = "SELECT CAST(attempt AS BIGINT), node, outcome, detail, started_at, finished_at \
            FROM delivery_attempts WHERE intent_seq = $1 ORDER BY seq";
        type Row = (i64, String, String, Option<String>, i64, i64);
        let rows: Vec<Row> = match self {
            Self::Sqlite(pool) => sqlx::query_as(SQL).bind(seq).fetch_all(pool).await.unwrap(),
            Self::Postgres(pool) => sqlx::query_as(SQL).bind(seq).fetch_all(pool).await.unwrap(),
        };
        let time = |micros| DateTime::from_timestamp_micros(micros).unwrap();
        rows.into_iter()
            .map(|(attempt, node, outcome, detail, started, finished)| Logged {
                attempt,
                node,
                outcome,
                detail,
                started_at: time(started),
                finished_at: time(finished),
            })
            .collect()
    }

    /// How many attempts are logged, of every delivery.
    async fn len(&self) -> i64 {
        const SQL: &str = "SELECT count(*) FROM delivery_attempts";
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await.unwrap(),
            Self::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await.unwrap(),
        }
    }

    async fn close(self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Attempt `attempt` of delivery `seq`, and what becomes of the delivery.
fn finished(seq: i64, attempt: &Attempt, next: Next) -> Finished {
    Finished { seq, attempt: attempt.clone(), next }
}

async fn finish_all_records_each_attempt_and_moves_what_the_node_holds<S: Store>(s: &S, log: &AttemptLog) {
    let t0 = at("2026-11-26T17:00:00Z");
    let all = save_paid(s, 5, t0).await;
    let (lost, done, waiting, dead, later) = (all[0], all[1], all[2], all[3], all[4]);

    // Nothing to finish: nothing moves, nothing is logged.
    let before = deliveries_of(s).await;
    assert_eq!(s.finish_all("node-a", &[]).await.unwrap(), Vec::<bool>::new());
    assert_eq!(deliveries_of(s).await, before);
    assert_eq!(log.len().await, 0);

    // A leases the first; its lease runs out and B takes it over; A then leases the other four.
    assert_eq!(seqs(&s.claim("node-a", t0, LEASE, 1).await.unwrap()), [lost]);
    let t1 = at("2026-11-26T17:05:01Z");
    assert_eq!(seqs(&s.claim("node-b", t1, LEASE, 1).await.unwrap()), [lost]);
    assert_eq!(seqs(&s.claim("node-a", t1, LEASE, 10).await.unwrap()), all[1..]);

    // A finishes all five in one call, the one B holds now among them.
    let ok = attempt("2026-11-26T17:05:01Z", "2026-11-26T17:05:02Z", Attempted::Delivered);
    let late = attempt("2026-11-26T17:00:00Z", "2026-11-26T17:05:03Z", Attempted::Delivered);
    let unavailable = attempt("2026-11-26T17:05:01Z", "2026-11-26T17:05:04Z", transient("503 Service Unavailable"));
    let gone = Attempted::Permanent { detail: "404 channel_not_found".to_owned(), disable_destination: false };
    let gone = attempt("2026-11-26T17:05:01Z", "2026-11-26T17:05:05Z", gone);
    let timeout = attempt("2026-11-26T17:05:01Z", "2026-11-26T17:05:31Z", transient("timeout"));
    let (retry_at, retry_later) = (at("2026-11-26T17:10:00Z"), at("2026-11-26T18:00:00Z"));
    let why = "404 channel_not_found (permanent)";
    let round = [
        finished(done, &ok, Next::Delivered),
        finished(lost, &late, Next::Delivered),
        finished(waiting, &unavailable, Next::RetryAt(retry_at)),
        finished(dead, &gone, Next::Dead(why.to_owned())),
        finished(later, &timeout, Next::RetryAt(retry_later)),
    ];
    assert_eq!(s.finish_all("node-a", &round).await.unwrap(), [true, false, true, true, true]);
    assert_eq!(state(s, done).await, ended("delivered", 1, None));
    assert_eq!(state(s, waiting).await, pending(1, retry_at, Some("503 Service Unavailable"), None));
    assert_eq!(state(s, dead).await, ended("dead", 1, Some(why)));
    assert_eq!(state(s, later).await, pending(1, retry_later, Some("timeout"), None));
    assert_eq!(delivery(s, done).await.updated_at, ok.finished_at, "moved when its attempt ended");

    // A's late attempt is logged, by A, but the delivery is left to B, who finishes it.
    assert_eq!(state(s, lost).await, pending(0, t0, None, Some("node-b")));
    assert_eq!(log.of(lost).await, [logged(1, "node-a", "delivered", None, &late)]);
    let by_b = attempt("2026-11-26T17:05:01Z", "2026-11-26T17:05:06Z", Attempted::Delivered);
    assert_eq!(s.finish_all("node-b", &[finished(lost, &by_b, Next::Delivered)]).await.unwrap(), [true]);
    assert_eq!(state(s, lost).await, ended("delivered", 1, None), "the attempt that moved it is the one counted");
    assert_eq!(
        log.of(lost).await,
        [logged(1, "node-a", "delivered", None, &late), logged(2, "node-b", "delivered", None, &by_b)],
        "the log numbers every attempt recorded"
    );

    // Each delivery's attempts are numbered from 1, whatever else the call finished.
    assert_eq!(log.of(done).await, [logged(1, "node-a", "delivered", None, &ok)]);
    assert_eq!(log.of(dead).await, [logged(1, "node-a", "permanent", Some("404 channel_not_found"), &gone)]);
    assert_eq!(log.of(later).await, [logged(1, "node-a", "transient", Some("timeout"), &timeout)]);

    // The retried one, due again, is claimed and finished in a second round: its attempt 2.
    assert!(s.claim("node-b", at("2026-11-26T17:09:59Z"), LEASE, 10).await.unwrap().is_empty());
    let t2 = at("2026-11-26T17:10:00Z");
    let again = s.claim("node-b", t2, LEASE, 10).await.unwrap();
    assert_eq!(seqs(&again), [waiting]);
    assert_eq!(again[0].attempts, 1);
    let second = attempt("2026-11-26T17:10:00Z", "2026-11-26T17:10:01Z", Attempted::Delivered);
    let round = [finished(waiting, &second, Next::Delivered), finished(done, &second, Next::Delivered)];
    assert_eq!(s.finish_all("node-b", &round).await.unwrap(), [true, false], "B never held the delivered one");
    assert_eq!(log.of(done).await.len(), 2, "its attempt is logged all the same");
    assert_eq!(state(s, waiting).await, ended("delivered", 2, None));
    assert_eq!(state(s, done).await, ended("delivered", 1, None));
    assert_eq!(
        log.of(waiting).await,
        [
            logged(1, "node-a", "transient", Some("503 Service Unavailable"), &unavailable),
            logged(2, "node-b", "delivered", None, &second),
        ]
    );
    assert_eq!(log.len().await, 8);

    // Nothing to finish, again: nothing changes.
    let before = deliveries_of(s).await;
    assert_eq!(s.finish_all("node-b", &[]).await.unwrap(), Vec::<bool>::new());
    assert_eq!(deliveries_of(s).await, before);
    assert_eq!(log.len().await, 8);
}

async fn a_deferred_delivery_waits_without_an_attempt_and_only_its_holder_defers_it<S: Store>(s: &S, log: &AttemptLog) {
    let t0 = at("2026-11-26T17:00:00Z");
    let all = save_paid(s, 3, t0).await;
    let (seq, held, other) = (all[0], all[1], all[2]);
    assert_eq!(seqs(&s.claim("node-a", t0, LEASE, 10).await.unwrap()), all);

    // A first attempt fails; B takes it at its next try, with the third.
    let error = "503 Service Unavailable";
    let t1 = at("2026-11-26T17:01:00Z");
    let failed = attempt("2026-11-26T17:00:00Z", "2026-11-26T17:00:02Z", transient(error));
    assert!(s.finish(seq, "node-a", &failed, &Next::RetryAt(t1)).await.unwrap());
    assert!(s.finish(other, "node-a", &failed, &Next::RetryAt(t1)).await.unwrap());
    assert_eq!(seqs(&s.claim("node-b", t1, LEASE, 10).await.unwrap()), [seq, other]);

    // B puts it off (the peer's pace): not an attempt, the lease let go, due at `until`.
    let until = at("2026-11-26T17:03:00Z");
    let now = at("2026-11-26T17:01:00.5Z");
    assert!(s.defer(seq, "node-b", until, now).await.unwrap());
    assert_eq!(state(s, seq).await, pending(1, until, Some(error), None));
    assert_eq!(delivery(s, seq).await.updated_at, now);
    assert_eq!(log.of(seq).await, [logged(1, "node-a", "transient", Some(error), &failed)]);
    // Only that delivery: B's other one and A's are as they were.
    assert_eq!(state(s, other).await, pending(1, t1, Some(error), Some("node-b")));
    assert_eq!(state(s, held).await, pending(0, t0, None, Some("node-a")));

    // Not claimed before `until`, whoever asks; at `until`, with its one attempt.
    assert!(s.claim("node-c", at("2026-11-26T17:02:59Z"), LEASE, 10).await.unwrap().is_empty());
    assert!(s.claim("node-b", at("2026-11-26T17:02:59.999999Z"), LEASE, 10).await.unwrap().is_empty());
    let again = s.claim("node-c", until, LEASE, 10).await.unwrap();
    assert_eq!(seqs(&again), [seq]);
    assert_eq!(again[0].attempts, 1, "the deferral counted no attempt");
    assert_eq!(state(s, seq).await, pending(1, until, Some(error), Some("node-c")));

    // A node that does not hold it cannot defer it: not the one that did (B), nor another (A),
    // nor anyone for a delivery that does not exist.
    let unchanged = delivery(s, seq).await;
    let far = at("2026-11-27T12:00:00Z");
    assert!(!s.defer(seq, "node-b", far, until).await.unwrap(), "B let it go");
    assert!(!s.defer(seq, "node-a", far, until).await.unwrap(), "A never held it this time");
    assert!(!s.defer(all[2] + 1000, "node-c", far, until).await.unwrap(), "no such delivery");
    assert_eq!(delivery(s, seq).await, unchanged);
    assert_eq!(state(s, held).await, pending(0, t0, None, Some("node-a")));

    // C delivers it: its second attempt, counted and logged as the second.
    let ok = attempt("2026-11-26T17:03:00Z", "2026-11-26T17:03:01Z", Attempted::Delivered);
    assert!(s.finish(seq, "node-c", &ok, &Next::Delivered).await.unwrap());
    assert_eq!(state(s, seq).await, ended("delivered", 2, None));
    assert_eq!(
        log.of(seq).await,
        [logged(1, "node-a", "transient", Some(error), &failed), logged(2, "node-c", "delivered", None, &ok)]
    );

    // A delivered one is not deferred, not even by its last holder.
    assert!(!s.defer(seq, "node-c", far, at("2026-11-26T17:04:00Z")).await.unwrap());
    assert_eq!(state(s, seq).await, ended("delivered", 2, None));

    // Nor a cancelled one, though it was held when cancelled.
    assert!(s.cancel_delivery(other, "paid meanwhile", at("2026-11-26T17:04:00Z")).await.unwrap());
    assert!(!s.defer(other, "node-b", far, at("2026-11-26T17:04:01Z")).await.unwrap());
    assert_eq!(state(s, other).await, ended("cancelled", 1, Some("paid meanwhile")));
    assert_eq!(log.len().await, 3, "two failed attempts and one delivered: no deferral is logged");
}

async fn a_destination_is_disabled_once_until_enabled<S: Store>(s: &S) {
    let disabled = |name: &str, reason: &str, at: DateTime<Utc>| DisabledDestination {
        name: name.to_owned(),
        reason: reason.to_owned(),
        disabled_at: at,
    };
    assert!(s.disabled_destinations().await.unwrap().is_empty());

    // The first disable counts, with its reason and time (to the microsecond); a second one keeps them.
    let (t1, t2) = (at("2026-11-26T17:00:00.123456Z"), at("2026-11-26T18:00:00Z"));
    assert!(s.disable_destination("finance", "404 channel_not_found", t1).await.unwrap());
    assert!(!s.disable_destination("finance", "410 channel_is_archived", t2).await.unwrap());
    assert!(s.disable_destination("crm", "410 Gone", t2).await.unwrap());
    let both = [disabled("crm", "410 Gone", t2), disabled("finance", "404 channel_not_found", t1)];
    assert_eq!(s.disabled_destinations().await.unwrap(), both, "by name, each with its first reason");

    // Enabled: no longer listed; enabling again, or one never disabled, changes nothing.
    assert!(s.enable_destination("finance").await.unwrap());
    assert!(!s.enable_destination("finance").await.unwrap());
    assert!(!s.enable_destination("alerts").await.unwrap());
    assert_eq!(s.disabled_destinations().await.unwrap(), [disabled("crm", "410 Gone", t2)]);

    // Disabled again after that: a first time again, with the new reason.
    let t3 = at("2026-11-27T09:00:00Z");
    assert!(s.disable_destination("finance", "410 channel_is_archived", t3).await.unwrap());
    assert_eq!(
        s.disabled_destinations().await.unwrap(),
        [disabled("crm", "410 Gone", t2), disabled("finance", "410 channel_is_archived", t3)]
    );
    assert!(s.enable_destination("crm").await.unwrap());
    assert!(s.enable_destination("finance").await.unwrap());
    assert!(s.disabled_destinations().await.unwrap().is_empty());
}

fn pair(access: &str, refresh: &str, at: DateTime<Utc>) -> TokenPair {
    TokenPair {
        access_token: SecretString::new(access),
        access_expires_at: at + chrono::Duration::hours(1),
        refresh_token: SecretString::new(refresh),
        refresh_expires_at: at + chrono::Duration::days(100),
    }
}

async fn a_quickbooks_connection_keeps_its_tokens_and_refreshes_one_node_at_a_time<S: QuickBooksStore>(s: &S) {
    let acme = AccountName::new("acme").unwrap();
    let t0 = at("2026-11-26T09:00:00.000001Z");
    assert!(s.connections().await.unwrap().is_empty());
    s.connect_company(&acme, "9341", &pair("a1", "r1", t0), t0).await.unwrap();
    let c = &s.connections().await.unwrap()[0];
    assert_eq!((c.company.as_str(), c.realm_id.as_str(), c.state), ("acme", "9341", ConnectionState::Connected));
    assert_eq!(c.tokens, Some(pair("a1", "r1", t0)), "tokens and expiries to the microsecond");
    assert_eq!((c.token_version, c.connected_at, c.synced_through, c.errors), (1, t0, None, 0));

    // One refresh in flight: node a takes it, node b cannot until a's lease runs out.
    let (t1, lease) = (t0 + chrono::Duration::minutes(55), chrono::Duration::seconds(30));
    assert!(s.claim_refresh(&acme, "node-a", 1, t1, t1 + lease).await.unwrap());
    assert!(!s.claim_refresh(&acme, "node-b", 1, t1, t1 + lease).await.unwrap());
    // Only the holder saves, over the version it started from; the rotated pair replaces both tokens.
    assert!(!s.save_refresh(&acme, "node-b", 1, &pair("a-b", "r-b", t1), t1).await.unwrap());
    assert!(s.save_refresh(&acme, "node-a", 1, &pair("a2", "r2", t1), t1).await.unwrap());
    let c = &s.connections().await.unwrap()[0];
    assert_eq!((c.tokens.clone(), c.token_version), (Some(pair("a2", "r2", t1)), 2));
    // A node that read version 1 finds the tokens already refreshed: nothing to take or save.
    assert!(!s.claim_refresh(&acme, "node-b", 1, t1, t1 + lease).await.unwrap());
    assert!(!s.save_refresh(&acme, "node-a", 1, &pair("a3", "r3", t1), t1).await.unwrap());
    // A dead holder's refresh is taken over once its lease ran out.
    assert!(s.claim_refresh(&acme, "node-a", 2, t1, t1 + lease).await.unwrap());
    let t2 = t1 + chrono::Duration::minutes(1);
    assert!(s.claim_refresh(&acme, "node-b", 2, t2, t2 + lease).await.unwrap());
    assert!(s.save_refresh(&acme, "node-b", 2, &pair("a3", "r3", t2), t2).await.unwrap());

    // Errors and syncs are noted; the sync point never moves back.
    s.note_error(&acme, "HTTP 500", t2).await.unwrap();
    s.note_sync(&acme, "9341", at("2026-11-26T09:40:00Z"), t2).await.unwrap();
    s.note_sync(&acme, "9341", at("2026-11-26T09:30:00Z"), t2).await.unwrap();
    let c = &s.connections().await.unwrap()[0];
    assert_eq!(c.synced_through, Some(at("2026-11-26T09:40:00Z")));
    assert_eq!((c.last_error.clone(), c.errors, c.last_sync_at), (Some(("HTTP 500".into(), t2)), 1, Some(t2)));

    // invalid_grant: tokens forgotten, no refresh can start, until connected again.
    assert!(s.disconnect(&acme, "invalid_grant: refresh token revoked", t2).await.unwrap());
    assert!(!s.disconnect(&acme, "again", t2).await.unwrap(), "once");
    let c = &s.connections().await.unwrap()[0];
    assert_eq!((c.state, c.tokens.clone()), (ConnectionState::NeedsReconnect, None));
    assert_eq!(c.reason.as_deref(), Some("invalid_grant: refresh token revoked"));
    assert!(!s.claim_refresh(&acme, "node-a", c.token_version, t2, t2 + lease).await.unwrap());
    let t3 = t2 + chrono::Duration::days(1);
    s.connect_company(&acme, "9341", &pair("a4", "r4", t3), t3).await.unwrap();
    let c = &s.connections().await.unwrap()[0];
    assert_eq!((c.state, c.reason.clone(), c.errors), (ConnectionState::Connected, None, 0));
    assert_eq!(c.synced_through, Some(at("2026-11-26T09:40:00Z")), "the same realm syncs on from where it was");
    // Connected to another company's realm: its sync starts afresh.
    s.connect_company(&acme, "5555", &pair("a5", "r5", t3), t3).await.unwrap();
    let c = &s.connections().await.unwrap()[0];
    assert_eq!((c.realm_id.as_str(), c.synced_through), ("5555", None));

    // A company with a fixed token, never connected, keeps its sync point too.
    let fixed = AccountName::new("fixed").unwrap();
    s.note_sync(&fixed, "777", at("2026-11-27T08:00:00Z"), t3).await.unwrap();
    let c = s.connections().await.unwrap().into_iter().find(|c| c.company == fixed).unwrap();
    assert_eq!((c.realm_id.as_str(), c.synced_through, c.tokens), ("777", Some(at("2026-11-27T08:00:00Z")), None));

    // One sweep in flight per company: taken when due and free, by one node; freed by the sync;
    // a dead sweeper's lease runs out; a company never synced gets a row for it.
    let t4 = t3 + chrono::Duration::hours(1);
    let due = t4 - chrono::Duration::minutes(15);
    let lease = chrono::Duration::minutes(10);
    assert!(s.claim_sweep(&fixed, "777", "node-a", due, t4, t4 + lease).await.unwrap());
    assert!(!s.claim_sweep(&fixed, "777", "node-b", due, t4, t4 + lease).await.unwrap(), "held by node-a");
    s.note_sync(&fixed, "777", t4, t4).await.unwrap();
    assert!(!s.claim_sweep(&fixed, "777", "node-b", due, t4, t4 + lease).await.unwrap(), "swept just now");
    let t5 = t4 + chrono::Duration::minutes(15);
    assert!(s.claim_sweep(&fixed, "777", "node-b", t5 - chrono::Duration::minutes(15), t5, t5 + lease).await.unwrap());
    let t6 = t5 + lease + chrono::Duration::seconds(1);
    assert!(s.claim_sweep(&fixed, "777", "node-a", t6, t6, t6 + lease).await.unwrap(), "node-b's lease ran out");
    let new = AccountName::new("newco").unwrap();
    assert!(s.claim_sweep(&new, "888", "node-a", t6, t6, t6 + lease).await.unwrap());
    let c = s.connections().await.unwrap().into_iter().find(|c| c.company == new).unwrap();
    assert_eq!((c.realm_id.as_str(), c.synced_through, c.last_sync_at), ("888", None, None));
}

async fn webhook_notifications_are_queued_once_and_leased_like_deliveries<S: QuickBooksStore>(s: &S) {
    let acme = AccountName::new("acme").unwrap();
    let t0 = at("2026-11-26T10:00:00Z");
    s.connect_company(&acme, "9341", &pair("a", "r", t0), t0).await.unwrap();
    let item = |id: &str, op: &str, last: Option<&str>| InboxItem {
        realm_id: "9341".into(),
        entity: "Invoice".into(),
        entity_id: id.into(),
        operation: op.into(),
        last_updated: last.map(at),
    };
    let first = [item("1", "Update", Some("2026-11-26T09:59:00Z")), item("2", "Create", None)];
    assert_eq!(s.enqueue(&first, t0).await.unwrap(), 2);
    // The same notification again (QuickBooks re-sends) is kept once; a later change of 1 is new.
    let again = [item("1", "Update", Some("2026-11-26T09:59:00Z")), item("1", "Update", Some("2026-11-26T09:59:30Z"))];
    assert_eq!(s.enqueue(&again, t0).await.unwrap(), 1);
    assert_eq!(s.connections().await.unwrap()[0].last_webhook_at, Some(t0));
    assert_eq!(s.inbox_gauge(None).await.unwrap(), InboxGauge { pending: 3, oldest: Some(t0) });
    assert_eq!(s.inbox_gauge(Some("1111")).await.unwrap(), InboxGauge::default());

    // Leased to one node; the other gets what is left.
    let until = t0 + chrono::Duration::seconds(60);
    let a = s.claim_inbox("node-a", t0, until, 2).await.unwrap();
    assert_eq!(a.iter().map(|e| e.item.clone()).collect::<Vec<_>>(), first, "oldest first");
    assert_eq!((a[0].received_at, a[0].attempts), (t0, 0));
    let b = s.claim_inbox("node-b", t0, until, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert!(s.claim_inbox("node-b", t0, until, 10).await.unwrap().is_empty());

    // Done by its holder only; a failure waits for its next try.
    assert_eq!(s.inbox_done("node-b", &[a[0].seq], t0).await.unwrap(), 0);
    assert_eq!(s.inbox_done("node-a", &[a[0].seq], t0).await.unwrap(), 1);
    let later = t0 + chrono::Duration::seconds(30);
    assert_eq!(s.inbox_retry("node-a", &[a[1].seq], later, "HTTP 500").await.unwrap(), 1);
    assert!(s.claim_inbox("node-b", t0, until, 10).await.unwrap().is_empty(), "not due yet");
    let retried = s.claim_inbox("node-b", later, later + chrono::Duration::seconds(60), 10).await.unwrap();
    assert_eq!((retried.len(), retried[0].seq, retried[0].attempts), (1, a[1].seq, 1));
    // node-b died holding b[0] and the retried one: after the lease they go to node-a.
    let after = later + chrono::Duration::seconds(61);
    let taken = s.claim_inbox("node-a", after, after + chrono::Duration::seconds(60), 10).await.unwrap();
    assert_eq!(taken.iter().map(|e| e.seq).collect::<Vec<_>>(), [a[1].seq, b[0].seq]);
    assert_eq!(s.inbox_done("node-a", &[a[1].seq, b[0].seq], after).await.unwrap(), 2);
    assert_eq!(s.inbox_gauge(None).await.unwrap(), InboxGauge { pending: 0, oldest: None });

    // Done notifications still recognise a duplicate until pruned.
    assert_eq!(s.enqueue(&first, after).await.unwrap(), 0);
    assert_eq!(s.prune_inbox(t0).await.unwrap(), 0, "none done before t0");
    assert_eq!(s.prune_inbox(after + chrono::Duration::seconds(1)).await.unwrap(), 3);
    assert_eq!(s.enqueue(&first, after).await.unwrap(), 2);
}

// ---- the two backends --------------------------------------------------------------------------

async fn gauges_count_the_outbox_by_channel_and_status_and_what_waits<S: Store>(s: &S) {
    let t0 = at("2026-11-26T17:00:00Z");
    s.ping().await.unwrap();
    assert_eq!(s.gauges(t0).await.unwrap(), Gauges::default(), "an empty store");
    apply(s, "2026-11-26", "2026-11-26T16:00:00Z", &[invoice("1", "150.00", "2026-11-26T15:00:00Z")]).await;
    let events = u64::try_from(s.last_event_seq().await.unwrap()).unwrap();
    assert!(events > 0);
    assert_eq!(s.gauges(t0).await.unwrap().unevaluated_changes, events, "no rule has seen them yet");

    // Three Slack deliveries due at t0 and an evaluation that failed; the cursor passes the events.
    let through = i64::try_from(events).unwrap();
    let batch: Vec<NewIntent> =
        (0..3).map(|i| new_intent(&format!("k{i}"), intent("paid", &i.to_string(), through, "paid"))).collect();
    let failure = RuleFailure {
        rule: "fragile".to_owned(),
        version: "2e3975beccb8".to_owned(),
        record: key(RecordKind::Invoice, "1"),
        cause: paid_change(through),
        message: "division by zero".to_owned(),
        limit: false,
    };
    s.save_evaluations("rules", through, &batch, &[failure], t0).await.unwrap();
    let seqs: Vec<i64> = s.intents(&all_intents()).await.unwrap().iter().map(|i| i.seq).collect();
    let later = at("2026-11-26T17:00:30Z");
    let gauges = s.gauges(later).await.unwrap();
    assert_eq!(gauges.deliveries, [("slack".to_owned(), "pending".to_owned(), 3)]);
    assert_eq!((gauges.pending, gauges.oldest_due), (3, Some(t0)), "due 30 s ago");
    assert_eq!((gauges.evaluation_failures, gauges.unevaluated_changes), (1, 0));

    // One delivered, one held by a node: what waits unheld is the third.
    let claimed = s.claim("node-a", later, LEASE, 2).await.unwrap();
    assert_eq!(seqs[..2], claimed.iter().map(|c| c.seq).collect::<Vec<_>>());
    let done = attempt("2026-11-26T17:00:30Z", "2026-11-26T17:00:31Z", Attempted::Delivered);
    assert!(s.finish(seqs[0], "node-a", &done, &Next::Delivered).await.unwrap());
    let gauges = s.gauges(at("2026-11-26T17:00:31Z")).await.unwrap();
    assert_eq!(
        gauges.deliveries,
        [("slack".to_owned(), "delivered".to_owned(), 1), ("slack".to_owned(), "pending".to_owned(), 2)]
    );
    assert_eq!((gauges.pending, gauges.oldest_due), (2, Some(t0)));
    s.claim("node-b", at("2026-11-26T17:00:31Z"), LEASE, 10).await.unwrap();
    let gauges = s.gauges(at("2026-11-26T17:00:32Z")).await.unwrap();
    assert_eq!((gauges.pending, gauges.oldest_due), (2, None), "everything due is held: no lag");
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("contract.db").display())
}

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&sqlite_url(&dir)).await.unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

/// The attempt log of the store [`sqlite`] made in `dir`.
async fn sqlite_log(dir: &tempfile::TempDir) -> AttemptLog {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&sqlite_url(dir)).unwrap();
    AttemptLog::Sqlite(sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap())
}

struct Pg {
    store: PgStore,
    admin: PgStore,
    schema: String,
    options: sqlx::postgres::PgConnectOptions,
}

async fn postgres(test: &str) -> Option<Pg> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL not set ({test} on PostgreSQL)");
        return None;
    };
    let schema = format!("contract_{}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed), test);
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
    let admin = PgStore::connect_with(options.clone()).await.unwrap();
    admin.execute_admin(&format!("CREATE SCHEMA \"{schema}\"")).await;
    let options = options.options([("search_path", schema.as_str())]);
    let store = PgStore::connect_with(options.clone()).await.unwrap();
    store.migrate().await.unwrap();
    Some(Pg { store, admin, schema, options })
}

impl Pg {
    /// The attempt log of its store.
    async fn log(&self) -> AttemptLog {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(self.options.clone());
        AttemptLog::Postgres(pool.await.unwrap())
    }

    async fn drop(self) {
        self.store.close().await;
        self.admin.execute_admin(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema)).await;
        self.admin.close().await;
    }
}

trait Admin {
    async fn execute_admin(&self, sql: &str);
}

impl Admin for PgStore {
    async fn execute_admin(&self, sql: &str) {
        self.raw_execute(sql).await.unwrap();
    }
}

/// Runs each behaviour on both backends: those of the first list with the store, those of the
/// second with the store and its attempt log.
macro_rules! contract {
    ($($name:ident),* $(,)?; $($logged:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_dir, store) = super::sqlite().await;
                    super::$name(&store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $logged() {
                    let (dir, store) = super::sqlite().await;
                    let log = super::sqlite_log(&dir).await;
                    super::$logged(&store, &log).await;
                    log.close().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(pg) = super::postgres(stringify!($name)).await else { return };
                    super::$name(&pg.store).await;
                    pg.drop().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $logged() {
                    let Some(pg) = super::postgres(stringify!($logged)).await else { return };
                    let log = pg.log().await;
                    super::$logged(&pg.store, &log).await;
                    log.close().await;
                    pg.drop().await;
                }
            )*
        }
    };
}

contract!(
    imports_new_records_with_one_creation_event,
    reimporting_identical_data_adds_no_events,
    an_older_update_is_stale_and_ignored,
    an_update_records_each_watched_change,
    several_versions_in_one_batch_apply_in_order,
    deal_id_field_links_and_relinks,
    a_deal_change_within_one_batch_leaves_only_the_last_link,
    manual_link_and_unlink_record_events,
    an_unlinked_field_link_stays_unlinked_until_the_field_changes,
    a_hand_made_link_adds_to_the_field_link,
    refresh_records_overdue_once,
    deletion_voids_and_records_lifecycle,
    deposit_moves_payment_out_of_undeposited_funds,
    invoices_page_in_key_order,
    find_tells_companies_apart,
    a_writer_commits_its_batches_together_or_not_at_all,
    a_writer_sees_the_deposits_of_its_earlier_batches,
    a_bulk_import_reads_and_writes_the_same,
    migrating_twice_is_harmless,
    an_intent_is_stored_once_per_key,
    intents_are_listed_by_rule_record_and_after_a_sequence_number,
    the_cursor_only_moves_forward,
    last_event_seq_follows_the_events,
    records_returns_the_stored_ones_and_skips_unknown_keys,
    failures_are_listed_with_their_fields,
    anchored_finds_records_by_due_or_txn_date_and_status,
    a_due_scan_finds_records_by_status_and_either_date_page_by_page,
    a_firing_is_written_once_per_key_and_per_step,
    save_firings_moves_the_cursor_and_reset_forgets_it,
    each_intent_gets_one_pending_delivery_with_its_expiry,
    a_claimed_delivery_belongs_to_one_node_until_its_lease_runs_out,
    a_node_claiming_again_gets_only_what_it_did_not_hold,
    a_transient_failure_waits_for_its_next_try_and_expiry_drops_it,
    dead_deliveries_can_be_retried_and_pending_ones_cancelled,
    concurrent_claims_never_share_a_delivery,
    gauges_count_the_outbox_by_channel_and_status_and_what_waits,
    a_destination_is_disabled_once_until_enabled,
    a_quickbooks_connection_keeps_its_tokens_and_refreshes_one_node_at_a_time,
    webhook_notifications_are_queued_once_and_leased_like_deliveries;
    // With the attempt log, which no store method reads.
    finish_all_records_each_attempt_and_moves_what_the_node_holds,
    a_deferred_delivery_waits_without_an_attempt_and_only_its_holder_defers_it,
);
