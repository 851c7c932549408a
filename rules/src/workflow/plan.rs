//! When each stage of a workflow falls due for one record, and whether the record qualifies at a
//! given moment. Stage dates are computed per record — the planner never tests every record on
//! every day — so planning scales with the work due, not with history.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::config::{Anchor, WorkflowConfig, WorkflowKind};
use super::time::local_instant;
use crate::ids::RecordKey;
use crate::money::Money;
use crate::record::{EmailStatus, Lifecycle};
use crate::script::Subject;
use crate::status::{BillStatus, InvoiceStatus, PaymentStatus};

/// Which step a firing is. A stage is named by its offset, not its place in the list: an admin
/// who adds or removes a stage does not rename the others (the ledger knows each step by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The stage this many days from the anchor date (`day-3`, `day+0`, `day+7`).
    Stage(i32),
    /// Repeat `n` (from 1) of the last stage.
    Repeat(u32),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stage(days) => write!(f, "day{days:+}"),
            Self::Repeat(n) => write!(f, "repeat-{n}"),
        }
    }
}

/// One planned firing of a workflow for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The workflow.
    pub workflow: WorkflowKind,
    /// The record.
    pub record: RecordKey,
    /// Which step.
    pub step: Step,
    /// The index of the stage whose channels and templates it uses.
    pub stage: usize,
    /// Its nominal local date (anchor + offset), before the send window moves it.
    pub nominal: NaiveDate,
    /// When it is due: the nominal date at the send time, moved into the send window; `None`
    /// when the window never opens.
    pub at: Option<DateTime<Utc>>,
    /// Its idempotency key: workflow, record, step and nominal local date. Moving a firing (send
    /// window, due date change) never changes what it is keyed by, so nothing fires twice.
    pub key: String,
}

/// Why a record does not qualify (or no longer does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not the workflow's kind of record.
    WrongKind,
    /// Paid, voided, deposited, sent, deleted…: the workflow is done with it.
    Stopped(String),
    /// The balance (amount, for a payment) is below the minimum for its currency.
    BelowMinimum(Money),
    /// Not in `include`, or in `exclude`.
    Excluded(String),
    /// Paused until this date (inclusive).
    Paused(NaiveDate),
    /// An invoice without a billing email cannot be reminded.
    NoRecipient,
    /// An invoice never sent is the unsent-invoice reminder's, not the payment reminder's.
    NotSent,
    /// No anchor date (no due date).
    NoDate,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongKind => f.write_str("not this workflow's kind of record"),
            Self::Stopped(why) => write!(f, "stopped: {why}"),
            Self::BelowMinimum(m) => write!(f, "{m} is below the minimum"),
            Self::Excluded(who) => write!(f, "{who} is excluded"),
            Self::Paused(until) => write!(f, "paused until {until}"),
            Self::NoRecipient => f.write_str("no billing email"),
            Self::NotSent => f.write_str("never sent"),
            Self::NoDate => f.write_str("no date to count from"),
        }
    }
}

/// What the planner needs of a record.
struct Facts<'a> {
    key: &'a RecordKey,
    party: &'a str,
    money: Money,
    anchor: Option<NaiveDate>,
}

fn facts<'a>(kind: WorkflowKind, anchor: Anchor, subject: &'a Subject) -> Result<Facts<'a>, Skip> {
    let date = |due: Option<NaiveDate>, txn: NaiveDate| match anchor {
        Anchor::DueDate => due,
        Anchor::InvoiceDate | Anchor::PaymentDate => Some(txn),
    };
    match (kind, subject) {
        (WorkflowKind::PaymentDue | WorkflowKind::UnsentInvoice, Subject::Invoice(r, _)) => {
            Ok(Facts { key: &r.key, party: &r.customer.name, money: r.balance, anchor: date(r.due_date, r.txn_date) })
        }
        (WorkflowKind::VendorPayment, Subject::Bill(r, _)) => {
            Ok(Facts { key: &r.key, party: &r.vendor.name, money: r.balance, anchor: date(r.due_date, r.txn_date) })
        }
        (WorkflowKind::BankDeposit, Subject::Payment(r, _)) => {
            Ok(Facts { key: &r.key, party: &r.customer.name, money: r.amount, anchor: date(None, r.txn_date) })
        }
        _ => Err(Skip::WrongKind),
    }
}

