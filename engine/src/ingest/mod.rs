//! `invoiceflow import` and `POST /v1/records`: streams JSON from files, standard input or a
//! request body into the store.
//!
//! A reader thread splits and parses (CPU work) while the async side writes batches (database
//! work), so the two overlap. Batches of [`BATCH`] records are written in transactions of at most
//! [`BATCHES_PER_COMMIT`] batches or [`COMMIT_EVERY`] of work, whichever comes first: a failure
//! loses only the current transaction, never what was committed before. Rejections are reported
//! with their file and line as they are found.

pub mod group;
pub mod split;

use std::io::BufRead;
use std::path::PathBuf;

use invoiceflow_rules::AccountName;
use invoiceflow_rules::parse::{Incoming, Item, ParseContext, Rejection, parse_value};
use tokio::sync::mpsc;

use crate::config::Companies;
use crate::store::{Moment, Outcome, Store, StoreError, Writer};
use split::{Piece, Splitter};

/// Records per transaction.
pub const BATCH: usize = 2000;

/// Batches per transaction at most.
pub const BATCHES_PER_COMMIT: usize = 25;

/// A transaction is committed once it has been open this long.
pub const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The largest JSON value accepted (a record, or a whole QueryResponse/CDCResponse page).
pub const MAX_VALUE_BYTES: usize = 8 * 1024 * 1024;

/// Bytes of a typical canonical record, for [`estimate_records`].
const TYPICAL_RECORD_BYTES: u64 = 300;

/// About how many records `sources` hold, from their file sizes (standard input counts as none).
pub fn estimate_records(sources: &[Source]) -> u64 {
    sources
        .iter()
        .filter_map(|s| match s {
            Source::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Source::Stdin => None,
            Source::Memory { bytes, .. } => Some(bytes.len() as u64),
        })
        .sum::<u64>()
        / TYPICAL_RECORD_BYTES
}

/// Where records come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// Standard input.
    Stdin,
    /// Bytes already in memory (a request body), parsed on the runtime's blocking pool.
    Memory {
        /// How it is named in messages.
        name: String,
        /// The JSON lines or documents.
        bytes: Vec<u8>,
    },
}

impl Source {
    /// How it is named in messages.
    pub fn name(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Stdin => "<stdin>".to_owned(),
            Self::Memory { name, .. } => name.clone(),
        }
    }
}

/// A refused record, located.
#[derive(Debug, Clone)]
pub struct Located {
    /// The file (or `<stdin>`).
    pub source: String,
    /// The line the JSON value starts on.
    pub line: u64,
    /// What was wrong.
    pub rejection: Rejection,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.rejection)
    }
}

/// The totals of an import.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Store outcome.
    pub outcome: Outcome,
    /// Records refused.
    pub rejected: u64,
    /// Entities of types not watched, by name.
    pub ignored: std::collections::BTreeMap<String, u64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.outcome;
        write!(
            f,
            "imported {}, updated {}, unchanged {}, stale {}, rejected {}",
            o.imported, o.updated, o.unchanged, o.stale, self.rejected
        )?;
        if !self.ignored.is_empty() {
            let names: Vec<String> = self.ignored.iter().map(|(n, c)| format!("{c} {n}")).collect();
            write!(f, ", ignored {} (not watched)", names.join(", "))?;
        }
        Ok(())
    }
}

/// An import failure that stops it (rejected records do not).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source could not be read.
    #[error("cannot read {source_name}: {error}")]
    Read {
        /// The file.
        source_name: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The store failed; batches before this one are kept.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared transaction of a group of posted bodies failed: nothing of this body was kept.
    #[error("the shared write failed: {0}")]
    Group(String),
}

