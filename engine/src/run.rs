//! The running engine's work, one tick at a time: the time-dependent statuses of today, the
//! change-triggered rules over what changed, the scheduled rules' slots, the reminder workflows'
//! steps, and the outbox delivered — every piece from state in the database, so that a tick after
//! a restart, or on another node, picks up exactly where the last one stopped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use invoiceflow_connectors::sink::FileSink;
use invoiceflow_connectors::{Attempted, Connector, Delivery};
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::{Action, CompiledRule, RuleHost};
use invoiceflow_rules::workflow::config::{WorkflowConfig, WorkflowKind};

use crate::clock::Clock;
use crate::config::{Config, Destination};
use crate::dispatch::{Dispatcher, Round};
use crate::store::{Store, StoreError};
use crate::tasks::TaskManager;
use crate::{evaluate, reminders, schedule};

/// Why the engine cannot start with this configuration.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    /// A destination this version cannot deliver to.
    #[error(
        "destination {name}: {url} — HTTP delivery comes with the Slack and webhook connectors; \
         until then write file:PATH to collect what it would post in a local file"
    )]
    NotYet {
        /// The destination.
        name: String,
        /// Its URL.
        url: String,
    },
}

/// Where each delivery goes: tasks to the task manager, Slack and webhook destinations to their
/// local files, email to the `[email] file`.
#[derive(Debug)]
pub struct Routes {
    destinations: BTreeMap<String, FileSink>,
    email: Option<FileSink>,
}

impl Routes {
    /// The routes of `config`.
    ///
    /// # Errors
    /// [`RoutesError`] naming a destination this version cannot deliver to.
    pub fn new(config: &Config) -> Result<Self, RoutesError> {
        let mut destinations = BTreeMap::new();
        for (name, d) in &config.destinations {
            let url = match d {
                Destination::Slack { url } | Destination::Webhook { url } => url,
                Destination::Email { .. } => continue,
            };
            let Some(path) = url.strip_prefix("file:") else {
                return Err(RoutesError::NotYet { name: name.clone(), url: url.clone() });
            };
            destinations.insert(name.clone(), FileSink::new(config.base.join(PathBuf::from(path))));
        }
        Ok(Self { destinations, email: config.email_file.clone().map(FileSink::new) })
    }
}

/// [`Routes`] with the store's task manager, for one tick.
pub struct Connectors<'a, S> {
    routes: &'a Routes,
    tasks: TaskManager<'a, S>,
}

impl<S: Store> Connector for Connectors<'_, S> {
    async fn deliver(&self, d: &Delivery<'_>) -> Attempted {
        let permanent = |detail: String| Attempted::Permanent { detail, disable_destination: false };
        match &d.intent.action {
            Action::Task { .. } => self.tasks.deliver(d).await,
            Action::Slack { destination, .. } | Action::Webhook { destination, .. } => {
                match self.routes.destinations.get(destination) {
                    Some(sink) => sink.deliver(d).await,
                    None => permanent(format!("no destination {destination:?} in the configuration")),
                }
            }
            Action::Email { .. } => match &self.routes.email {
                Some(sink) => sink.deliver(d).await,
                None => permanent("no email transport: set [email] in invoiceflow.toml".into()),
            },
            Action::SendInvoice { .. } => {
                permanent("QuickBooks send-invoice needs a connected QuickBooks company (coming next)".into())
            }
        }
    }
}

/// What the engine runs with.
pub struct Engine<'a, S> {
    /// The store.
    pub store: &'a S,
    /// The rule host and the rules.
    pub rules: Option<(&'a RuleHost, &'a [CompiledRule])>,
    /// The workflows' settings.
    pub workflows: &'a BTreeMap<WorkflowKind, WorkflowConfig>,
    /// How rule text prints.
    pub locale: Locale,
    /// Where deliveries go.
    pub routes: &'a Routes,
    /// How this node dispatches.
    pub dispatcher: Dispatcher,
}

/// What a tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Status changes time made today.
    pub refreshed: u64,
    /// Actions decided by rules (changes and slots).
    pub decided: u64,
    /// Workflow steps sent to the outbox.
    pub steps: u64,
    /// What the outbox did.
    pub dispatched: Round,
}

impl<S: Store> Engine<'_, S> {
    /// Plans what is due at the clock's instant: statuses, changed records, slots, steps.
    ///
    /// # Errors
    /// [`StoreError`]; what was saved stays, and the next tick goes on from there.
    pub async fn plan(&self, clock: &Clock) -> Result<Tick, StoreError> {
        let mut tick = Tick { refreshed: self.store.refresh(&clock.moment()).await?.events, ..Tick::default() };
        if let Some((host, rules)) = self.rules {
            tick.decided += evaluate::changes(self.store, host, rules, clock, self.locale).await?.intents;
            tick.decided += schedule::pass(self.store, host, rules, clock, self.locale).await?.evaluated.intents;
        }
        tick.steps = reminders::pass(self.store, self.workflows, clock).await?.sent;
        Ok(tick)
    }

    /// Dispatches rounds until the outbox has nothing due, each round at the instant `clock`
    /// gives as it starts. (Read once for all the rounds, the instant would grow stale: a node's
    /// leases would then run out early, while it still works, and another node would send the
    /// same deliveries.)
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn dispatch(
        &self,
        clock: impl Fn() -> Clock,
        mut jitter: impl FnMut() -> f64,
    ) -> Result<Round, StoreError> {
        let mut total = Round::default();
        loop {
            let clock = clock();
            let connectors =
                Connectors { routes: self.routes, tasks: TaskManager { store: self.store, now: clock.now.instant() } };
            let r = self.dispatcher.round(self.store, &connectors, self.workflows, &clock, &mut jitter).await?;
            total += r;
            if r.claimed < u64::from(self.dispatcher.batch) {
                return Ok(total);
            }
        }
    }
}
