//! The reminder workflows at work. Each pass decides the steps that fell due since the previous
//! pass: sent (intents for the outbox) or skipped (an audit row saying why), each written once to
//! the firing ledger. The timing, the qualification and the texts are the planner's
//! (`invoiceflow_rules::workflow`), the very functions `invoiceflow simulate` previews with.
//!
//! - A pass reads only the records due: a step's time depends on its date, never on the record,
//!   so the pass knows which due (or invoice, payment) dates can have a step in its period and
//!   asks the store for those records alone.
//! - Each (workflow, record, step) is decided once. A due date moved later re-plans the steps
//!   still ahead; one already sent (or skipped) is never sent again.
//! - Steps are on time when the previous pass ran less than [`ON_TIME`] before this one (the
//!   engine was up, if slow), or when they fell due less than [`ON_TIME`] ago. The others were
//!   missed (the engine was down) and follow the workflow's catch-up policy.
//! - Of steps due at one instant (a send window moved several onto one opening), only the last
//!   is sent.
//! - A record that no longer qualifies when its step falls due is skipped with an audit row when
//!   it still owes something (paused, excluded, below the minimum, no billing email); one the
//!   workflow is done with (paid, voided, deposited, sent for the unsent reminder) is not its
//!   business any more and leaves no row.
//! - Only a sent step is final: a step skipped on its date may be decided again on a later date
//!   (its due date moved).
//! - Switching a workflow on starts it at that moment: nothing of the past is sent then.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use invoiceflow_rules::script::seen::Seen;
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::script::{Cause, Intent, Subject};
use invoiceflow_rules::workflow::config::{Anchor, CatchUp, WorkflowConfig, WorkflowKind};
use invoiceflow_rules::workflow::plan::{self, Firing, Skip};
use invoiceflow_rules::workflow::template;
use invoiceflow_rules::{BillStatus, InvoiceStatus, PaymentStatus, RecordKey, RecordKind};

use crate::clock::Clock;
use crate::store::{AnchorColumn, AnchorQuery, FiringDecision, NewFiring, NewIntent, Store, StoreError, Stored};

/// How far apart passes may run (and how late a step may be) with the engine counted as up.
pub const ON_TIME: Duration = Duration::minutes(15);

/// Records read per query.
const PAGE: u32 = 2000;

/// What a pass decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decided {
    /// Steps sent (their intents are in the outbox).
    pub sent: u64,
    /// Steps skipped, each with its audit row.
    pub skipped: u64,
}

/// The cursor of workflow `kind`: the instant (microseconds) up to which its steps are decided.
pub fn cursor_name(kind: WorkflowKind) -> String {
    format!("workflow:{kind}")
}

/// The record kind a workflow is about, and the stored statuses it may still act on (the others
/// stop it for good, whatever the day).
pub fn scope(kind: WorkflowKind) -> (RecordKind, Vec<&'static str>) {
    use InvoiceStatus::{AwaitingSend, Overdue, PartiallyPaid, Sent};
    match kind {
        // `awaiting_send` is never sent, `sent` is; partially paid and overdue invoices may be either.
        WorkflowKind::PaymentDue => {
            (RecordKind::Invoice, [Sent, PartiallyPaid, Overdue].map(InvoiceStatus::as_str).to_vec())
        }
        WorkflowKind::UnsentInvoice => {
            (RecordKind::Invoice, [AwaitingSend, PartiallyPaid, Overdue].map(InvoiceStatus::as_str).to_vec())
        }
        WorkflowKind::VendorPayment => {
            (RecordKind::Bill, [BillStatus::Open, BillStatus::Overdue].map(BillStatus::as_str).to_vec())
        }
        WorkflowKind::BankDeposit => (RecordKind::Payment, vec![PaymentStatus::Undeposited.as_str()]),
    }
}

/// The store queries for the records of workflow `kind` whose anchor date is one of `dates`: one
/// per date and status it may still act on, `limit` records a page.
pub fn anchor_queries(
    kind: WorkflowKind,
    config: &WorkflowConfig,
    dates: &[NaiveDate],
    limit: u32,
) -> Vec<AnchorQuery> {
    let (record_kind, statuses) = scope(kind);
    let anchor = match config.anchor {
        Anchor::DueDate => AnchorColumn::DueDate,
        Anchor::InvoiceDate | Anchor::PaymentDate => AnchorColumn::TxnDate,
    };
    dates
        .iter()
        .flat_map(|date| {
            statuses.iter().map(move |status| AnchorQuery {
                kind: record_kind,
                status,
                anchor,
                date: *date,
                after: None,
                limit,
            })
        })
        .collect()
}