/// Where an import's batches are written.
pub enum WriteTo<'a, S> {
    /// In transactions of its own on the store.
    Store(&'a S),
    /// In the shared transactions of a [`group::GroupWriter`] (request bodies).
    Group(&'a group::GroupWriter),
}

/// What the reader thread sends.
enum Message {
    Batch { records: Vec<Incoming>, bytes_read: u64 },
    Rejected(Located),
    Ignored(String),
    Failed(ImportError),
}

/// Options of one import.
pub struct ImportOptions {
    /// The company of records that name none.
    pub account: AccountName,
    /// The companies' zones and currencies.
    pub companies: Companies,
    /// Progress as bytes read (total size when known).
    pub progress: Option<indicatif::ProgressBar>,
}

fn read_source(
    source: Source,
    opts_account: AccountName,
    companies: Companies,
    now: chrono::DateTime<chrono::Utc>,
    tx: mpsc::Sender<Message>,
) {
    let name = source.name();
    let reader: Box<dyn BufRead> = match source {
        Source::Memory { bytes, .. } => Box::new(std::io::Cursor::new(bytes)),
        Source::Stdin => Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin())),
        Source::File(path) => match std::fs::File::open(&path) {
            Ok(f) => Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
            Err(error) => {
                let _ = tx.blocking_send(Message::Failed(ImportError::Read { source_name: name, error }));
                return;
            }
        },
    };
    let home = |a: &AccountName| companies.get(a).home_currency;
    let ctx = ParseContext { account: &opts_account, home_currency: &home, received_at: now };
    let mut splitter = Splitter::new(reader, MAX_VALUE_BYTES);
    let mut records = Vec::with_capacity(BATCH);
    let reject = |line: u64, field: &str, reason: String| {
        Message::Rejected(Located {
            source: name.clone(),
            line,
            rejection: Rejection { entity: None, field: field.to_owned(), reason },
        })
    };
    loop {
        let piece = match splitter.next_piece() {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(error) => {
                // What was parsed before the failure is still applied.
                let _ = tx.blocking_send(Message::Batch { records, bytes_read: splitter.bytes_read() });
                let _ = tx.blocking_send(Message::Failed(ImportError::Read { source_name: name.clone(), error }));
                return;
            }
        };
        let mut messages = Vec::new();
        match piece {
            Piece::TooLarge { line, size } => messages.push(reject(
                line,
                "(record)",
                format!("JSON value of {size} bytes exceeds the {} MiB limit; skipped", MAX_VALUE_BYTES >> 20),
            )),
            Piece::Incomplete { line, at_end } => messages.push(reject(
                line,
                "(record)",
                if at_end {
                    "JSON value is incomplete at the end of the input (truncated file?)".to_owned()
                } else {
                    "JSON value is incomplete: a new record starts on a later line before it closes".to_owned()
                },
            )),
            Piece::Value { line, bytes } => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Err(e) => messages.push(reject(
                    line + e.line().saturating_sub(1) as u64,
                    "(record)",
                    format!("invalid JSON: {e}"),
                )),
                Ok(value) => {
                    for item in parse_value(value, &ctx) {
                        match item {
                            Item::Record(r) => records.push(r),
                            Item::Rejected(rejection) => {
                                messages.push(Message::Rejected(Located { source: name.clone(), line, rejection }));
                            }
                            Item::Ignored(n) => messages.push(Message::Ignored(n)),
                        }
                    }
                }
            },
        }
        for m in messages {
            if tx.blocking_send(m).is_err() {
                return;
            }
        }
        if records.len() >= BATCH {
            let batch = std::mem::replace(&mut records, Vec::with_capacity(BATCH));
            if tx.blocking_send(Message::Batch { records: batch, bytes_read: splitter.bytes_read() }).is_err() {
                return;
            }
        }
    }
    let _ = tx.blocking_send(Message::Batch { records, bytes_read: splitter.bytes_read() });
}

/// Where the reader runs: a thread of its own for a file or standard input (which may block for
/// long), the runtime's blocking pool for bytes in memory (many small request bodies).
enum ReaderHandle {
    Thread(std::thread::JoinHandle<()>),
    Pool(tokio::task::JoinHandle<()>),
}

/// Imports one source into `store`, reporting each rejection to `on_reject` as it is found.
///
/// # Errors
/// [`ImportError`] when the source cannot be read or the store fails; batches already written stay.
pub async fn import<S: Store>(
    into: WriteTo<'_, S>,
    source: Source,
    opts: &ImportOptions,
    at: &Moment<'_>,
    on_reject: &mut (dyn FnMut(&Located) + Send),
) -> Result<Summary, ImportError> {
    let (tx, mut rx) = mpsc::channel::<Message>(4);
    let account = opts.account.clone();
    let companies = opts.companies.clone();
    let now = at.now;
    let reader = if matches!(source, Source::Memory { .. }) {
        ReaderHandle::Pool(tokio::task::spawn_blocking(move || read_source(source, account, companies, now, tx)))
    } else {
        let thread = std::thread::Builder::new()
            .name("import-reader".into())
            .spawn(move || read_source(source, account, companies, now, tx))
            .map_err(|error| ImportError::Read { source_name: "reader thread".into(), error })?;
        ReaderHandle::Thread(thread)
    };
    let mut summary = Summary::default();
    let mut failure = None;
    let mut open: Option<(S::Writer, std::time::Instant, usize)> = None;
    while let Some(message) = rx.recv().await {
        match message {
            Message::Batch { records, bytes_read } => {
                if !records.is_empty()
                    && let WriteTo::Group(group) = &into
                {
                    summary.outcome += group.apply(records, at.now).await.map_err(ImportError::Group)?;
                } else if !records.is_empty()
                    && let WriteTo::Store(store) = &into
                {
                    let (writer, since, batches) = match open.as_mut() {
                        Some(o) => o,
                        None => open.insert((store.writer().await?, std::time::Instant::now(), 0)),
                    };
                    summary.outcome += writer.apply(records, at).await?;
                    *batches += 1;
                    let due = *batches >= BATCHES_PER_COMMIT || since.elapsed() >= COMMIT_EVERY;
                    if due && let Some((writer, _, _)) = open.take() {
                        writer.commit().await?;
                    }
                }
                if let Some(p) = &opts.progress {
                    p.set_position(bytes_read);
                }
            }
            Message::Rejected(located) => {
                summary.rejected += 1;
                on_reject(&located);
            }
            Message::Ignored(name) => *summary.ignored.entry(name).or_default() += 1,
            Message::Failed(e) => failure = Some(e),
        }
    }
    // The channel is closed: the reader has returned or is returning.
    match reader {
        ReaderHandle::Thread(thread) => {
            let _ = thread.join();
        }
        ReaderHandle::Pool(task) => {
            let _ = task.await;
        }
    }
    if let Some((writer, _, _)) = open.take() {
        writer.commit().await?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