/// The stop conditions and qualifications of DOMAIN.md §3 for `kind`.
fn stopped(kind: WorkflowKind, subject: &Subject) -> Result<(), Skip> {
    let stop = |why: &str| Err(Skip::Stopped(why.to_owned()));
    match subject {
        Subject::Invoice(r, status) => {
            let sent = r.email_status == EmailStatus::EmailSent || r.delivery.is_some();
            match (kind, status) {
                (_, InvoiceStatus::Voided) => stop("voided"),
                (_, InvoiceStatus::Paid) => stop("paid"),
                (WorkflowKind::UnsentInvoice, _) if sent => stop("sent"),
                (WorkflowKind::PaymentDue, _) if !sent => Err(Skip::NotSent),
                (WorkflowKind::PaymentDue, _) if r.bill_email.is_none() => Err(Skip::NoRecipient),
                _ => Ok(()),
            }
        }
        Subject::Bill(_, status) => match status {
            BillStatus::Paid => stop("paid"),
            BillStatus::Deleted => stop("deleted"),
            BillStatus::Open | BillStatus::Overdue => Ok(()),
        },
        Subject::Payment(r, status) => match status {
            PaymentStatus::Deposited => stop("deposited"),
            PaymentStatus::Deleted => stop("deleted"),
            PaymentStatus::Undeposited if r.lifecycle != Lifecycle::Active => stop("deleted"),
            PaymentStatus::Undeposited => Ok(()),
        },
        Subject::Deposit(_) => Err(Skip::WrongKind),
    }
}

/// Whether `subject` qualifies for workflow `kind` on local date `on` (stop conditions, minimum,
/// include/exclude, pauses). Re-checked at the moment of firing.
///
/// # Errors
/// [`Skip`]: why not.
pub fn qualifies(kind: WorkflowKind, config: &WorkflowConfig, subject: &Subject, on: NaiveDate) -> Result<(), Skip> {
    let f = facts(kind, config.anchor, subject)?;
    stopped(kind, subject)?;
    if f.money.amount <= rust_decimal::Decimal::ZERO && kind != WorkflowKind::BankDeposit {
        return Err(Skip::Stopped("nothing left to pay".to_owned()));
    }
    if let Some(min) = config.min_balance.get(f.money.currency.code())
        && f.money.amount < *min
    {
        return Err(Skip::BelowMinimum(f.money));
    }
    let named = |list: &[String]| list.iter().any(|n| n.eq_ignore_ascii_case(f.party));
    if (!config.include.is_empty() && !named(&config.include)) || named(&config.exclude) {
        return Err(Skip::Excluded(f.party.to_owned()));
    }
    let paused = config
        .paused
        .iter()
        .filter(|p| p.who.eq_ignore_ascii_case(f.party) || p.who == f.key.id.as_str())
        .map(|p| p.until)
        .max();
    if let Some(until) = paused.filter(|u| on <= *u) {
        return Err(Skip::Paused(until));
    }
    Ok(())
}

/// Every firing of workflow `kind` for `subject`, in date order: its stages, then its repeats,
/// each at the send time on its nominal date in `zone`, moved into the send window.
///
/// # Errors
/// [`Skip::WrongKind`] or [`Skip::NoDate`].
pub fn firings(kind: WorkflowKind, config: &WorkflowConfig, subject: &Subject, zone: Tz) -> Result<Vec<Firing>, Skip> {
    firings_between(kind, config, subject, zone, NaiveDate::MIN, NaiveDate::MAX)
}

