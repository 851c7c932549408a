//! Rules on what the store records: every change event is offered once to the enabled
//! change-triggered rules (`on = { change = … }`, `created`, `deleted`). What they decide — intents
//! with their provenance, and failures — is stored with the cursor in one transaction, and each
//! intent under a key unique to (rule, event, action): a crash or a second node evaluating the
//! same events adds nothing twice.

use std::collections::{HashMap, HashSet};

use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::script::testcase::change_triggers;
use invoiceflow_rules::script::types::DealView;
use invoiceflow_rules::script::{Cause, CompiledRule, Input, RuleHost, Subject, Trigger};
use invoiceflow_rules::{Change, HolderId, RecordKey};

use crate::clock::Clock;
use crate::store::{Event, EventQuery, NewIntent, RuleFailure, Store, StoreError};

/// The cursor of change-triggered rules.
pub const RULES_CURSOR: &str = "rules";

/// Events evaluated per transaction.
const PAGE: u32 = 2000;

/// Evaluations per page above which the page is split across cores.
const PARALLEL_FROM: usize = 512;

/// What a pass evaluated and decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluated {
    /// Change events offered to the rules.
    pub events: u64,
    /// New intents stored.
    pub intents: u64,
    /// Failed evaluations stored.
    pub failures: u64,
}

impl std::ops::AddAssign for Evaluated {
    fn add_assign(&mut self, o: Self) {
        self.events += o.events;
        self.intents += o.intents;
        self.failures += o.failures;
    }
}

/// True when `rule` runs on changes (not only on a schedule) and is switched on.
fn on_changes(rule: &CompiledRule) -> bool {
    rule.def.enabled && rule.def.triggers.iter().any(|t| !matches!(t, Trigger::Schedule { .. }))
}

/// Voided or deleted: nothing fires for it (except `deleted` rules).
pub fn is_gone(subject: &Subject) -> bool {
    use invoiceflow_rules::{BillStatus, InvoiceStatus, PaymentStatus};
    matches!(
        subject,
        Subject::Invoice(_, InvoiceStatus::Voided)
            | Subject::Bill(_, BillStatus::Deleted)
            | Subject::Payment(_, PaymentStatus::Deleted)
    )
}

fn deleted_trigger(rule: &CompiledRule) -> bool {
    rule.def.triggers.iter().any(|t| matches!(t, Trigger::Deleted))
}

/// Evaluates the events recorded since the last pass. Without any enabled change-triggered rule,
/// the cursor just moves to the newest event: rules apply to changes after they are switched on.
///
/// # Errors
/// [`StoreError`] when reading events or saving the results fails; what was saved stays.
pub async fn changes<S: Store>(
    store: &S,
    host: &RuleHost,
    rules: &[CompiledRule],
    clock: &Clock,
    locale: Locale,
) -> Result<Evaluated, StoreError> {
    let mut total = Evaluated::default();
    loop {
        let (page, more) = changes_page(store, host, rules, clock, locale).await?;
        total += page;
        if !more {
            return Ok(total);
        }
    }
}

/// [`changes`] for one page of events at most (2,000), so that a running engine can deliver what
/// a page decided before it reads the next; says whether more events were waiting.
///
/// # Errors
/// [`StoreError`]; what was saved stays, and the next call goes on from there.
pub async fn changes_page<S: Store>(
    store: &S,
    host: &RuleHost,
    rules: &[CompiledRule],
    clock: &Clock,
    locale: Locale,
) -> Result<(Evaluated, bool), StoreError> {
    let now = clock.now.instant();
    let active: Vec<&CompiledRule> = rules.iter().filter(|r| on_changes(r)).collect();
    if active.is_empty() {
        skip_to_latest(store, clock).await?;
        return Ok((Evaluated::default(), false));
    }
    let after = store.cursor(RULES_CURSOR).await?;
    let events = store.events(&EventQuery { record: None, after_seq: Some(after), limit: PAGE }).await?;
    let Some(last) = events.last().map(|e| e.seq) else { return Ok((Evaluated::default(), false)) };
    let keys: Vec<RecordKey> = events.iter().map(|e| e.record.clone()).collect::<HashSet<_>>().into_iter().collect();
    let subjects: HashMap<RecordKey, Subject> = store
        .records(&keys)
        .await?
        .into_iter()
        .map(|s| {
            let key = s.record.key().clone();
            let deposited = s.status == "deposited";
            let subject = subject_of(s.record, clock.today_of(&key.account), deposited);
            (key, subject)
        })
        .collect();
    let deals = if active.iter().any(|r| r.uses_deal()) {
        deals_of(store, subjects.values(), clock).await?
    } else {
        HashMap::new()
    };
    let (intents, failures) = evaluate_page(host, &active, &events, &subjects, &deals, clock, locale);
    let page = Evaluated {
        events: events.len() as u64,
        failures: failures.len() as u64,
        intents: store.save_evaluations(RULES_CURSOR, last, &intents, &failures, now).await?,
    };
    Ok((page, events.len() == PAGE as usize))
}

