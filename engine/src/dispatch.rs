//! Turning the outbox into deliveries. Each round leases a batch of due deliveries to this node,
//! re-checks each workflow reminder's record (paid in between ⇒ cancelled, with the reason), makes
//! one attempt through the connector, and records it with the delivery's next state — delivered,
//! retried later per the channel's schedule, dead, or expired. A node that dies mid-round leaves
//! its leases to run out; another node then takes the deliveries over, and the connector's
//! idempotency key (Message-ID, `webhook-id`) lets the receiver recognise a re-sent attempt.

use std::collections::BTreeMap;

use chrono::Duration;
use invoiceflow_connectors::{Connector, Delivery};
use invoiceflow_rules::retry::{self, Channel, Next};
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::workflow::config::{WorkflowConfig, WorkflowKind};
use invoiceflow_rules::workflow::plan::qualifies;

use crate::clock::Clock;
use crate::store::{Attempt, Claimed, Store, StoreError};

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Deliveries leased.
    pub claimed: u64,
    /// Delivered.
    pub delivered: u64,
    /// To be tried again later.
    pub retrying: u64,
    /// Given up (dead) or past their expiry.
    pub failed: u64,
    /// Cancelled at claim time: the record no longer qualifies.
    pub cancelled: u64,
}

impl std::ops::AddAssign for Round {
    fn add_assign(&mut self, o: Self) {
        self.claimed += o.claimed;
        self.delivered += o.delivered;
        self.retrying += o.retrying;
        self.failed += o.failed;
        self.cancelled += o.cancelled;
    }
}

/// How a node dispatches.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    /// This node's name in leases and attempt rows.
    pub node: String,
    /// How long a lease lasts: a delivery not finished by then may be taken over.
    pub lease: Duration,
    /// Deliveries leased per round.
    pub batch: u32,
}

impl Dispatcher {
    /// One round at the clock's instant. `jitter` draws a number in 0 … 1 per retry.
    ///
    /// # Errors
    /// [`StoreError`]; what was recorded stays, and an unfinished delivery's lease runs out.
    pub async fn round<S: Store, C: Connector>(
        &self,
        store: &S,
        connector: &C,
        workflows: &BTreeMap<WorkflowKind, WorkflowConfig>,
        clock: &Clock,
        mut jitter: impl FnMut() -> f64,
    ) -> Result<Round, StoreError> {
        let now = clock.now.instant();
        let claimed = store.claim(&self.node, now, self.lease, self.batch).await?;
        let mut round = Round { claimed: claimed.len() as u64, ..Round::default() };
        for c in claimed {
            if let Some(reason) = no_longer_due(store, &c, workflows, clock).await? {
                if store.cancel_delivery(c.seq, &reason, now).await? {
                    round.cancelled += 1;
                }
                continue;
            }
            let attempt = c.attempts + 1;
            let outcome = connector.deliver(&Delivery { key: &c.key, intent: &c.intent, attempt }).await;
            // The attempt ends now on the clock given: with an injected clock, time stands still.
            let finished_at = now;
            let channel = Channel::of_action(c.intent.action.kind()).unwrap_or(Channel::Webhook);
            let next = retry::next(channel, attempt, &outcome, finished_at, c.expires_at, jitter());
            match next {
                Next::Delivered => round.delivered += 1,
                Next::RetryAt(_) => round.retrying += 1,
                Next::Dead(_) | Next::Expired(_) => round.failed += 1,
            }
            store.finish(c.seq, &self.node, &Attempt { started_at: now, finished_at, outcome }, &next).await?;
        }
        Ok(round)
    }
}

/// Why a workflow reminder should not go out any more (paid, voided, sent, paused… since it was
/// decided), re-checked against the record as stored now; `None` when it should, and for rules'
/// actions, which said what they meant when the change happened.
async fn no_longer_due<S: Store>(
    store: &S,
    claimed: &Claimed,
    workflows: &BTreeMap<WorkflowKind, WorkflowConfig>,
    clock: &Clock,
) -> Result<Option<String>, StoreError> {
    let Some(kind) = claimed.intent.rule.strip_prefix("workflow:").and_then(WorkflowKind::parse) else {
        return Ok(None);
    };
    let Some(config) = workflows.get(&kind) else { return Ok(None) };
    let key = &claimed.intent.record;
    let Some(stored) = store.records(std::slice::from_ref(key)).await?.into_iter().next() else {
        return Ok(Some("the record is no longer stored".to_owned()));
    };
    let today = clock.today_of(&key.account);
    let subject = subject_of(stored.record, today, stored.status == "deposited");
    Ok(qualifies(kind, config, &subject, today).err().map(|why| format!("no longer due: {why}")))
}