/// The firings of [`firings`] whose nominal date falls between `from` and `to` (inclusive): only
/// those are placed in time and keyed, so planning a short period over many records stays cheap.
///
/// # Errors
/// [`Skip::WrongKind`] or [`Skip::NoDate`].
pub fn firings_between(
    kind: WorkflowKind,
    config: &WorkflowConfig,
    subject: &Subject,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Firing>, Skip> {
    plan_between(kind, config, subject, from, to, |nominal| place(config, zone, nominal))
}

/// When the firings of nominal date `nominal` fall due: at the send time, moved into the window.
fn place(config: &WorkflowConfig, zone: Tz, nominal: NaiveDate) -> Option<DateTime<Utc>> {
    config.window.next_open(zone, local_instant(zone, nominal, config.send_time))
}

/// When the firings of each nominal date fall due, for one workflow in one zone, worked out once
/// for a range of dates: a firing's time depends on its date, never on its record.
#[derive(Debug, Clone)]
pub struct Placement {
    zone: Tz,
    first: NaiveDate,
    at: Vec<Option<DateTime<Utc>>>,
}

impl Placement {
    /// The times of the nominal dates from `first` to `last` (others are worked out when asked).
    pub fn new(config: &WorkflowConfig, zone: Tz, first: NaiveDate, last: NaiveDate) -> Self {
        let at = first.iter_days().take_while(|d| *d <= last).map(|d| place(config, zone, d)).collect();
        Self { zone, first, at }
    }

    /// The placement [`due_between`] needs for the period `(after, through]`.
    pub fn for_period(config: &WorkflowConfig, zone: Tz, after: DateTime<Utc>, through: DateTime<Utc>) -> Self {
        let (first, last) = nominal_range(zone, after, through);
        Self::new(config, zone, first, last)
    }

    /// The zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// When the firings of `nominal` fall due.
    pub fn at(&self, config: &WorkflowConfig, nominal: NaiveDate) -> Option<DateTime<Utc>> {
        let index = usize::try_from((nominal - self.first).num_days()).ok();
        match index.and_then(|i| self.at.get(i)) {
            Some(at) => *at,
            None => place(config, self.zone, nominal),
        }
    }
}

/// The nominal dates whose firings may fall due in `(after, through]`.
fn nominal_range(zone: Tz, after: DateTime<Utc>, through: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let first = after.with_timezone(&zone).date_naive() - chrono::Duration::days(WINDOW_REACH_DAYS);
    (first, through.with_timezone(&zone).date_naive())
}

fn plan_between(
    kind: WorkflowKind,
    config: &WorkflowConfig,
    subject: &Subject,
    from: NaiveDate,
    to: NaiveDate,
    place: impl Fn(NaiveDate) -> Option<DateTime<Utc>>,
) -> Result<Vec<Firing>, Skip> {
    let f = facts(kind, config.anchor, subject)?;
    let anchor = f.anchor.ok_or(Skip::NoDate)?;
    let mut order: Vec<usize> = (0..config.stages.len()).collect();
    order.sort_by_key(|i| config.stages[*i].days);
    let mut out = Vec::new();
    // The key's prefix is the same for every firing of the record: written once.
    let mut prefix = String::with_capacity(64);
    let _ = write!(prefix, "workflow:{kind}:{}:", f.key);
    let mut push = |step: Step, stage: usize, nominal: NaiveDate| {
        if nominal < from || nominal > to {
            return;
        }
        out.push(Firing {
            workflow: kind,
            record: f.key.clone(),
            step,
            stage,
            nominal,
            at: place(nominal),
            key: firing_key(&prefix, step, nominal),
        });
    };
    for i in &order {
        let days = config.stages[*i].days;
        push(Step::Stage(days), *i, anchor + chrono::Duration::days(i64::from(days)));
    }
    if let (Some(repeat), Some(last)) = (config.repeat, order.last()) {
        let from = anchor + chrono::Duration::days(i64::from(config.stages[*last].days));
        for r in 1..=repeat.max {
            push(Step::Repeat(r), *last, from + chrono::Duration::days(i64::from(repeat.every_days * r)));
        }
    }
    Ok(out)
}

/// Of a record's steps due at one instant (the send window moved several onto the same opening),
/// only the last is sent: a customer gets one reminder, the firmest. `due` is in step order, as
/// [`due_between`] gives it; the superseded steps are taken out and returned, each with the step
/// that supersedes it.
pub fn coalesce(due: &mut Vec<Firing>) -> Vec<(Firing, Step)> {
    let mut superseded = Vec::new();
    let mut kept: Vec<Firing> = Vec::with_capacity(due.len());
    for firing in due.drain(..) {
        match kept.last_mut() {
            Some(last) if last.at == firing.at => superseded.push((std::mem::replace(last, firing), last.step)),
            _ => kept.push(firing),
        }
    }
    // Each superseded step names the one finally sent at its instant.
    for (old, by) in &mut superseded {
        if let Some(sent) = kept.iter().find(|k| k.at == old.at) {
            *by = sent.step;
        }
    }
    *due = kept;
    superseded
}

/// `{prefix}{step}:{nominal}`, written without the formatting machinery: simulating a quarter
/// over a million invoices writes well over a million keys.
fn firing_key(prefix: &str, step: Step, nominal: NaiveDate) -> String {
    use chrono::Datelike as _;
    let mut key = String::with_capacity(prefix.len() + 22);
    key.push_str(prefix);
    let (word, n) = match step {
        Step::Stage(days) if days < 0 => ("day-", days.unsigned_abs()),
        Step::Stage(days) => ("day+", days.unsigned_abs()),
        Step::Repeat(n) => ("repeat-", n),
    };
    key.push_str(word);
    push_number(&mut key, n, 1);
    key.push(':');
    push_number(&mut key, u32::try_from(nominal.year()).unwrap_or(0), 4);
    key.push('-');
    push_number(&mut key, nominal.month(), 2);
    key.push('-');
    push_number(&mut key, nominal.day(), 2);
    key
}

/// `n` in decimal, zero-padded to `width` digits.
fn push_number(out: &mut String, mut n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = start.min(digits.len().saturating_sub(width));
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// How many days a send window can move a firing later: a stage nominally due that many days
/// before a period may still fire in it.
pub const WINDOW_REACH_DAYS: i64 = 8;

/// The firings of [`firings`] that fall due after `after` and up to `through` (once moved into the
/// send window). This is the one timing function of the running engine's passes and of
/// `invoiceflow simulate`.
///
/// # Errors
/// [`Skip::WrongKind`] or [`Skip::NoDate`].
pub fn due_between(
    kind: WorkflowKind,
    config: &WorkflowConfig,
    subject: &Subject,
    placement: &Placement,
    after: DateTime<Utc>,
    through: DateTime<Utc>,
) -> Result<Vec<Firing>, Skip> {
    let (first, last) = nominal_range(placement.zone, after, through);
    let mut plan = plan_between(kind, config, subject, first, last, |nominal| placement.at(config, nominal))?;
    plan.retain(|f| f.at.is_some_and(|at| at > after && at <= through));
    Ok(plan)
}

/// The nominal dates, in `zone`, whose firings fall due after `after` and up to `through`: a
/// firing's time depends on its date, the send time and the window, never on the record.
pub fn nominal_dates(
    config: &WorkflowConfig,
    zone: Tz,
    after: DateTime<Utc>,
    through: DateTime<Utc>,
) -> Vec<NaiveDate> {
    let first = after.with_timezone(&zone).date_naive() - chrono::Duration::days(WINDOW_REACH_DAYS);
    let last = through.with_timezone(&zone).date_naive();
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .filter(|d| {
            config
                .window
                .next_open(zone, local_instant(zone, *d, config.send_time))
                .is_some_and(|at| at > after && at <= through)
        })
        .collect()
}

/// The anchor dates (due, invoice or payment dates) of the records with a step on one of the
/// `nominal` dates: what the store is asked for, so that a pass reads only the records due.
pub fn anchor_dates(config: &WorkflowConfig, nominal: &[NaiveDate]) -> Vec<NaiveDate> {
    let mut offsets: Vec<i64> = config.stages.iter().map(|s| i64::from(s.days)).collect();
    if let (Some(repeat), Some(last)) = (config.repeat, offsets.iter().max().copied()) {
        offsets.extend((1..=repeat.max).map(|r| last + i64::from(repeat.every_days * r)));
    }
    let mut dates: Vec<NaiveDate> =
        nominal.iter().flat_map(|n| offsets.iter().map(move |o| *n - chrono::Duration::days(*o))).collect();
    dates.sort_unstable();
    dates.dedup();
    dates
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::New_York;

    use super::*;
    use crate::script::subject::from_canonical;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn invoice(fields: serde_json::Value) -> Subject {
        let mut v = serde_json::json!({"type": "invoice", "id": "42", "customer": "Acme", "recipient": "ap@acme.example",
            "amount": "500.00", "balance": "500.00", "currency": "USD", "txn_date": "2026-11-02",
            "due_date": "2026-11-20", "email_status": "EmailSent", "updated_at": "2026-11-02T00:00:00Z"});
        if let (Some(b), Some(f)) = (v.as_object_mut(), fields.as_object()) {
            b.extend(f.clone());
        }
        from_canonical(v, day("2026-11-25")).unwrap()
    }

    #[test]
    fn payment_due_stages_fall_on_their_dates_at_nine_in_the_window() {
        let config = WorkflowKind::PaymentDue.defaults();
        let plan = firings(WorkflowKind::PaymentDue, &config, &invoice(serde_json::json!({})), New_York).unwrap();
        let dates: Vec<String> = plan.iter().map(|f| f.nominal.to_string()).collect();
        assert_eq!(dates, ["2026-11-17", "2026-11-27", "2026-12-04", "2026-12-20"]);
        // 2026-12-20 is a Sunday: it moves to Monday 09:00 and keeps its nominal key.
        let last = &plan[3];
        assert_eq!(
            last.at,
            Some(local_instant(New_York, day("2026-12-21"), chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap()))
        );
        assert_eq!(last.key, "workflow:payment_due:invoice default/42:day+30:2026-12-20");
    }

    #[test]
    fn steps_moved_onto_one_opening_send_only_the_last() {
        // Unsent since Wednesday 2026-11-04: +1 on Thursday, then every 2 days; Saturday's
        // repeat-1 moves to Monday 09:00, where repeat-2 falls anyway.
        let unsent = invoice(serde_json::json!({"email_status": "NeedToSend", "txn_date": "2026-11-04"}));
        let config = WorkflowKind::UnsentInvoice.defaults();
        let (from, to) = (day("2026-11-01"), day("2026-11-11"));
        let mut plan = firings_between(WorkflowKind::UnsentInvoice, &config, &unsent, New_York, from, to).unwrap();
        let steps = |p: &[Firing]| p.iter().map(|f| f.step.to_string()).collect::<Vec<_>>();
        assert_eq!(steps(&plan), ["day+1", "repeat-1", "repeat-2", "repeat-3"]);
        let superseded = coalesce(&mut plan);
        assert_eq!(steps(&plan), ["day+1", "repeat-2", "repeat-3"]);
        assert_eq!(
            superseded.iter().map(|(f, by)| (f.step, *by)).collect::<Vec<_>>(),
            [(Step::Repeat(1), Step::Repeat(2))]
        );
    }

    #[test]
    fn keys_are_written_as_format_would() {
        for (step, date) in [
            (Step::Stage(0), "2026-01-05"),
            (Step::Repeat(12), "2027-10-31"),
            (Step::Stage(-3), "0999-12-01"),
            (Step::Stage(30), "2026-12-20"),
        ] {
            let nominal = day(date);
            assert_eq!(firing_key("p:", step, nominal), format!("p:{step}:{nominal}"));
        }
    }

    #[test]
    fn repeats_count_from_the_last_stages_nominal_date() {
        let mut config = WorkflowKind::UnsentInvoice.defaults();
        config.repeat = Some(super::super::config::Repeat { every_days: 2, max: 3 });
        let unsent = invoice(serde_json::json!({"email_status": "NeedToSend"}));
        let plan = firings(WorkflowKind::UnsentInvoice, &config, &unsent, New_York).unwrap();
        let steps: Vec<(String, String)> = plan.iter().map(|f| (f.step.to_string(), f.nominal.to_string())).collect();
        assert_eq!(
            steps,
            [
                ("day+1".into(), "2026-11-03".into()),
                ("repeat-1".into(), "2026-11-05".into()),
                ("repeat-2".into(), "2026-11-07".into()),
                ("repeat-3".into(), "2026-11-09".into())
            ]
        );
    }

    #[test]
    fn stop_conditions_and_knobs_decide_who_qualifies() {
        let kind = WorkflowKind::PaymentDue;
        let mut config = kind.defaults();
        let on = day("2026-11-27");
        assert_eq!(qualifies(kind, &config, &invoice(serde_json::json!({})), on), Ok(()));
        assert_eq!(
            qualifies(kind, &config, &invoice(serde_json::json!({"balance": "0.00"})), on),
            Err(Skip::Stopped("paid".into()))
        );
        assert_eq!(
            qualifies(kind, &config, &invoice(serde_json::json!({"email_status": "NeedToSend"})), on),
            Err(Skip::NotSent)
        );
        config.min_balance.insert("USD".into(), "500.00".parse().unwrap());
        assert_eq!(
            qualifies(kind, &config, &invoice(serde_json::json!({})), on),
            Ok(()),
            "equal to the minimum qualifies"
        );
        config.min_balance.insert("USD".into(), "500.01".parse().unwrap());
        assert!(matches!(qualifies(kind, &config, &invoice(serde_json::json!({})), on), Err(Skip::BelowMinimum(_))));
        config.min_balance.clear();
        config.exclude = vec!["acme".into()];
        assert_eq!(qualifies(kind, &config, &invoice(serde_json::json!({})), on), Err(Skip::Excluded("Acme".into())));
        config.exclude.clear();
        config.paused = vec![super::super::config::Pause { who: "42".into(), until: day("2026-11-27") }];
        assert_eq!(qualifies(kind, &config, &invoice(serde_json::json!({})), on), Err(Skip::Paused(day("2026-11-27"))));
        assert_eq!(qualifies(kind, &config, &invoice(serde_json::json!({})), day("2026-11-28")), Ok(()));
        // The unsent reminder is about "not sent", whatever the status.
        let overdue_unsent = invoice(serde_json::json!({"email_status": "NeedToSend", "due_date": "2026-11-01"}));
        assert_eq!(
            qualifies(WorkflowKind::UnsentInvoice, &WorkflowKind::UnsentInvoice.defaults(), &overdue_unsent, on),
            Ok(())
        );
        assert_eq!(qualifies(WorkflowKind::VendorPayment, &config, &overdue_unsent, on), Err(Skip::WrongKind));
    }
}

/// What catching up decided for firings missed while the engine was down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUpDecision<'a> {
    /// To deliver now.
    pub send: Vec<&'a Firing>,
    /// Not delivered, each with the reason its audit row gives.
    pub skipped: Vec<(&'a Firing, String)>,
}

/// Applies `policy` to the firings that fell due before `now` without being delivered (the engine
/// was down), oldest first.
pub fn catch_up<'a>(policy: super::config::CatchUp, missed: &'a [Firing], now: DateTime<Utc>) -> CatchUpDecision<'a> {
    use super::config::CatchUp;
    let mut decision = CatchUpDecision { send: Vec::new(), skipped: Vec::new() };
    let mut due: Vec<&Firing> = missed.iter().filter(|f| f.at.is_some_and(|at| at <= now)).collect();
    due.sort_by_key(|f| f.at);
    match policy {
        CatchUp::All => decision.send = due,
        CatchUp::Skip => {
            decision.skipped =
                due.into_iter().map(|f| (f, "missed while the engine was down (catch_up = skip)".to_owned())).collect();
        }
        CatchUp::OnceWithinGrace { grace_hours } => {
            let grace = chrono::Duration::hours(i64::from(grace_hours));
            let latest = due.pop();
            for f in due {
                decision.skipped.push((
                    f,
                    "missed while the engine was down; a later one was due (catch_up = once_within_grace)".to_owned(),
                ));
            }
            if let Some(f) = latest {
                match f.at {
                    Some(at) if now - at <= grace => decision.send.push(f),
                    _ => decision.skipped.push((
                        f,
                        format!("missed by more than the {grace_hours} h grace (catch_up = once_within_grace)"),
                    )),
                }
            }
        }
    }
    decision
}