/// Moves the cursor to the newest event without evaluating: with no rule switched on, rules added
/// later apply to the changes after them, not to the whole history.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn skip_to_latest<S: Store>(store: &S, clock: &Clock) -> Result<(), StoreError> {
    let last = store.last_event_seq().await?;
    store.save_evaluations(RULES_CURSOR, last, &[], &[], clock.now.instant()).await?;
    Ok(())
}

/// Evaluates scheduled rule `rule` at slot `slot` over every record of its kind (of the companies
/// in `only_zone`, when the slot is a company-zone slot). A record fires
/// only when it starts matching (it did not match at the rule's previous slot): an invoice 7
/// days overdue is reminded once, not at every slot while it stays 7 days overdue — and again
/// if it stops matching and later matches anew. Each intent's key names the rule, the slot and
/// the record, so running a slot twice adds nothing.
///
/// # Errors
/// [`StoreError`] when the store fails; pages already saved stay.
pub async fn slot<S: Store>(
    store: &S,
    host: &RuleHost,
    rule: &CompiledRule,
    slot: chrono::DateTime<chrono::Utc>,
    only_zone: Option<chrono_tz::Tz>,
    clock: &Clock,
    locale: Locale,
) -> Result<Evaluated, StoreError> {
    let mut total = Evaluated::default();
    let id = rule.def.id.to_string();
    let mut after: Option<RecordKey> = None;
    loop {
        let page = store.records_of_kind(rule.def.records, after.as_ref(), PAGE).await?;
        let Some(last) = page.last().map(|s| s.record.key().clone()) else { break };
        let keys: Vec<RecordKey> = page.iter().map(|s| s.record.key().clone()).collect();
        let enrolled: HashSet<RecordKey> = store.enrolled(&id, &keys).await?.into_iter().collect();
        let mut deals: HashMap<HolderId, DealView> = HashMap::new();
        let (mut enroll, mut leave, mut intents, mut failures) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for stored in page {
            let key = stored.record.key().clone();
            let zone = clock.companies.get(&key.account).time_zone;
            // A slot in one company's zone is that company's (and its zone-mates'), not others'.
            if only_zone.is_some_and(|z| z != zone) {
                continue;
            }
            let today = slot.with_timezone(&zone).date_naive();
            let subject = subject_of(stored.record, today, stored.status == "deposited");
            if is_gone(&subject) {
                if enrolled.contains(&key) {
                    leave.push(key);
                }
                continue;
            }
            if rule.uses_deal()
                && let Some(deal) = deal_of(&subject)
                && !deals.contains_key(deal)
            {
                deals.insert(deal.clone(), crate::deals::deal_view(store, deal, clock).await?);
            }
            let deal = deal_of(&subject).and_then(|d| deals.get(d));
            let at = SlotRecord { subject: &subject, key: &key, zone, deal };
            match decide_slot(host, rule, slot, &at, enrolled.contains(&key), locale) {
                SlotDecision::Fire(new) => {
                    intents.extend(new);
                    enroll.push(key);
                }
                SlotDecision::Leave => leave.push(key),
                SlotDecision::Stay => {}
                SlotDecision::Failed(failure) => failures.push(failure),
            }
            total.events += 1;
        }
        total.failures += failures.len() as u64;
        total.intents += store.save_slot(&id, &enroll, &leave, &intents, &failures, slot).await?;
        after = Some(last);
    }
    Ok(total)
}

/// A record at a schedule slot.
pub struct SlotRecord<'a> {
    /// The record as it is on the slot's local day.
    pub subject: &'a Subject,
    /// Its key.
    pub key: &'a RecordKey,
    /// Its company's zone.
    pub zone: chrono_tz::Tz,
    /// Its deal, projected, when the rule reads `deal`.
    pub deal: Option<&'a DealView>,
}

/// What a schedule slot decides for one record.
#[derive(Debug)]
pub enum SlotDecision {
    /// It starts matching: these intents, and it is enrolled.
    Fire(Vec<NewIntent>),
    /// It stopped matching (or is gone): it leaves, and may fire again later.
    Leave,
    /// Nothing changes (still matching, or still not).
    Stay,
    /// The evaluation failed.
    Failed(RuleFailure),
}

