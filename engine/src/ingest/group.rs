//! Group commit for records posted over HTTP: the bodies of concurrent requests are applied in one
//! transaction, as one plan, and each request is answered with its own outcome once that
//! transaction is committed. A request answered has been written; a failed group fails every
//! request in it, and their clients post again (what was applied comes back unchanged).

use chrono::{DateTime, Utc};
use invoiceflow_rules::parse::Incoming;
use tokio::sync::{mpsc, oneshot};

use crate::config::Companies;
use crate::store::{Moment, Outcome, Store, Writer as _};

/// Requests applied together at most.
const GROUP: usize = 256;

/// Requests waiting for the writer at most; more wait to be queued.
const QUEUE: usize = 1024;

/// One request's records, and where its outcome goes.
struct Job {
    records: Vec<Incoming>,
    now: DateTime<Utc>,
    reply: oneshot::Sender<Result<Outcome, String>>,
}

/// The handle requests apply their records through.
#[derive(Debug, Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer task over `store`; "today" per company from `companies`.
    pub fn spawn<S: Store + Clone + 'static>(store: S, companies: Companies) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match queue.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                // One moment for the group: the latest request's.
                let now = group.iter().map(|j| j.now).max().unwrap_or_else(Utc::now);
                let clock = crate::clock::Clock { now: crate::clock::Now::At(now), companies: companies.clone() };
                let batches = group.iter_mut().map(|j| std::mem::take(&mut j.records)).collect();
                let result = async {
                    let mut writer = store.writer().await?;
                    let outcomes = writer.apply_groups(batches, &Moment { now, calendar: &clock }).await?;
                    writer.commit().await?;
                    Ok::<_, crate::store::StoreError>(outcomes)
                }
                .await;
                match result {
                    Ok(outcomes) => {
                        for (job, outcome) in group.into_iter().zip(outcomes) {
                            let _ = job.reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, requests = group.len(), "a group of posted records failed");
                        for job in group {
                            let _ = job.reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Self { jobs }
    }

    /// Applies `records` received at `now` with the other requests of its group; returns once
    /// they are committed.
    ///
    /// # Errors
    /// The store's error, as text, when the group's transaction failed.
    pub async fn apply(&self, records: Vec<Incoming>, now: DateTime<Utc>) -> Result<Outcome, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { records, now, reply }).await.map_err(|_| "the writer stopped".to_owned())?;
        answer.await.map_err(|_| "the writer stopped".to_owned())?
    }
}
