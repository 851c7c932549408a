//! The running engine's work, one tick at a time: the time-dependent statuses of today, the
//! change-triggered rules over what changed, the scheduled rules' slots, the reminder workflows'
//! steps, and the outbox delivered — every piece from state in the database, so that a tick after
//! a restart, or on another node, picks up exactly where the last one stopped.

use std::collections::BTreeMap;

use invoiceflow_connectors::email::{Sender, Smtp, SmtpSettings};
use invoiceflow_connectors::http::HttpError;
use invoiceflow_connectors::quickbooks::{self, QuickBooks};
use invoiceflow_connectors::sink::FileSink;
use invoiceflow_connectors::slack::Slack;
use invoiceflow_connectors::webhook::{Secret, Webhook};
use invoiceflow_connectors::{Attempted, Attempting, Connector, Delivery};
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::{Action, CompiledRule, RuleHost};
use invoiceflow_rules::workflow::config::{WorkflowConfig, WorkflowKind};

use crate::clock::Clock;
use crate::config::{Config, Destination, EmailTransport, Target};
use crate::dispatch::{Dispatcher, Round};
use crate::store::{Store, StoreError};
use crate::tasks::TaskManager;
use crate::{evaluate, reminders, schedule};

/// Why the engine cannot start with this configuration: each names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    /// A destination's URL is refused.
    #[error("destinations.{name}: {source}")]
    Url {
        /// The destination.
        name: String,
        /// Why.
        #[source]
        source: HttpError,
    },
    /// A secret cannot be read, or is not of the expected form.
    #[error("{key}: {reason}")]
    Secret {
        /// The configuration key naming the secret's source.
        key: String,
        /// Why (never the secret).
        reason: String,
    },
    /// The SMTP transport cannot be set up.
    #[error("email: {0}")]
    Smtp(#[from] invoiceflow_connectors::email::SmtpError),
}

/// Where each delivery goes: Slack and webhook destinations by name (over HTTP, or into local
/// files), email through SMTP or into a file, send-invoice through the QuickBooks API. Tasks go to
/// the store's task manager ([`Connectors`]).
pub struct Routes {
    destinations: BTreeMap<String, Box<dyn Connector>>,
    email: Option<Box<dyn Connector>>,
    quickbooks: QuickBooks,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("destinations", &self.destinations.keys()).finish_non_exhaustive()
    }
}

impl Routes {
    /// The routes of `config`, reading the secrets it names (environment, files).
    ///
    /// # Errors
    /// [`RoutesError`] naming the destination or key at fault.
    pub fn new(config: &Config) -> Result<Self, RoutesError> {
        let mut destinations: BTreeMap<String, Box<dyn Connector>> = BTreeMap::new();
        for (name, d) in &config.destinations {
            let url_error = |source| RoutesError::Url { name: name.clone(), source };
            let connector: Box<dyn Connector> = match d {
                Destination::Email { .. } => continue,
                Destination::Slack { target: Target::File(path), .. }
                | Destination::Webhook { target: Target::File(path), .. } => Box::new(FileSink::new(path)),
                Destination::Slack { target: Target::Url { url, allow_private }, per_second } => {
                    Box::new(Slack::paced(name, url, *allow_private, *per_second).map_err(url_error)?)
                }
                Destination::Webhook { target: Target::Url { url, allow_private }, secret } => {
                    let key = format!("destinations.{name}.secret_env");
                    let source = secret.as_ref().ok_or_else(|| RoutesError::Secret {
                        key: key.clone(),
                        reason: "a webhook needs its signing secret".into(),
                    })?;
                    let text = source.read().map_err(|reason| RoutesError::Secret { key: key.clone(), reason })?;
                    let secret = Secret::parse(text.expose())
                        .map_err(|e| RoutesError::Secret { key: key.clone(), reason: e.to_string() })?;
                    Box::new(Webhook::new(url, secret, *allow_private).map_err(url_error)?)
                }
            };
            destinations.insert(name.clone(), connector);
        }
        let email: Option<Box<dyn Connector>> = match &config.email {
            None => None,
            Some(EmailTransport::File(path)) => Some(Box::new(FileSink::new(path))),
            Some(EmailTransport::Smtp(smtp)) => {
                let credentials = match &smtp.credentials {
                    None => None,
                    Some((user, source)) => {
                        let password = source
                            .read()
                            .map_err(|reason| RoutesError::Secret { key: "email.password_env".into(), reason })?;
                        Some((user.clone(), password))
                    }
                };
                let mailbox = |key: &str, text: &str| {
                    text.parse().map_err(|_| RoutesError::Secret {
                        key: format!("email.{key}"),
                        reason: format!("{text:?} is not an email address"),
                    })
                };
                let sender = Sender {
                    from: mailbox("from", &smtp.from)?,
                    reply_to: smtp.reply_to.as_deref().map(|r| mailbox("reply_to", r)).transpose()?,
                };
                let settings = SmtpSettings {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    tls: smtp.tls,
                    credentials,
                    sender,
                    timeout: std::time::Duration::from_secs(smtp.timeout_seconds),
                };
                Some(Box::new(Smtp::new(&settings)?))
            }
        };
        let mut companies = BTreeMap::new();
        // Companies with a fixed access token. `invoiceflow run` sends through the engine's
        // `quickbooks::send::InvoiceSender` instead ([`Engine::quickbooks`]), which also reaches
        // the companies connected by OAuth with their stored tokens.
        for (account, api) in &config.quickbooks_api {
            let Some(source) = &api.access_token else { continue };
            let key = format!("quickbooks.{account}.access_token_env");
            let token = source.read().map_err(|reason| RoutesError::Secret { key: key.clone(), reason })?;
            let company = quickbooks::Company::new(&api.realm_id, &api.base, token).map_err(|e| {
                RoutesError::Secret { key: format!("quickbooks.{account}.api_base"), reason: e.to_string() }
            })?;
            companies.insert(account.clone(), company);
        }
        let quickbooks = QuickBooks::new(companies)
            .map_err(|e| RoutesError::Secret { key: "quickbooks".into(), reason: e.to_string() })?;
        Ok(Self { destinations, email, quickbooks })
    }