/// What scheduled rule `rule` decides at `slot` for `record`, enrolled or not (HubSpot's
/// re-enrollment: a record fires only on a not-matching → matching transition). The running
/// engine and `invoiceflow simulate` both decide with this.
pub fn decide_slot(
    host: &RuleHost,
    rule: &CompiledRule,
    slot: chrono::DateTime<chrono::Utc>,
    record: &SlotRecord<'_>,
    enrolled: bool,
    locale: Locale,
) -> SlotDecision {
    if is_gone(record.subject) {
        return if enrolled { SlotDecision::Leave } else { SlotDecision::Stay };
    }
    let cause = Cause::Schedule { slot };
    let input = Input {
        subject: record.subject,
        change: None,
        now: slot,
        zone: record.zone,
        locale,
        cause: cause.clone(),
        deal: record.deal,
    };
    match host.evaluate(rule, &input) {
        Ok(e) if e.matched && !enrolled => {
            let stamp = slot.format("%Y-%m-%dT%H:%M:%SZ");
            let (id, key) = (&rule.def.id, record.key);
            SlotDecision::Fire(
                e.intents
                    .into_iter()
                    .enumerate()
                    .map(|(n, intent)| NewIntent { key: format!("rule:{id}:slot:{stamp}:{key}:{n}"), intent })
                    .collect(),
            )
        }
        Ok(e) if !e.matched && enrolled => SlotDecision::Leave,
        Ok(_) => SlotDecision::Stay,
        Err(error) => SlotDecision::Failed(RuleFailure {
            rule: rule.def.id.to_string(),
            version: rule.def.version.clone(),
            record: record.key.clone(),
            cause,
            message: error.to_string(),
            limit: error.limit,
        }),
    }
}

/// The deal of an invoice's own `deal_id`.
pub fn deal_of(subject: &Subject) -> Option<&HolderId> {
    match subject {
        Subject::Invoice(inv, _) => inv.holders.deal.as_ref(),
        _ => None,
    }
}

/// The deals of `subjects`, projected (only when a rule reads `deal`).
async fn deals_of<'a, S: Store>(
    store: &S,
    subjects: impl IntoIterator<Item = &'a Subject>,
    clock: &Clock,
) -> Result<HashMap<HolderId, DealView>, StoreError> {
    let mut out = HashMap::new();
    for id in subjects.into_iter().filter_map(deal_of) {
        if !out.contains_key(id) {
            out.insert(id.clone(), crate::deals::deal_view(store, id, clock).await?);
        }
    }
    Ok(out)
}

/// One evaluation to run: an event, its record and a rule it triggers.
struct Job<'a> {
    event: &'a Event,
    change: Change,
    subject: &'a Subject,
    rule: &'a CompiledRule,
}

