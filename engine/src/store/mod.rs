//! The store: one interface, a SQLite implementation (the embedded default) and a PostgreSQL one
//! (several nodes share it). Both run the same [`plan`] over the same rows, so they differ only in
//! SQL; one contract test suite (`tests/store_contract.rs`) runs against both.

mod codec;
mod imp;
pub mod plan;
mod postgres;
pub mod quickbooks;
mod sql;
mod sqlite;

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use invoiceflow_rules::parse::Incoming;
use invoiceflow_rules::script::{Cause, Intent};
use invoiceflow_rules::workflow::config::WorkflowKind;
use invoiceflow_rules::{AccountName, Holder, Property, Record, RecordId, RecordKey, RecordKind};
use serde::Serialize;

pub use postgres::PgStore;
pub use quickbooks::{Connection, ConnectionState, InboxEntry, InboxGauge, InboxItem, QuickBooksStore, TokenPair};
pub use sqlite::SqliteStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be decoded (written by a newer version, or edited by hand).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which row.
        what: String,
        /// Why.
        reason: String,
    },
    /// A write transaction was lost (a background write stopped before finishing); nothing of it
    /// was committed.
    #[error("the write transaction was interrupted; nothing of it was committed")]
    Interrupted,
    /// The database URL names no supported backend.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

/// A record as stored, with the status recorded at its last change or refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The record.
    pub record: Record,
    /// Its status as last recorded (`overdue`, `undeposited`, …).
    pub status: String,
}

/// A stored record read but not yet decoded: reading stays cheap, and the decoding (JSON) can
/// happen on another thread.
#[derive(Debug, Clone)]
pub struct Encoded {
    kind: String,
    account: String,
    id: String,
    status: String,
    body: String,
    position: ScanPosition,
}

impl Encoded {
    /// Where a scan that read it stands.
    pub fn position(&self) -> ScanPosition {
        self.position.clone()
    }

    /// Its key.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the stored key is unreadable.
    pub fn key(&self) -> Result<RecordKey, StoreError> {
        imp::key_of("record", &self.kind, self.account.clone(), self.id.clone())
    }

    /// The record and its status.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the stored record is unreadable.
    pub fn decode(&self) -> Result<Stored, StoreError> {
        codec::decode(&self.kind, self.status.clone(), &self.body)
    }
}

/// A history event: one watched property's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Sequence number (increasing).
    pub seq: i64,
    /// The record.
    pub record: RecordKey,
    /// The property.
    pub property: Property,
    /// Value before.
    pub old: Option<String>,
    /// Value after.
    pub new: Option<String>,
    /// When the change happened at the source (QuickBooks' `LastUpdatedTime`, or the start of the
    /// local day for a change that time made).
    pub source_time: DateTime<Utc>,
    /// When invoiceflow recorded it.
    pub ingest_time: DateTime<Utc>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// New records.
    pub imported: u64,
    /// Stored records that changed.
    pub updated: u64,
    /// Identical to what is stored (and deletions of records never seen).
    pub unchanged: u64,
    /// Older than what is stored: ignored.
    pub stale: u64,
    /// History events written.
    pub events: u64,
}

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, o: Self) {
        self.imported += o.imported;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.stale += o.stale;
        self.events += o.events;
    }
}

/// Each company's calendar: its local "today" and when a local day starts.
pub trait Calendar: Sync {
    /// The local date of company `account`.
    fn today(&self, account: &AccountName) -> NaiveDate;
    /// The UTC instant local day `day` starts at in company `account`'s zone.
    fn day_start(&self, account: &AccountName, day: NaiveDate) -> DateTime<Utc>;
}

/// The moment a write happens: the ingest instant and every company's calendar.
#[derive(Clone, Copy)]
pub struct Moment<'a> {
    /// When the batch is recorded (ingest time).
    pub now: DateTime<Utc>,
    /// "Today" per company.
    pub calendar: &'a dyn Calendar,
}