/// A workflow's settings version: a hash of them, as intents carry a rule file's.
fn version(config: &WorkflowConfig) -> String {
    invoiceflow_rules::script::def::content_hash(&serde_json::to_string(config).unwrap_or_default())
}

/// Decides every enabled workflow's steps that fell due since its previous pass, up to now. A
/// disabled workflow forgets where it stood, so switching it on again starts afresh.
///
/// # Errors
/// [`StoreError`]; what was saved stays, and the next pass decides the rest (nothing twice).
pub async fn pass<S: Store>(
    store: &S,
    workflows: &BTreeMap<WorkflowKind, WorkflowConfig>,
    clock: &Clock,
) -> Result<Decided, StoreError> {
    let now = clock.now.instant();
    let mut total = Decided::default();
    for (kind, config) in workflows {
        let name = cursor_name(*kind);
        let last = store.cursor(&name).await?;
        if !config.enabled {
            if last != 0 {
                store.reset_cursor(&name).await?;
            }
            continue;
        }
        if last != 0 {
            let after = DateTime::from_timestamp_micros(last).unwrap_or_default();
            if after < now {
                for zone in clock.companies.zones() {
                    let d = pass_zone(store, *kind, config, clock, zone, after, now).await?;
                    total.sent += d.sent;
                    total.skipped += d.skipped;
                }
            }
        }
        store.save_firings(Some((&name, now.timestamp_micros())), &[], now).await?;
    }
    Ok(total)
}

/// One workflow's steps due in `(after, now]` for the records of companies in `zone`.
async fn pass_zone<S: Store>(
    store: &S,
    kind: WorkflowKind,
    config: &WorkflowConfig,
    clock: &Clock,
    zone: Tz,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Decided, StoreError> {
    let mut decided = Decided::default();
    let nominal = plan::nominal_dates(config, zone, after, now);
    if nominal.is_empty() {
        return Ok(decided);
    }
    let page_of = PageContext {
        kind,
        config,
        clock,
        zone,
        placement: plan::Placement::for_period(config, zone, after, now),
        today: clock.now.today(zone),
        after,
        now,
        version: version(config),
    };
    for mut query in anchor_queries(kind, config, &plan::anchor_dates(config, &nominal), PAGE) {
        loop {
            let page = store.anchored(&query).await?;
            let full = page.len() >= PAGE as usize;
            query.after = page.last().map(|s| s.record.key().clone());
            let d = page_of.decide(store, page).await?;
            decided.sent += d.sent;
            decided.skipped += d.skipped;
            if !full {
                break;
            }
        }
    }
    Ok(decided)
}

/// What deciding a page of records needs.
struct PageContext<'a> {
    kind: WorkflowKind,
    config: &'a WorkflowConfig,
    clock: &'a Clock,
    zone: Tz,
    placement: plan::Placement,
    today: NaiveDate,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
    version: String,
}

impl PageContext<'_> {
    /// Decides the steps due for a page of records and saves them.
    async fn decide<S: Store>(&self, store: &S, page: Vec<Stored>) -> Result<Decided, StoreError> {
        let (kind, config, zone) = (self.kind, self.config, self.zone);
        let due: Vec<(Subject, Vec<Firing>)> = page
            .into_iter()
            .filter(|s| self.clock.companies.get(&s.record.key().account).time_zone == zone)
            .filter_map(|s: Stored| {
                let subject = subject_of(s.record, self.today, s.status == PaymentStatus::Deposited.as_str());
                let due = plan::due_between(kind, config, &subject, &self.placement, self.after, self.now).ok()?;
                (!due.is_empty()).then_some((subject, due))
            })
            .collect();
        if due.is_empty() {
            return Ok(Decided::default());
        }
        let keys: Vec<RecordKey> = due.iter().map(|(_, f)| f[0].record.clone()).collect();
        let done: HashSet<(RecordKey, String)> = store.decided(kind, &keys).await?.into_iter().collect();
        let mut firings = Vec::new();
        for (subject, plan) in &due {
            let company = self.clock.companies.language(&plan[0].record.account);
            let ctx = Decide {
                kind,
                config,
                subject,
                zone,
                today: self.today,
                after: self.after,
                now: self.now,
                language: config.language_for(template::party(subject), company),
                version: &self.version,
            };
            let pending: Vec<Firing> =
                plan.iter().filter(|f| !done.contains(&(f.record.clone(), f.step.to_string()))).cloned().collect();
            firings.extend(ctx.decide(pending));
        }
        let mut decided = Decided::default();
        for f in &firings {
            match f.decision {
                FiringDecision::Sent { .. } => decided.sent += 1,
                FiringDecision::Skipped { .. } => decided.skipped += 1,
            }
        }
        store.save_firings(None, &firings, self.now).await?;
        Ok(decided)
    }
}

