//! Group commit for records posted over HTTP: the bodies of concurrent requests are applied in one
//! transaction, as one plan, and each request is answered with its own outcome once that
//! transaction is committed. A request answered has been written; a failed group fails every
//! request in it, and their clients post again (what was applied comes back unchanged).

use chrono::{DateTime, Utc};
use invoiceflow_rules::parse::Incoming;

use crate::config::Companies;
use crate::group::Group;
use crate::store::{Moment, Outcome, Store, Writer as _};

/// Requests applied together at most.
const GROUP: usize = 256;

/// The handle requests apply their records through.
#[derive(Debug, Clone)]
pub struct GroupWriter {
    group: Group<(Vec<Incoming>, DateTime<Utc>), Outcome>,
}

impl GroupWriter {
    /// Starts the writer task over `store`; "today" per company from `companies`.
    pub fn spawn<S: Store + Clone + 'static>(store: S, companies: Companies) -> Self {
        let group = Group::spawn(GROUP, move |jobs: Vec<(Vec<Incoming>, DateTime<Utc>)>| {
            let (store, companies) = (store.clone(), companies.clone());
            async move {
                // One moment for the group: the latest request's.
                let now = jobs.iter().map(|j| j.1).max().unwrap_or_else(Utc::now);
                let clock = crate::clock::Clock { now: crate::clock::Now::At(now), companies };
                let batches = jobs.into_iter().map(|j| j.0).collect();
                let mut writer = store.writer().await.map_err(|e| e.to_string())?;
                let outcomes =
                    writer.apply_groups(batches, &Moment { now, calendar: &clock }).await.map_err(|e| e.to_string())?;
                writer.commit().await.map_err(|e| e.to_string())?;
                Ok(outcomes)
            }
        });
        Self { group }
    }

    /// Applies `records` received at `now` with the other requests of its group; returns once
    /// they are committed.
    ///
    /// # Errors
    /// The store's error, as text, when the group's transaction failed.
    pub async fn apply(&self, records: Vec<Incoming>, now: DateTime<Utc>) -> Result<Outcome, String> {
        self.group.run((records, now)).await
    }
}
