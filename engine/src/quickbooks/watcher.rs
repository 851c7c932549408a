//! The watcher `invoiceflow run` drives, as two loops side by side: the webhook inbox drained as
//! soon as a webhook queued something (and every few seconds, for retries come due and
//! notifications another node received), and the companies swept on their schedule
//! ([`super::sweeps`]), the inbox's old notifications pruned on the way. Whatever they apply wakes
//! the planner, which evaluates the change rules. A company QuickBooks disconnected (its refresh
//! token refused) raises an alert through `[alerts] destination`, once per disconnection, whichever
//! node or command saw it. QuickBooks' failures and the store's are logged and tried again:
//! watching never stops the engine.

use std::collections::HashSet;

use chrono::Duration;
use invoiceflow_rules::AccountName;
use tokio::sync::{Notify, watch};

use super::inbox::drain_all;
use super::sweeps::Sweeps;
use super::{Companies, Watch, WatchError};
use crate::clock::RunningClock;
use crate::dispatch::AlertRoute;
use crate::store::quickbooks::{ConnectionState, QuickBooksStore};
use crate::store::{Store, StoreError};

/// The cursor the watcher's alerts are saved with (a marker only: alerts are kept once by key).
const ALERT_CURSOR: &str = "quickbooks-alerts";

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
    /// Where alerts go (none: logged only).
    pub alerts: Option<&'a AlertRoute>,
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
        let mut alerted = HashSet::new();
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
            if let Err(e) = self.alert_disconnected(&mut alerted).await {
                tracing::warn!(error = %e, "cannot raise the QuickBooks alerts; tried again shortly");
            }
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                () = self.inbox.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Raises an alert for each company that needs reconnecting and was not alerted about yet
    /// (`alerted`: those this node raised; the outbox keeps each alert once across nodes).
    async fn alert_disconnected(&self, alerted: &mut HashSet<(AccountName, i64)>) -> Result<(), StoreError> {
        let Some(route) = self.alerts else { return Ok(()) };
        if self.companies.iter().all(|c| c.fixed_token.is_some()) {
            // Fixed tokens are never refreshed: nothing can be disconnected.
            return Ok(());
        }
        let store = self.watch.store;
        for c in store.connections().await? {
            let watched = self.companies.by_name(&c.company).is_some_and(|w| w.fixed_token.is_none());
            if c.state != ConnectionState::NeedsReconnect
                || !watched
                || alerted.contains(&(c.company.clone(), c.token_version))
            {
                continue;
            }
            let reason = c.reason.as_deref().unwrap_or("QuickBooks refused its tokens");
            let alert = route.disconnected(&c.company, c.token_version, reason);
            let now = self.clock.clock().now.instant();
            store.save_evaluations(ALERT_CURSOR, 0, std::slice::from_ref(&alert), &[], now).await?;
            alerted.insert((c.company, c.token_version));
        }
        Ok(())
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
                                tracing::warn!(company = %d.company, kind = ?d.kind, %error, "QuickBooks sweep failed");
                                if matches!(error, WatchError::NeedsReconnect { .. }) {
                                    // The drain loop raises the alert: at once, not at its next poll.
                                    self.inbox.notify_one();
                                }
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