/// Which invoices to list.
#[derive(Debug, Clone, Default)]
pub struct InvoiceQuery {
    /// Only those linked to this holder.
    pub holder: Option<Holder>,
    /// Only this company.
    pub account: Option<AccountName>,
    /// Resume after this key (pages are ordered by account, then id).
    pub after: Option<(AccountName, RecordId)>,
    /// Page size.
    pub limit: u32,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this record's.
    pub record: Option<RecordKey>,
    /// Only events after this sequence number.
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// An intent to store under its idempotency key.
#[derive(Debug, Clone)]
pub struct NewIntent {
    /// Unique per (rule, change event or schedule slot, action): storing it twice adds nothing.
    pub key: String,
    /// The intent.
    pub intent: Intent,
}

/// A rule evaluation that failed, for that rule and record only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFailure {
    /// The rule.
    pub rule: String,
    /// Its version.
    pub version: String,
    /// The record.
    pub record: RecordKey,
    /// What started the evaluation.
    pub cause: Cause,
    /// What went wrong.
    pub message: String,
    /// A sandbox limit rather than a mistake in the script.
    pub limit: bool,
}

/// A stored intent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredIntent {
    /// Sequence number (increasing).
    pub seq: i64,
    /// Its idempotency key.
    pub key: String,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// The intent, with its provenance.
    #[serde(flatten)]
    pub intent: Intent,
}

/// Which intents (or failures) to list.
#[derive(Debug, Clone, Default)]
pub struct IntentQuery {
    /// Only this rule's.
    pub rule: Option<String>,
    /// Only this record's.
    pub record: Option<RecordKey>,
    /// Only after this sequence number.
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// A stored failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredFailure {
    /// Sequence number (increasing).
    pub seq: i64,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// The failure.
    #[serde(flatten)]
    pub failure: RuleFailure,
}

/// Which date of a record a reminder workflow counts from, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorColumn {
    /// The due date.
    DueDate,
    /// The invoice, bill or payment date.
    TxnDate,
}

/// Records that may fall due for a reminder workflow: of one kind, in one status, with their
/// anchor date on one day. (One status and one day at a time, the store reads one range of an
/// index, already in key order.)
#[derive(Debug, Clone)]
pub struct AnchorQuery {
    /// The kind of record.
    pub kind: RecordKind,
    /// The status (one a workflow may still act on).
    pub status: &'static str,
    /// Which date.
    pub anchor: AnchorColumn,
    /// Its value.
    pub date: NaiveDate,
    /// Resume after this key (pages are ordered by account, then id).
    pub after: Option<RecordKey>,
    /// Page size.
    pub limit: u32,
}

/// Records that may fall due over a long period (what `simulate` reads): of one kind, in one of
/// some statuses, with their due date or their txn date in a set of dates.
#[derive(Debug, Clone)]
pub struct DueScan {
    /// The kind of record.
    pub kind: RecordKind,
    /// The statuses.
    pub statuses: Vec<&'static str>,
    /// Due dates.
    pub due_dates: Vec<NaiveDate>,
    /// Invoice, bill or payment dates.
    pub txn_dates: Vec<NaiveDate>,
    /// Resume after this position (the last record of the previous page's).
    pub after: Option<ScanPosition>,
    /// Page size.
    pub limit: u32,
}

/// Where a [`DueScan`] stands: opaque, each backend reads in its own order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPosition(String, String);

/// A workflow step decided for a record: sent, with the intents it delivers, or skipped, with
/// why. The ledger holds each (workflow, record, step) once: writing one again adds nothing.
#[derive(Debug, Clone)]
pub struct NewFiring {
    /// Its idempotency key (workflow, record, step, nominal local date).
    pub key: String,
    /// The workflow.
    pub workflow: WorkflowKind,
    /// The record.
    pub record: RecordKey,
    /// The step (`stage-2`, `repeat-1`).
    pub step: String,
    /// Its nominal local date.
    pub nominal: NaiveDate,
    /// When it fell due, moved into the send window.
    pub due_at: DateTime<Utc>,
    /// What was decided.
    pub decision: FiringDecision,
}