/// When a delivery of `firing`, sent at `sent`, stops being worth sending: the next firing's
/// time, at most 48 hours after it was due or caught up (a late reminder is worse than none).
pub fn expiry(firing: &Firing, next: Option<&Firing>, sent: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let from = firing.at?.max(sent);
    let cap = from + chrono::Duration::hours(48);
    Some(next.and_then(|n| n.at).filter(|n| *n > from).map_or(cap, |n| n.min(cap)))
}

#[cfg(test)]
mod time_tests {
    use chrono::{NaiveTime, Weekday};
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Paris;

    use super::*;
    use crate::script::subject::from_canonical;
    use crate::workflow::config::{CatchUp, Channel, Stage};
    use crate::workflow::time::SendWindow;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn invoice_due(due: &str) -> Subject {
        from_canonical(
            serde_json::json!({"type": "invoice", "id": "9", "customer": "Acme", "recipient": "ap@acme.example",
                "amount": "10.00", "balance": "10.00", "currency": "USD", "txn_date": "2026-01-01", "due_date": due,
                "email_status": "EmailSent", "updated_at": "2026-01-01T00:00:00Z"}),
            "2026-01-02".parse().unwrap(),
        )
        .unwrap()
    }

    /// A one-stage payment reminder on the due date at `hh:mm`, any day, any hour.
    fn at_time(h: u32, m: u32) -> WorkflowConfig {
        let mut c = WorkflowKind::PaymentDue.defaults();
        c.stages = vec![Stage { days: 0, channels: vec![Channel::CustomerEmail], subject: None, body: None }];
        c.send_time = NaiveTime::from_hms_opt(h, m, 0).unwrap();
        c.window = SendWindow {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            start: NaiveTime::MIN,
            end: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
        };
        c
    }