    /// The connector an action goes through (tasks aside), or why there is none.
    fn route(&self, action: &Action) -> Result<&dyn Connector, String> {
        match action {
            Action::Slack { destination, .. } | Action::Webhook { destination, .. } => self
                .destinations
                .get(destination)
                .map(AsRef::as_ref)
                .ok_or_else(|| format!("no destination {destination:?} in the configuration")),
            Action::Email { .. } => {
                self.email.as_deref().ok_or_else(|| "no email transport: set [email] in invoiceflow.toml".to_owned())
            }
            Action::SendInvoice { .. } => Ok(&self.quickbooks),
            Action::Task { .. } => Err("tasks go to the task manager".to_owned()),
        }
    }
}

/// Where `config` sends alerts (`[alerts] destination`), if anywhere.
pub fn alert_route(config: &Config) -> Option<crate::dispatch::AlertRoute> {
    use crate::dispatch::AlertRoute;
    let name = config.alerts.as_ref()?;
    Some(match config.destinations.get(name)? {
        Destination::Slack { .. } => AlertRoute::Slack(name.clone()),
        Destination::Webhook { .. } => AlertRoute::Webhook(name.clone()),
        Destination::Email { to } => AlertRoute::Email(to.clone()),
    })
}

/// [`Routes`] with the store's task manager, for one tick.
pub struct Connectors<'a, S> {
    /// The configured routes.
    pub routes: &'a Routes,
    /// The task manager.
    pub tasks: TaskManager<'a, S>,
    /// Sends invoices with the QuickBooks companies' stored tokens (none: only the companies
    /// with a fixed token, through the routes).
    pub quickbooks: Option<&'a (dyn Connector + 'a)>,
}

impl<S: Store> Connector for Connectors<'_, S> {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        match (&d.intent.action, self.quickbooks) {
            (Action::Task { .. }, _) => return self.tasks.deliver(d),
            (Action::SendInvoice { .. }, Some(quickbooks)) => return quickbooks.deliver(d),
            _ => {}
        }
        match self.routes.route(&d.intent.action) {
            Ok(connector) => connector.deliver(d),
            Err(detail) => Box::pin(async move { Attempted::Permanent { detail, disable_destination: false } }),
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
    /// Sends invoices with the QuickBooks companies' stored tokens ([`Connectors::quickbooks`]).
    pub quickbooks: Option<&'a (dyn Connector + 'a)>,
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

    /// Dispatches rounds until the outbox has nothing due at the clock's instant (read anew for
    /// each round, so that leases count from when they are taken), or until `keep_going` says
    /// stop: a round under way is finished, no new one is claimed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn dispatch(
        &self,
        clock: impl Fn() -> Clock,
        mut jitter: impl FnMut() -> f64,
        keep_going: impl Fn() -> bool,
    ) -> Result<Round, StoreError> {
        let mut total = Round::default();
        while keep_going() {
            let clock = clock();
            let connectors = Connectors {
                routes: self.routes,
                tasks: TaskManager { store: self.store, now: clock.now.instant() },
                quickbooks: self.quickbooks,
            };
            let r = self.dispatcher.round(self.store, &connectors, self.workflows, &clock, &mut jitter).await?;
            total += r;
            // Alerts made in this round are delivered in the next.
            if r.claimed < u64::from(self.dispatcher.batch) && r.alerted == 0 {
                break;
            }
        }
        Ok(total)
    }
}
