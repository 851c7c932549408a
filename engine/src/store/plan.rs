//! What a batch or a refresh writes, decided without touching the database: pure, shared by both
//! backends, unit-tested here.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use invoiceflow_rules::change::{Watched, diff};
use invoiceflow_rules::parse::Incoming;
use invoiceflow_rules::status::{bill_status, invoice_status, payment_status};
use invoiceflow_rules::{Change, Holder, HolderKind, Property, Record, RecordId, RecordKey, RecordKind};

use super::{Moment, Outcome, Stored};

/// An event to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The record.
    pub record: RecordKey,
    /// The change.
    pub change: Change,
    /// When it happened at the source.
    pub source_time: DateTime<Utc>,
}

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Plan {
    /// Rows to upsert, final state per key.
    pub rows: Vec<Stored>,
    /// Events, in order.
    pub events: Vec<NewEvent>,
    /// Invoices whose own field for a kind of holder changed: hand-made unlinks of that kind no
    /// longer apply.
    pub relinked: Vec<(HolderKind, RecordKey)>,
    /// For each deposit written: the payments it now deposits (replacing what it deposited before).
    pub deposits: Vec<(RecordKey, Vec<RecordId>)>,
    /// The counts.
    pub outcome: Outcome,
}

/// What the database already holds for a batch.
#[derive(Debug, Default)]
pub struct Existing {
    /// Stored records: the batch's keys, and the payments its deposits name.
    pub records: HashMap<RecordKey, Stored>,
    /// Payments a stored deposit already deposits.
    pub deposited: HashSet<RecordKey>,
}