    #[test]
    fn a_0230_send_on_spring_forward_day_fires_once_at_the_first_valid_instant() {
        let c = at_time(2, 30);
        let ny = firings(WorkflowKind::PaymentDue, &c, &invoice_due("2026-03-08"), New_York).unwrap();
        assert_eq!(ny.iter().map(|f| f.at).collect::<Vec<_>>(), [Some(utc("2026-03-08T07:00:00Z"))]);
        let paris = firings(WorkflowKind::PaymentDue, &c, &invoice_due("2026-03-29"), Paris).unwrap();
        assert_eq!(paris.iter().map(|f| f.at).collect::<Vec<_>>(), [Some(utc("2026-03-29T01:00:00Z"))]);
    }

    #[test]
    fn a_0130_send_on_fall_back_day_fires_once_at_its_first_occurrence() {
        let c = at_time(1, 30);
        let ny = firings(WorkflowKind::PaymentDue, &c, &invoice_due("2026-11-01"), New_York).unwrap();
        assert_eq!(ny.iter().map(|f| f.at).collect::<Vec<_>>(), [Some(utc("2026-11-01T05:30:00Z"))]);
        let c = at_time(2, 30);
        let paris = firings(WorkflowKind::PaymentDue, &c, &invoice_due("2026-10-25"), Paris).unwrap();
        assert_eq!(paris.iter().map(|f| f.at).collect::<Vec<_>>(), [Some(utc("2026-10-25T00:30:00Z"))]);
    }