/// What was decided for a workflow step.
#[derive(Debug, Clone)]
pub enum FiringDecision {
    /// Sent: its intents go to the outbox.
    Sent {
        /// Not worth delivering after this (the next step's time, at most 48 hours on).
        expires_at: Option<DateTime<Utc>>,
        /// One per action of the stage.
        intents: Vec<NewIntent>,
    },
    /// Skipped: the audit row says why.
    Skipped {
        /// Why (no longer qualifies, missed while the engine was down, …).
        reason: String,
    },
}

/// A decided firing, as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredFiring {
    /// Its idempotency key.
    pub key: String,
    /// The workflow.
    pub workflow: WorkflowKind,
    /// The record.
    pub record: RecordKey,
    /// The step.
    pub step: String,
    /// Its nominal local date.
    pub nominal: NaiveDate,
    /// When it fell due.
    pub due_at: DateTime<Utc>,
    /// Sent: when its deliveries expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// Sent, or skipped.
    pub sent: bool,
    /// Skipped: why.
    pub reason: Option<String>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

/// Which decided firings to list.
#[derive(Debug, Clone, Default)]
pub struct FiringQuery {
    /// Only this workflow's.
    pub workflow: Option<WorkflowKind>,
    /// Only this record's.
    pub record: Option<RecordKey>,
    /// At most this many.
    pub limit: u32,
}

/// How long a rule's delivery is worth making: 48 hours after it was decided (DOMAIN.md §4). A
/// workflow step's expires sooner, at the next step.
pub const RULE_DELIVERY_EXPIRY: chrono::Duration = chrono::Duration::hours(48);

/// A delivery a node has leased: the intent to deliver and where the delivery stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The intent's sequence number (the delivery's id).
    pub seq: i64,
    /// Its idempotency key (the email's Message-ID, the webhook's id).
    pub key: String,
    /// The intent.
    pub intent: Intent,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not delivered after this.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One attempt at a delivery, as the attempt log keeps it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// What it gave.
    pub outcome: invoiceflow_rules::retry::Attempted,
}

/// An attempt made, with the delivery's next state.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The delivery.
    pub seq: i64,
    /// The attempt.
    pub attempt: Attempt,
    /// What becomes of the delivery.
    pub next: invoiceflow_rules::retry::Next,
}

/// A delivery as `outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDelivery {
    /// The intent's sequence number.
    pub seq: i64,
    /// Its idempotency key.
    pub key: String,
    /// `email`, `slack`, …
    pub channel: String,
    /// The named destination, when it has one.
    pub destination: Option<String>,
    /// `pending`, `delivered`, `dead`, `expired` or `cancelled`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Pending: not tried before this.
    pub next_at: DateTime<Utc>,
    /// Not delivered after this.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it is dead, expired or cancelled; the last error while pending.
    pub reason: Option<String>,
    /// The node holding it now, if any.
    pub leased_by: Option<String>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// The intent.
    pub intent: Intent,
}

/// Which deliveries to list: those of the intents `of` selects, optionally in one status.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only in this status.
    pub status: Option<String>,
    /// Of these intents (rule — a rule's id or `workflow:payment_due` —, record, after, limit).
    pub of: IntentQuery,
}

/// The state of the work, for `/metrics`: the outbox by channel and status, what waits, what
/// failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Deliveries by `(channel, status)`, in that order.
    pub deliveries: Vec<(String, String, u64)>,
    /// Pending deliveries (due or waiting for a retry, held by a node or not).
    pub pending: u64,
    /// When the oldest due delivery that no node holds was due: how far dispatch lags.
    pub oldest_due: Option<DateTime<Utc>>,
    /// Failed rule evaluations stored.
    pub evaluation_failures: u64,
    /// Change events the change-triggered rules have not been offered yet.
    pub unevaluated_changes: u64,
}

/// A task to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTask {
    /// The delivery that makes it (`None` by hand): a delivery makes one task, however often tried.
    pub key: Option<String>,
    /// What to do.
    pub title: String,
    /// Details.
    pub notes: Option<String>,
    /// Who should do it.
    pub assignee: Option<String>,
    /// When it is due.
    pub due: Option<NaiveDate>,
    /// Approve or reject rather than done.
    pub approval: bool,
    /// The record it is about.
    pub record: Option<RecordKey>,
    /// `rule:ID`, `workflow:NAME` or `manual`.
    pub source: String,
}