fn evaluate_page(
    host: &RuleHost,
    rules: &[&CompiledRule],
    events: &[Event],
    subjects: &HashMap<RecordKey, Subject>,
    deals: &HashMap<HolderId, DealView>,
    clock: &Clock,
    locale: Locale,
) -> (Vec<NewIntent>, Vec<RuleFailure>) {
    let mut jobs = Vec::new();
    for event in events {
        let Some(subject) = subjects.get(&event.record) else { continue };
        let change = Change { property: event.property, old: event.old.clone(), new: event.new.clone() };
        for rule in rules {
            if rule.def.records != event.record.kind || !change_triggers(rule, &change) {
                continue;
            }
            // Nothing fires for a voided or deleted record, except rules about deletions.
            if is_gone(subject) && !deleted_trigger(rule) {
                continue;
            }
            jobs.push(Job { event, change: change.clone(), subject, rule });
        }
    }
    let run = |jobs: &[Job<'_>]| -> (Vec<NewIntent>, Vec<RuleFailure>) {
        let (mut intents, mut failures) = (Vec::new(), Vec::new());
        for job in jobs {
            let e = job.event;
            let cause = Cause::Change {
                event: e.seq,
                property: e.property.to_string(),
                from: e.old.clone(),
                to: e.new.clone(),
            };
            let zone = clock.companies.get(&e.record.account).time_zone;
            let input = Input {
                subject: job.subject,
                change: Some(&job.change),
                now: clock.now.instant_in(zone),
                zone,
                locale,
                cause: cause.clone(),
                deal: deal_of(job.subject).and_then(|id| deals.get(id)),
            };
            match host.evaluate(job.rule, &input) {
                Ok(evaluation) => intents.extend(evaluation.intents.into_iter().enumerate().map(|(n, intent)| {
                    NewIntent { key: format!("rule:{}:event:{}:{n}", job.rule.def.id, e.seq), intent }
                })),
                Err(error) => failures.push(RuleFailure {
                    rule: job.rule.def.id.to_string(),
                    version: job.rule.def.version.clone(),
                    record: e.record.clone(),
                    cause,
                    message: error.to_string(),
                    limit: error.limit,
                }),
            }
        }
        (intents, failures)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if jobs.len() < PARALLEL_FROM || threads < 2 {
        return run(&jobs);
    }
    let chunk = jobs.len().div_ceil(threads);
    let parts: Vec<(Vec<NewIntent>, Vec<RuleFailure>)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs.chunks(chunk).map(|part| s.spawn(move || run(part))).collect();
        // A panic is a bug, not a rule failure: re-raised, so the cursor stays and nothing is lost.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let (mut intents, mut failures) = (Vec::new(), Vec::new());
    for (i, f) in parts {
        intents.extend(i);
        failures.extend(f);
    }
    (intents, failures)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use invoiceflow_rules::parse::{Incoming, Item, ParseContext, parse_value};
    use invoiceflow_rules::script::check::check_rule;
    use invoiceflow_rules::script::{Destinations, HostConfig, Limits, RuleId};
    use invoiceflow_rules::{AccountName, Currency};

    use super::*;
    use crate::clock::Now;
    use crate::config::Config;
    use crate::store::{IntentQuery, Moment, SqliteStore};

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(text).expect("time").to_utc()
    }

    async fn import(store: &SqliteStore, clock: &Clock, value: serde_json::Value) {
        let account = AccountName::default_account();
        let home = |_: &AccountName| Currency::USD;
        let ctx = ParseContext { account: &account, home_currency: &home, received_at: clock.now.instant() };
        let records: Vec<Incoming> = parse_value(value, &ctx)
            .into_iter()
            .map(|i| match i {
                Item::Record(r) => r,
                other => panic!("{other:?}"),
            })
            .collect();
        store.apply(records, &Moment { now: clock.now.instant(), calendar: clock }).await.expect("apply");
    }

    #[tokio::test]
    async fn a_scheduled_rule_fires_when_a_record_starts_matching_and_again_only_after_it_stopped() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("db");
        store.migrate().await.expect("migrate");
        let config = Config::load(None).expect("config");
        let clock = |now: &str| Clock { now: Now::At(at(now)), companies: config.companies.clone() };
        let host = RuleHost::new(HostConfig {
            destinations: Destinations::default(),
            library: Vec::new(),
            limits: Limits::default(),
            stopwatch: Instant::now,
        })
        .map_err(|e| format!("{e:?}"))
        .expect("host");
        let text = "name = \"Overdue\"\non = { schedule = \"0 0 9 * * *\" }\n\
                    when = 'invoice.status == \"overdue\" && invoice.days_overdue in [1, 3]'\n\
                    then = 'task(`Chase ${invoice.number}`)'\n";
        let rule = check_rule(&host, RuleId::new("overdue"), text).rule.expect("compiles");
        let invoice = |balance: &str, updated: &str| {
            serde_json::json!({"type": "invoice", "id": "7", "number": "1007", "customer": "Acme", "amount": "100.00",
                "balance": balance, "currency": "USD", "txn_date": "2026-11-01", "due_date": "2026-11-20",
                "email_status": "EmailSent", "updated_at": updated})
        };
        import(&store, &clock("2026-11-20T08:00:00Z"), invoice("100.00", "2026-11-01T00:00:00Z")).await;
        let day = |d: &str| at(&format!("2026-11-{d}T09:00:00Z"));
        let mut fired = Vec::new();
        for d in ["20", "21", "21", "22", "23", "24"] {
            let c = clock(&format!("2026-11-{d}T09:00:00Z"));
            let done = slot(&store, &host, &rule, day(d), None, &c, Locale::En).await.expect("slot");
            fired.push(done.intents);
        }
        // Due on the 20th: 1 day overdue on the 21st fires (the same slot run again adds nothing);
        // 2 days on the 22nd does not match; 3 days on the 23rd matches anew and fires; 4 days on
        // the 24th does not match.
        assert_eq!(fired, vec![0, 1, 0, 0, 1, 0]);
        let intents = store.intents(&IntentQuery { limit: 10, ..Default::default() }).await.expect("intents");
        let keys: Vec<&str> = intents.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "rule:overdue:slot:2026-11-21T09:00:00Z:invoice default/7:0",
                "rule:overdue:slot:2026-11-23T09:00:00Z:invoice default/7:0"
            ]
        );
        assert_eq!(intents[0].intent.cause, Cause::Schedule { slot: day("21") });
        // Paid: it leaves, and a later match would fire again.
        import(&store, &clock("2026-11-25T08:00:00Z"), invoice("0.00", "2026-11-25T00:00:00Z")).await;
        slot(&store, &host, &rule, day("25"), None, &clock("2026-11-25T09:00:00Z"), Locale::En).await.expect("slot");
        let key = invoiceflow_rules::RecordKey::new(
            invoiceflow_rules::RecordKind::Invoice,
            AccountName::default_account(),
            invoiceflow_rules::RecordId::new("7").expect("id"),
        );
        assert!(store.enrolled("overdue", &[key]).await.expect("enrolled").is_empty());
    }
}