    fn missed() -> Vec<Firing> {
        // Three days down: stages due Monday, Tuesday, Wednesday at 09:00 New York.
        let mut c = WorkflowKind::PaymentDue.defaults();
        c.stages = (0..3)
            .map(|d| Stage { days: d, channels: vec![Channel::CustomerEmail], subject: None, body: None })
            .collect();
        firings(WorkflowKind::PaymentDue, &c, &invoice_due("2026-11-23"), New_York).unwrap()
    }

    #[test]
    fn catching_up_follows_the_policy_and_says_why_it_skipped() {
        let firings = missed();
        let thursday_8 = utc("2026-11-26T13:00:00Z");
        let all = catch_up(CatchUp::All, &firings, thursday_8);
        assert_eq!((all.send.len(), all.skipped.len()), (3, 0));
        let skip = catch_up(CatchUp::Skip, &firings, thursday_8);
        assert_eq!((skip.send.len(), skip.skipped.len()), (0, 3));
        assert!(skip.skipped[0].1.contains("catch_up = skip"));
        let once = catch_up(CatchUp::OnceWithinGrace { grace_hours: 24 }, &firings, thursday_8);
        assert_eq!(once.send.iter().map(|f| f.nominal.to_string()).collect::<Vec<_>>(), ["2026-11-25"]);
        assert_eq!(once.skipped.len(), 2);
        let too_late = catch_up(CatchUp::OnceWithinGrace { grace_hours: 24 }, &firings, utc("2026-11-27T15:00:00Z"));
        assert!(too_late.send.is_empty());
        assert!(too_late.skipped[2].1.contains("more than the 24 h grace"), "{:?}", too_late.skipped);
    }