/// A task as the task manager keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredTask {
    /// Its number.
    pub id: i64,
    /// What it was made with.
    #[serde(flatten)]
    pub task: NewTask,
    /// `open`, `done`, `approved` or `rejected`.
    pub status: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// Why it was rejected, or a note on closing.
    pub comment: Option<String>,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Only in this status.
    pub status: Option<String>,
    /// Only assigned to this.
    pub assignee: Option<String>,
    /// Only about this record.
    pub record: Option<RecordKey>,
    /// Only this task.
    pub id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// How an open task is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskClose {
    /// A plain task, done.
    Done,
    /// An approval task, approved.
    Approved,
    /// An approval task, rejected.
    Rejected,
}

impl TaskClose {
    /// The status it leaves.
    pub fn status(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

/// A scheduled rule's slot that was not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotSkip {
    /// The rule.
    pub rule: String,
    /// The slot.
    pub slot: DateTime<Utc>,
    /// The companies' zone it was for (`None`: every company).
    pub zone: Option<String>,
    /// Why.
    pub reason: String,
}

/// Whether a link or unlink changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// It was done.
    Done,
    /// It was already so.
    AlreadySo,
}

/// An open write transaction for a stream of batches (an import): each batch is applied as
/// [`Store::apply`] would, but nothing is committed until [`Writer::commit`]. Dropping a writer
/// rolls its batches back.
pub trait Writer: Send {
    /// Applies one batch inside the transaction.
    fn apply(
        &mut self,
        batch: Vec<Incoming>,
        at: &Moment<'_>,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    /// Applies several batches inside the transaction, one after the other, as one plan (the
    /// requests of a group commit); returns each batch's outcome.
    fn apply_groups(
        &mut self,
        groups: Vec<Vec<Incoming>>,
        at: &Moment<'_>,
    ) -> impl Future<Output = Result<Vec<Outcome>, StoreError>> + Send;

    /// Commits every batch applied so far.
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The store interface. Every write of records and their events happens in one transaction.
pub trait Store: Send + Sync {
    /// The write transaction of [`Store::writer`].
    type Writer: Writer;

    /// Opens a write transaction for several batches. A bulk import commits every few batches
    /// rather than every batch: a commit writes each page it dirtied to the journal, and a batch
    /// of randomly ordered keys (links by deal) dirties as many pages as it has records.
    fn writer(&self) -> impl Future<Output = Result<Self::Writer, StoreError>> + Send;

    /// Applies the schema migrations in `migrations/<backend>/`, and restores what an interrupted
    /// [`Store::begin_bulk`] set aside.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Readies the store for writing about `records` records in one go (a large import), and says
    /// whether [`Store::end_bulk`] must be called after it. SQLite sets the secondary indexes of
    /// `records` aside when the import is large and at least as large as what is stored, and
    /// rebuilds them at the end: one sort instead of a random insert per record and index.
    /// Queries stay correct meanwhile, only slower.
    fn begin_bulk(&self, records: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends what [`Store::begin_bulk`] began (rebuilds the indexes). Also done by `migrate`, so a
    /// bulk import that was killed is repaired when the store is next opened.
    fn end_bulk(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies a batch of incoming changes: new and changed records are written with their history
    /// events; identical ones change nothing; ones older than the stored version are counted stale.
    fn apply(&self, batch: Vec<Incoming>, at: &Moment<'_>) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    /// Re-derives time-dependent statuses (sent → overdue when the due date passes) for "today" and
    /// records each change.
    fn refresh(&self, at: &Moment<'_>) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    /// A page of invoices.
    fn invoices(&self, query: &InvoiceQuery) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// Records of `kind` with this id, in any company (or in `account`).
    fn find(
        &self,
        kind: RecordKind,
        id: &RecordId,
        account: Option<&AccountName>,
    ) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// The holders each of these invoices is linked to, as (invoice, holder) pairs.
    fn holders_of(
        &self,
        keys: &[RecordKey],
    ) -> impl Future<Output = Result<Vec<(RecordKey, Holder)>, StoreError>> + Send;

    /// Links an invoice to a holder by hand (the seed's "add an existing invoice"), recording the event.
    fn link(
        &self,
        holder: &Holder,
        key: &RecordKey,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<LinkChange, StoreError>> + Send;

    /// Removes a link, whether it came from the record's field or from `link`, recording the event.
    fn unlink(
        &self,
        holder: &Holder,
        key: &RecordKey,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<LinkChange, StoreError>> + Send;

    /// History events, oldest first.
    fn events(&self, query: &EventQuery) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// The stored records with these keys (those that exist).
    fn records(&self, keys: &[RecordKey]) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// Where cursor `name` stands (0 before its first move).
    fn cursor(&self, name: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The newest event's sequence number (0 when there is none).
    fn last_event_seq(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Stores what evaluating the events up to `through` decided, and moves cursor `name` there,
    /// in one transaction: a crash loses both or neither. Intents whose key is already stored are
    /// skipped. Returns how many intents were new.
    fn save_evaluations(
        &self,
        name: &str,
        through: i64,
        intents: &[NewIntent],
        failures: &[RuleFailure],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A page of records of `kind` after `after`, in key order (account, then id).
    fn records_of_kind(
        &self,
        kind: RecordKind,
        after: Option<&RecordKey>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// Which of `keys` scheduled rule `rule` has enrolled (they matched at its last slot).
    fn enrolled(
        &self,
        rule: &str,
        keys: &[RecordKey],
    ) -> impl Future<Output = Result<Vec<RecordKey>, StoreError>> + Send;

    /// Stores what a schedule slot of `rule` decided for a page of records, in one transaction:
    /// its intents and failures, the records that start matching (`enroll`) and those that
    /// stopped (`leave`). Returns how many intents were new.
    fn save_slot(
        &self,
        rule: &str,
        enroll: &[RecordKey],
        leave: &[RecordKey],
        intents: &[NewIntent],
        failures: &[RuleFailure],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Stored intents, oldest first.
    fn intents(&self, query: &IntentQuery) -> impl Future<Output = Result<Vec<StoredIntent>, StoreError>> + Send;

    /// Stored failures, oldest first, filtered like [`Store::intents`].
    fn failures(&self, query: &IntentQuery) -> impl Future<Output = Result<Vec<StoredFailure>, StoreError>> + Send;

    /// Upkeep a running engine does beside its work: on SQLite, a passive WAL checkpoint, so
    /// that commits do not stop to make one; nothing on PostgreSQL. True when the database is
    /// being written: upkeep is due again soon.
    fn maintain(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Answers when the database does (a trivial query).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The state of the work at `now`, for metrics.
    fn gauges(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Gauges, StoreError>> + Send;

    /// Forgets cursor `name` (it stands at 0 again).
    fn reset_cursor(&self, name: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of the records a reminder workflow may act on (see [`AnchorQuery`]).
    fn anchored(&self, query: &AnchorQuery) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// A page of the records that may fall due over a long period (see [`DueScan`]), not yet
    /// decoded.
    fn scan_due(&self, query: &DueScan) -> impl Future<Output = Result<Vec<Encoded>, StoreError>> + Send;

    /// The steps of `workflow` already sent for each of `keys` (a skipped step may be decided
    /// again on another date).
    fn decided(
        &self,
        workflow: WorkflowKind,
        keys: &[RecordKey],
    ) -> impl Future<Output = Result<Vec<(RecordKey, String)>, StoreError>> + Send;

    /// Writes decided firings to the ledger, with the intents of those sent, and moves cursor
    /// `cursor` (when given) forward, in one transaction. A firing whose key is already in the
    /// ledger, or a sent one whose workflow, record and step were already sent, is not written,
    /// nor are its intents. Returns how many firings were written.
    fn save_firings(
        &self,
        cursor: Option<(&str, i64)>,
        firings: &[NewFiring],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Decided firings, in the order they were decided.
    fn firings(&self, query: &FiringQuery) -> impl Future<Output = Result<Vec<StoredFiring>, StoreError>> + Send;

    /// Leases to node `node`, until `now + lease`, at most `limit` pending deliveries due at `now`
    /// (first expiring those past their expiry). A delivery another node leased is left to it
    /// until its lease runs out; then any node may take it over.
    fn claim(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Claimed>, StoreError>> + Send;

    /// Records attempt `attempt` of delivery `seq` by node `node`, and moves the delivery to
    /// `next` — in one transaction. When the lease was taken over meanwhile, the attempt is
    /// recorded and the delivery left to its new holder; returns whether it was moved.
    fn finish(
        &self,
        seq: i64,
        node: &str,
        attempt: &Attempt,
        next: &invoiceflow_rules::retry::Next,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// [`Store::finish`] for attempts at distinct deliveries of node `node` (a dispatch round's),
    /// in one transaction; returns, for each, whether its delivery was moved.
    fn finish_all(
        &self,
        node: &str,
        finished: &[Finished],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Deliveries, oldest first.
    fn deliveries(&self, query: &DeliveryQuery)
    -> impl Future<Output = Result<Vec<StoredDelivery>, StoreError>> + Send;

    /// Puts delivery `seq` back to pending, due at `now` (unless delivered, or being tried right
    /// now); returns whether it was.
    fn retry_delivery(&self, seq: i64, now: DateTime<Utc>) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records scheduled-rule slots that were not run, with why.
    fn save_slot_skips(
        &self,
        skips: &[SlotSkip],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Skipped slots, of `rule` or all, oldest first.
    fn slot_skips(
        &self,
        rule: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SlotSkip>, StoreError>> + Send;

    /// Makes a task, once per key: returns its number and whether it is new.
    fn create_task(
        &self,
        task: &NewTask,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(i64, bool), StoreError>> + Send;

    /// Tasks, oldest first.
    fn tasks(&self, query: &TaskQuery) -> impl Future<Output = Result<Vec<StoredTask>, StoreError>> + Send;

    /// Closes open task `id` as `how` (done for a plain task; approved or rejected for an approval
    /// task) by `by`; returns whether it was open and of that kind.
    fn close_task(
        &self,
        id: i64,
        how: TaskClose,
        by: &str,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Cancels pending delivery `seq` for `reason`; returns whether it was pending.
    fn cancel_delivery(
        &self,
        seq: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Puts delivery `seq`, leased by `node`, off until `until` without counting an attempt (a
    /// peer's pace: Slack's one message a second), releasing the lease; false when the lease was
    /// lost.
    fn defer(
        &self,
        seq: i64,
        node: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Releases the pending deliveries node `node` holds (it stops before finishing them), for any
    /// node to claim at once; returns how many.
    fn release(&self, node: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Disables destination `name` for `reason` (kept when it is already disabled); returns
    /// whether it was enabled until now.
    fn disable_destination(
        &self,
        name: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Enables destination `name` again; returns whether it was disabled.
    fn enable_destination(&self, name: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The disabled destinations, by name.
    fn disabled_destinations(&self) -> impl Future<Output = Result<Vec<DisabledDestination>, StoreError>> + Send;
}

/// A destination a peer's answer disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisabledDestination {
    /// Its name in the configuration.
    pub name: String,
    /// The answer that disabled it.
    pub reason: String,
    /// When.
    pub disabled_at: DateTime<Utc>,
}

/// The configured backend, chosen by the database URL.
pub enum AnyStore {
    /// `sqlite://…`
    Sqlite(SqliteStore),
    /// `postgres://…`
    Postgres(PgStore),
}

impl AnyStore {
    /// Opens the store the URL names, creating a SQLite file on first use, and migrates it.
    ///
    /// # Errors
    /// [`StoreError`] when the URL is unsupported, the database unreachable or a migration fails.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            Self::Sqlite(SqliteStore::connect(url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::Postgres(PgStore::connect(url).await?)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        Ok(store)
    }
}

/// Runs `$body` with `$s` bound to the concrete store.
#[macro_export]
macro_rules! with_store {
    ($any:expr, $s:ident => $body:expr) => {
        match $any {
            $crate::store::AnyStore::Sqlite($s) => $body,
            $crate::store::AnyStore::Postgres($s) => $body,
        }
    };
}
