//! The watcher `invoiceflow run` drives, as two loops side by side: the webhook inbox drained as
//! soon as a webhook queued something (and every few seconds, for retries come due and
//! notifications another node received), and the companies swept on their schedule
//! ([`super::sweeps`]), the inbox's old notifications pruned on the way. Whatever they apply wakes
//! the planner, which evaluates the change rules. QuickBooks' failures and the store's are logged
//! and tried again: watching never stops the engine.

use chrono::Duration;
use tokio::sync::{Notify, watch};

use super::inbox::drain_all;
use super::sweeps::Sweeps;
use super::{Companies, Watch};
use crate::clock::RunningClock;
use crate::store::Store;
use crate::store::quickbooks::QuickBooksStore;

/// How often the inbox is looked at without a webhook.
const POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long done notifications are kept to recognise a duplicate.
const KEEP_DONE: Duration = Duration::days(2);

/// How often done notifications are pruned.
const PRUNE_EVERY: Duration = Duration::hours(1);

/// What watching works with.
#[derive(Debug)]
pub struct Watcher<'a, S> {
    /// Store, HTTP client, tokens and node.
    pub watch: Watch<'a, S>,
    /// The companies watched.
    pub companies: &'a Companies,
    /// The engine's clock.
    pub clock: &'a RunningClock,
    /// Notified when a webhook queued notifications.
    pub inbox: &'a Notify,
    /// Notified when changes were applied.
    pub changed: &'a Notify,
}

impl<S: Store + QuickBooksStore> Watcher<'_, S> {
    /// Watches until `stopped` turns true (at once without a company to watch).
    pub async fn run(&self, stopped: watch::Receiver<bool>) {
        if self.companies.is_empty() {
            return;
        }
        tokio::join!(self.drain_loop(stopped.clone()), self.sweep_loop(stopped));
    }

    async fn drain_loop(&self, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            let clock = self.clock.clock();
            match drain_all(&self.watch, self.companies, &clock).await {
                Ok(round) => {
                    if round.applied.events > 0 {
                        self.changed.notify_one();
                    }
                    if round.leased > 0 {
                        tracing::info!(?round, "QuickBooks notifications drained");
                    }
                }
                Err(e) => tracing::error!(error = %e, "draining the QuickBooks inbox failed; tried again shortly"),
            }
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                () = self.inbox.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn sweep_loop(&self, mut stopped: watch::Receiver<bool>) {
        let start = self.clock.clock().now.instant();
        let mut sweeps = Sweeps::new(self.companies, start);
        let mut next_prune = start;
        while !*stopped.borrow() {
            let clock = self.clock.clock();
            let now = clock.now.instant();
            let mut pause = POLL;
            match sweeps.run_due(&self.watch, self.companies, &clock).await {
                Ok(done) => {
                    for d in done {
                        match d.result {
                            Ok(swept) => {
                                if swept.applied.events > 0 {
                                    self.changed.notify_one();
                                }
                                tracing::info!(company = %d.company, kind = ?d.kind, ?swept, "QuickBooks swept");
                            }
                            Err(error) => {
                                tracing::warn!(company = %d.company, kind = ?d.kind, %error, "QuickBooks sweep failed")
                            }
                        }
                    }
                    if let Some(next) = sweeps.next_due() {
                        let wait = (next - self.clock.clock().now.instant()).max(Duration::zero());
                        pause = wait.to_std().unwrap_or(POLL);
                    }
                }
                Err(e) => tracing::error!(error = %e, "QuickBooks sweeps failed; tried again shortly"),
            }
            if now >= next_prune {
                match self.watch.store.prune_inbox(now - KEEP_DONE).await {
                    Ok(pruned) if pruned > 0 => tracing::debug!(pruned, "old QuickBooks notifications pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning the QuickBooks inbox failed"),
                }
                next_prune = now + PRUNE_EVERY;
            }
            let prune_in = (next_prune - now).to_std().unwrap_or(POLL);
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                () = tokio::time::sleep(pause.min(prune_in)) => {}
            }
        }
    }
}