    #[test]
    fn a_delivery_expires_at_the_next_stage_or_after_48_hours() {
        let f = missed();
        let at = |i: usize| f[i].at.unwrap();
        assert_eq!(expiry(&f[0], Some(&f[1]), at(0)), f[1].at);
        assert_eq!(expiry(&f[2], None, at(2)), Some(at(2) + chrono::Duration::hours(48)));
        // Caught up two days late: counted from then, and the next step, already past, is ignored.
        let late = at(2) + chrono::Duration::hours(49);
        assert_eq!(expiry(&f[0], Some(&f[1]), late), Some(late + chrono::Duration::hours(48)));
    }
}

#[cfg(test)]
mod kind_tests {
    use chrono_tz::America::New_York;

    use super::*;
    use crate::script::subject::{from_canonical, subject_of};
    use crate::workflow::config::Pause;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn bill(balance: &str, vendor: &str) -> Subject {
        from_canonical(
            serde_json::json!({"type": "bill", "id": "B1", "number": "B-1", "vendor": vendor, "amount": "900.00",
                "balance": balance, "currency": "USD", "txn_date": "2026-11-01", "due_date": "2026-11-30",
                "updated_at": "2026-11-01T00:00:00Z"}),
            day("2026-11-25"),
        )
        .unwrap()
    }