/// What deciding one record's due steps needs.
struct Decide<'a> {
    kind: WorkflowKind,
    config: &'a WorkflowConfig,
    subject: &'a Subject,
    zone: Tz,
    today: NaiveDate,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
    language: invoiceflow_rules::workflow::config::Language,
    version: &'a str,
}

impl Decide<'_> {
    /// Sends the steps on time and those the catch-up policy keeps, if the record still
    /// qualifies now; the others get an audit row.
    fn decide(&self, mut due: Vec<Firing>) -> Vec<NewFiring> {
        let skipped = |f: &Firing, reason: String| self.firing(f, FiringDecision::Skipped { reason });
        let mut out: Vec<Option<NewFiring>> = plan::coalesce(&mut due)
            .into_iter()
            .map(|(f, by)| Some(skipped(&f, format!("superseded by {by}, due at the same time"))))
            .collect();
        let engine_up = self.now - self.after <= ON_TIME;
        let (on_time, missed): (Vec<&Firing>, Vec<&Firing>) =
            due.iter().partition(|f| engine_up || f.at.is_some_and(|at| self.now - at <= ON_TIME));
        if !on_time.is_empty() && matches!(self.config.catch_up, CatchUp::OnceWithinGrace { .. }) {
            // A step is due now: the missed ones are superseded by it.
            for f in missed {
                let why = "missed while the engine was down; a later step is due now (catch_up = once_within_grace)";
                out.push(Some(skipped(f, why.to_owned())));
            }
        } else {
            let missed: Vec<Firing> = missed.into_iter().cloned().collect();
            let caught = plan::catch_up(self.config.catch_up, &missed, self.now);
            out.extend(caught.skipped.into_iter().map(|(f, why)| Some(skipped(f, why))));
            out.extend(caught.send.into_iter().map(|f| self.send(f)));
        }
        out.extend(on_time.into_iter().map(|f| self.send(f)));
        out.into_iter().flatten().collect()
    }

    /// The step sent; skipped, with an audit row, when the record still owes something but no
    /// longer qualifies (re-checked now); nothing when the workflow is done with it.
    fn send(&self, firing: &Firing) -> Option<NewFiring> {
        match plan::qualifies(self.kind, self.config, self.subject, self.today) {
            Ok(()) => {}
            Err(Skip::Stopped(_) | Skip::NotSent | Skip::WrongKind | Skip::NoDate) => return None,
            Err(why) => return Some(self.firing(firing, FiringDecision::Skipped { reason: why.to_string() })),
        }
        let all = plan::firings(self.kind, self.config, self.subject, self.zone).unwrap_or_default();
        let next = all.iter().filter(|f| f.at > firing.at).min_by_key(|f| f.at);
        let actions = template::actions(firing, self.config, self.subject, self.today, self.language);
        let cause = Cause::Workflow {
            step: firing.step.to_string(),
            nominal: firing.nominal,
            due: firing.at.unwrap_or(self.now),
        };
        let intents = actions
            .into_iter()
            .enumerate()
            .map(|(n, action)| NewIntent {
                key: format!("{}:{n}", firing.key),
                intent: Intent {
                    rule: format!("workflow:{}", self.kind),
                    version: self.version.to_owned(),
                    cause: cause.clone(),
                    record: firing.record.clone().into(),
                    seen: Seen::of(self.subject, self.today),
                    action,
                },
            })
            .collect();
        // On time, it expires counting from when it was due; caught up late, from now.
        let sent = firing.at.filter(|at| self.now - *at <= ON_TIME).unwrap_or(self.now);
        let expires_at = plan::expiry(firing, next, sent);
        Some(self.firing(firing, FiringDecision::Sent { expires_at, intents }))
    }

    fn firing(&self, f: &Firing, decision: FiringDecision) -> NewFiring {
        NewFiring {
            key: f.key.clone(),
            workflow: self.kind,
            record: f.record.clone(),
            step: f.step.to_string(),
            nominal: f.nominal,
            due_at: f.at.unwrap_or(self.now),
            decision,
        }
    }
}