impl Existing {
    /// The keys to load for `batch`: its own, plus the payments its deposits name.
    pub fn keys_for(batch: &[Incoming]) -> Vec<RecordKey> {
        let mut keys: Vec<RecordKey> = batch.iter().map(|i| i.key().clone()).collect();
        for incoming in batch {
            if let Incoming::Upsert(Record::Deposit(d)) = incoming {
                keys.extend(
                    d.payments.iter().map(|id| RecordKey::new(RecordKind::Payment, d.key.account.clone(), id.clone())),
                );
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

fn status_of(record: &Record, at: &Moment<'_>, deposited: bool) -> String {
    let today = || at.calendar.today(&record.key().account);
    match record {
        Record::Invoice(i) => invoice_status(i, today()).as_str(),
        Record::Bill(b) => bill_status(b, today()).as_str(),
        Record::Payment(p) => payment_status(p, deposited).as_str(),
        Record::Deposit(_) => "recorded",
    }
    .to_owned()
}

struct Planner<'a, 'm> {
    at: &'a Moment<'m>,
    current: HashMap<RecordKey, Stored>,
    deposited: HashSet<RecordKey>,
    touched: Vec<RecordKey>,
    touched_set: HashSet<RecordKey>,
    plan: Plan,
}

impl Planner<'_, '_> {
    fn record_changes(&mut self, key: &RecordKey, changes: Vec<Change>, source_time: DateTime<Utc>) {
        self.plan.outcome.events += changes.len() as u64;
        self.plan.events.extend(changes.into_iter().map(|change| NewEvent {
            record: key.clone(),
            change,
            source_time,
        }));
    }

    fn put(&mut self, stored: Stored) {
        let key = stored.record.key().clone();
        if self.touched_set.insert(key.clone()) {
            self.touched.push(key.clone());
        }
        self.current.insert(key, stored);
    }

    fn apply(&mut self, incoming: Incoming) {
        let key = incoming.key().clone();
        let old = self.current.get(&key);
        if old.is_some_and(|o| incoming.source_time() < o.record.updated_at()) {
            self.plan.outcome.stale += 1;
            return;
        }
        let record = match (incoming, old) {
            (Incoming::Upsert(r), _) => r,
            (Incoming::Delete { at, .. }, Some(o)) => {
                let mut r = o.record.clone();
                r.mark_deleted(at);
                r
            }
            (Incoming::Delete { .. }, None) => {
                self.plan.outcome.unchanged += 1;
                return;
            }
        };
        if old.is_some_and(|o| o.record == record) {
            self.plan.outcome.unchanged += 1;
            return;
        }
        let status = status_of(&record, self.at, self.deposited.contains(&key));
        let old_watched = old.map(|o| Watched::of(&o.record, &o.status));
        let changes = diff(old_watched.as_ref(), &Watched::of(&record, &status));
        if let (Record::Invoice(inv), Some(Record::Invoice(before))) = (&record, old.map(|o| &o.record)) {
            for kind in HolderKind::ALL {
                if before.holders.get(kind) != inv.holders.get(kind) {
                    self.plan.relinked.push((kind, key.clone()));
                }
            }
        }
        if old.is_some() {
            self.plan.outcome.updated += 1;
        } else {
            self.plan.outcome.imported += 1;
        }
        let source_time = record.updated_at();
        self.record_changes(&key, changes, source_time);
        if let Record::Deposit(d) = &record {
            self.deposit(d.key.clone(), d.payments.clone(), source_time);
        }
        self.put(Stored { record, status });
    }

    /// A deposit moves the payments it names out of Undeposited Funds.
    fn deposit(&mut self, deposit: RecordKey, payments: Vec<RecordId>, at: DateTime<Utc>) {
        for id in &payments {
            let key = RecordKey::new(RecordKind::Payment, deposit.account.clone(), id.clone());
            self.deposited.insert(key.clone());
            let Some(stored) = self.current.get(&key) else { continue };
            let status = status_of(&stored.record, self.at, true);
            if status != stored.status {
                let change =
                    Change { property: Property::Status, old: Some(stored.status.clone()), new: Some(status.clone()) };
                let record = stored.record.clone();
                self.record_changes(&key, vec![change], at);
                self.put(Stored { record, status });
            }
        }
        self.plan.deposits.push((deposit, payments));
    }

    fn finish(mut self) -> Plan {
        for key in self.touched {
            if let Some(stored) = self.current.remove(&key) {
                self.plan.rows.push(stored);
            }
        }
        self.plan
    }
}

/// An invoice's links as stored: its own holder fields, and what was linked or unlinked by hand.
#[derive(Debug, Default)]
pub struct Links {
    /// (invoice, holder) from the invoice's own `deal_id`/`contact_id`/`company_id`.
    pub fields: Vec<(RecordKey, Holder)>,
    /// (invoice, holder, linked): linked by hand (true), or its field link unlinked by hand (false).
    pub manual: Vec<(RecordKey, Holder, bool)>,
}

/// How a hand-made link or unlink changes `manual_links`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualEdit {
    /// Record a hand-made link (true) or unlink (false).
    Set(bool),
    /// Forget the hand-made row.
    Clear,
}

impl Links {
    /// Whether `holder` holds `key`: by hand if a hand-made row says so, else by the field.
    pub fn links(&self, holder: &Holder, key: &RecordKey) -> bool {
        match self.manual.iter().find(|(k, h, _)| k == key && h == holder) {
            Some((_, _, linked)) => *linked,
            None => self.fields.iter().any(|(k, h)| k == key && h == holder),
        }
    }

    /// The (invoice, holder) pairs that hold, sorted.
    pub fn holders(self) -> Vec<(RecordKey, Holder)> {
        let mut out: Vec<(RecordKey, Holder)> = self
            .fields
            .iter()
            .filter(|(k, h)| self.links(h, k))
            .cloned()
            .chain(self.manual.iter().filter(|(_, _, linked)| *linked).map(|(k, h, _)| (k.clone(), h.clone())))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// What linking (`linked`) or unlinking `holder` and `key` by hand writes, or `None` when it
    /// already is so.
    pub fn edit(&self, holder: &Holder, key: &RecordKey, linked: bool) -> Option<ManualEdit> {
        if self.links(holder, key) == linked {
            return None;
        }
        let by_field = self.fields.iter().any(|(k, h)| k == key && h == holder);
        // Agreeing with the field needs no row; disagreeing with it does.
        Some(if by_field == linked { ManualEdit::Clear } else { ManualEdit::Set(linked) })
    }
}

/// Plans a batch against what is stored. Within the batch, later versions of a record see the
/// earlier ones, so a batch holding several versions of one record applies them in order.
pub fn plan_batch(existing: Existing, batch: Vec<Incoming>, at: &Moment<'_>) -> Plan {
    plan_groups(existing, vec![batch], at).0
}

/// [`plan_batch`] for several batches applied one after the other (the requests of a group
/// commit): one plan for all, and each batch's own outcome.
pub fn plan_groups(existing: Existing, groups: Vec<Vec<Incoming>>, at: &Moment<'_>) -> (Plan, Vec<Outcome>) {
    let mut planner = Planner {
        at,
        current: existing.records,
        deposited: existing.deposited,
        touched: Vec::new(),
        touched_set: HashSet::new(),
        plan: Plan::default(),
    };
    let mut outcomes = Vec::with_capacity(groups.len());
    for group in groups {
        let before = planner.plan.outcome;
        for incoming in group {
            planner.apply(incoming);
        }
        let after = planner.plan.outcome;
        outcomes.push(Outcome {
            imported: after.imported - before.imported,
            updated: after.updated - before.updated,
            unchanged: after.unchanged - before.unchanged,
            stale: after.stale - before.stale,
            events: after.events - before.events,
        });
    }
    (planner.finish(), outcomes)
}

/// Plans a refresh: re-derives the status of `rows` for "today" and records each change that time
/// made. Its source time is the start of the local day the status changed on (the day after the
/// due date for `overdue`), or now when the change undoes one (a clock set back with `--now`).
pub fn plan_refresh(rows: Vec<Stored>, at: &Moment<'_>) -> Plan {
    let mut plan = Plan::default();
    for stored in rows {
        let key = stored.record.key().clone();
        let status = status_of(&stored.record, at, stored.status == "deposited");
        if status == stored.status {
            continue;
        }
        let due = match &stored.record {
            Record::Invoice(i) => i.due_date,
            Record::Bill(b) => b.due_date,
            _ => None,
        };
        let source_time = match due.and_then(|d| d.succ_opt()) {
            Some(day) if status == "overdue" => at.calendar.day_start(&key.account, day),
            _ => at.now,
        };
        let change = Change { property: Property::Status, old: Some(stored.status.clone()), new: Some(status.clone()) };
        plan.events.push(NewEvent { record: key, change, source_time });
        plan.outcome.events += 1;
        plan.outcome.updated += 1;
        plan.rows.push(Stored { record: stored.record, status });
    }
    plan
}

#[cfg(test)]
mod tests {
    use invoiceflow_rules::{AccountName, HolderId};

    use super::*;

    fn invoice(id: &str) -> RecordKey {
        RecordKey::new(RecordKind::Invoice, AccountName::new("acme").expect("name"), RecordId::new(id).expect("id"))
    }

    fn deal(id: &str) -> Holder {
        Holder { kind: HolderKind::Deal, id: HolderId::new(id).expect("id") }
    }

    #[test]
    fn links_combine_fields_and_hand_made_rows() {
        let links = Links {
            fields: vec![(invoice("1"), deal("a")), (invoice("2"), deal("b"))],
            manual: vec![(invoice("2"), deal("b"), false), (invoice("2"), deal("z"), true)],
        };
        assert!(links.links(&deal("a"), &invoice("1")));
        assert!(!links.links(&deal("b"), &invoice("2")), "unlinked by hand");
        assert_eq!(links.holders(), vec![(invoice("1"), deal("a")), (invoice("2"), deal("z"))]);
    }

    #[test]
    fn a_hand_made_edit_writes_a_row_only_where_it_disagrees_with_the_field() {
        let field = Links { fields: vec![(invoice("1"), deal("a"))], manual: vec![] };
        assert_eq!(field.edit(&deal("a"), &invoice("1"), true), None);
        assert_eq!(field.edit(&deal("a"), &invoice("1"), false), Some(ManualEdit::Set(false)));
        assert_eq!(field.edit(&deal("z"), &invoice("1"), true), Some(ManualEdit::Set(true)));
        assert_eq!(field.edit(&deal("z"), &invoice("1"), false), None);
        let unlinked = Links { manual: vec![(invoice("1"), deal("a"), false)], ..field };
        assert_eq!(unlinked.edit(&deal("a"), &invoice("1"), true), Some(ManualEdit::Clear));
        let by_hand = Links { fields: vec![], manual: vec![(invoice("1"), deal("z"), true)] };
        assert_eq!(by_hand.edit(&deal("z"), &invoice("1"), false), Some(ManualEdit::Clear));
    }
}