    fn payment(deposit_account: Option<&str>, deposited: bool) -> Subject {
        let mut v = serde_json::json!({"type": "payment", "id": "P1", "customer": "Acme", "amount": "75.00",
            "currency": "USD", "txn_date": "2026-11-20", "updated_at": "2026-11-20T00:00:00Z"});
        if let Some(a) = deposit_account {
            v["deposit_account"] = serde_json::json!(a);
        }
        let Subject::Payment(p, _) = from_canonical(v, day("2026-11-25")).unwrap() else { panic!("a payment") };
        subject_of(crate::record::Record::Payment((*p).clone()), day("2026-11-25"), deposited)
    }

    #[test]
    fn the_vendor_reminder_follows_bills_until_paid_and_matches_vendors() {
        let kind = WorkflowKind::VendorPayment;
        let mut c = kind.defaults();
        let on = day("2026-11-27");
        assert_eq!(qualifies(kind, &c, &bill("900.00", "Paper Co"), on), Ok(()));
        assert_eq!(qualifies(kind, &c, &bill("0.00", "Paper Co"), on), Err(Skip::Stopped("paid".into())));
        c.include = vec!["Ink Ltd".into()];
        assert_eq!(qualifies(kind, &c, &bill("900.00", "Paper Co"), on), Err(Skip::Excluded("Paper Co".into())));
        c.include.clear();
        c.paused = vec![Pause { who: "paper co".into(), until: day("2026-11-30") }];
        assert_eq!(qualifies(kind, &c, &bill("900.00", "Paper Co"), on), Err(Skip::Paused(day("2026-11-30"))));
        let plan = firings(kind, &kind.defaults(), &bill("900.00", "Paper Co"), New_York).unwrap();
        assert_eq!(plan.iter().map(|f| f.nominal.to_string()).collect::<Vec<_>>(), ["2026-11-27", "2026-11-30"]);
    }

    #[test]
    fn the_deposit_reminder_follows_undeposited_payments_and_compares_the_amount() {
        let kind = WorkflowKind::BankDeposit;
        let mut c = kind.defaults();
        let on = day("2026-11-25");
        assert_eq!(qualifies(kind, &c, &payment(None, false), on), Ok(()));
        assert_eq!(qualifies(kind, &c, &payment(None, true), on), Err(Skip::Stopped("deposited".into())));
        assert_eq!(qualifies(kind, &c, &payment(Some("Checking"), false), on), Err(Skip::Stopped("deposited".into())));
        c.min_balance.insert("USD".into(), "75.00".parse().unwrap());
        assert_eq!(qualifies(kind, &c, &payment(None, false), on), Ok(()), "the payment amount, equal to the minimum");
        c.min_balance.insert("USD".into(), "100.00".parse().unwrap());
        assert!(matches!(qualifies(kind, &c, &payment(None, false), on), Err(Skip::BelowMinimum(_))));
        // From the payment date: +2, then every 3 days.
        let plan = firings(kind, &kind.defaults(), &payment(None, false), New_York).unwrap();
        let dates: Vec<String> = plan.iter().take(3).map(|f| f.nominal.to_string()).collect();
        assert_eq!(dates, ["2026-11-22", "2026-11-25", "2026-11-28"]);
        assert_eq!(plan.len(), 11, "the stage and at most 10 repeats");
    }

    #[test]
    fn the_unsent_reminder_stops_once_the_invoice_is_sent_or_paid() {
        let kind = WorkflowKind::UnsentInvoice;
        let c = kind.defaults();
        let invoice = |email_status: &str, balance: &str| {
            from_canonical(
                serde_json::json!({"type": "invoice", "id": "5", "customer": "Acme", "amount": "50.00", "balance": balance,
                    "currency": "USD", "txn_date": "2026-11-20", "due_date": "2026-12-20", "email_status": email_status,
                    "updated_at": "2026-11-20T00:00:00Z"}),
                day("2026-11-25"),
            )
            .unwrap()
        };
        let on = day("2026-11-25");
        assert_eq!(qualifies(kind, &c, &invoice("NeedToSend", "50.00"), on), Ok(()));
        assert_eq!(qualifies(kind, &c, &invoice("EmailSent", "50.00"), on), Err(Skip::Stopped("sent".into())));
        assert_eq!(qualifies(kind, &c, &invoice("NeedToSend", "0.00"), on), Err(Skip::Stopped("paid".into())));
        // The payment reminder leaves unsent invoices to this one.
        let due = WorkflowKind::PaymentDue;
        assert_eq!(qualifies(due, &due.defaults(), &invoice("NeedToSend", "50.00"), on), Err(Skip::NotSent));
    }
}
