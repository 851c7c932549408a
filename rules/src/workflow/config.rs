//! The four workflows' settings: every knob of DOMAIN.md §3, with QuickBooks' defaults. Each
//! workflow is off until enabled; `[workflows.NAME]` in `invoiceflow.toml` overrides any knob.

use std::collections::BTreeMap;

use chrono::NaiveTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::time::SendWindow;

/// One of the four built-in workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowKind {
    /// Customers: invoices with a balance, before and after their due date.
    PaymentDue,
    /// Accounts payable: bills with a balance, before and on their due date.
    VendorPayment,
    /// The team: payments waiting in Undeposited Funds.
    BankDeposit,
    /// The team: invoices not yet sent.
    UnsentInvoice,
}

impl WorkflowKind {
    /// The four, in the order QuickBooks lists them.
    pub const ALL: [WorkflowKind; 4] = [Self::PaymentDue, Self::VendorPayment, Self::BankDeposit, Self::UnsentInvoice];

    /// The name used in configuration and output (`payment_due`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentDue => "payment_due",
            Self::VendorPayment => "vendor_payment",
            Self::BankDeposit => "bank_deposit",
            Self::UnsentInvoice => "unsent_invoice",
        }
    }

    /// Parses [`WorkflowKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// QuickBooks' defaults (DOMAIN.md §3), switched off.
    pub fn defaults(self) -> WorkflowConfig {
        let customer = || vec![Channel::CustomerEmail];
        let team_task = || vec![Channel::Task { assignee: None }];
        let (anchor, stages, repeat) = match self {
            Self::PaymentDue => (
                Anchor::DueDate,
                vec![
                    Stage::new(-3, customer()),
                    Stage::new(7, customer()),
                    Stage::new(14, customer()),
                    Stage::new(30, vec![Channel::CustomerEmail, Channel::Task { assignee: None }]),
                ],
                None,
            ),
            Self::VendorPayment => {
                (Anchor::DueDate, vec![Stage::new(-3, team_task()), Stage::new(0, team_task())], None)
            }
            Self::BankDeposit => {
                (Anchor::PaymentDate, vec![Stage::new(2, team_task())], Some(Repeat { every_days: 3, max: 10 }))
            }
            Self::UnsentInvoice => {
                (Anchor::InvoiceDate, vec![Stage::new(1, team_task())], Some(Repeat { every_days: 2, max: 10 }))
            }
        };
        WorkflowConfig {
            enabled: false,
            anchor,
            stages,
            repeat,
            min_balance: BTreeMap::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            send_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            window: SendWindow::default(),
            language: None,
            customer_languages: BTreeMap::new(),
            paused: Vec::new(),
            catch_up: CatchUp::default(),
        }
    }
}

impl std::fmt::Display for WorkflowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The date stages count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The invoice's or bill's `DueDate`.
    DueDate,
    /// The invoice's `TxnDate`.
    InvoiceDate,
    /// The payment's `TxnDate`.
    PaymentDate,
}

/// Where a stage's message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// The customer's billing email (payment due reminder only; never a vendor).
    CustomerEmail,
    /// A named email destination of the team.
    TeamEmail {
        /// `[destinations.NAME]`.
        destination: String,
    },
    /// A Slack destination.
    Slack {
        /// `[destinations.NAME]`.
        destination: String,
    },
    /// A task in the task manager.
    Task {
        /// Who should do it.
        #[serde(default)]
        assignee: Option<String>,
    },
}

/// One step of a workflow: a day offset from the anchor and what to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Days from the anchor date, −90 … +90 (−3 = three days before).
    pub days: i32,
    /// Where it goes.
    pub channels: Vec<Channel>,
    /// Subject template (merge fields `{number}`, `{amount_due}`, …); default: the built-in one.
    #[serde(default)]
    pub subject: Option<String>,
    /// Body template; default: the built-in one.
    #[serde(default)]
    pub body: Option<String>,
}

impl Stage {
    /// A stage `days` from the anchor date, to `channels`, with the built-in templates.
    pub fn new(days: i32, channels: Vec<Channel>) -> Self {
        Self { days, channels, subject: None, body: None }
    }
}

/// Repeat the last stage every N days, at most `max` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// Days between repeats (counted from the last stage's nominal date).
    pub every_days: u32,
    /// Repeats at most.
    pub max: u32,
}

/// What to do with slots missed while the engine was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum CatchUp {
    /// Drop them (an audit row says so).
    Skip,
    /// Send the latest missed one if it is at most `grace_hours` late.
    OnceWithinGrace {
        /// Hours late at most. Default 24.
        #[serde(default = "day_hours")]
        grace_hours: u32,
    },
    /// Send every missed one.
    All,
}

fn day_hours() -> u32 {
    24
}

impl Default for CatchUp {
    /// Once within a 24-hour grace.
    fn default() -> Self {
        Self::OnceWithinGrace { grace_hours: day_hours() }
    }
}

/// The language of the built-in templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

/// No reminders for a customer (or vendor) or a record until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// The customer's (or vendor's) name, or a record id.
    pub who: String,
    /// Paused up to and including this local date (a TOML date, `2026-12-31`, or a string).
    #[serde(deserialize_with = "local_date")]
    pub until: chrono::NaiveDate,
}

/// A date written as a TOML date (`until = 2026-12-31`) or as a string (`"2026-12-31"`).
fn local_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<chrono::NaiveDate, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Toml(toml::value::Datetime),
    }
    let text = match Written::deserialize(d)? {
        Written::Text(t) => t,
        Written::Toml(t) => t.to_string(),
    };
    text.parse().map_err(|_| serde::de::Error::custom(format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// One workflow's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// Off until switched on.
    pub enabled: bool,
    /// What stages count from.
    pub anchor: Anchor,
    /// The stages, in any order.
    pub stages: Vec<Stage>,
    /// Repeats after the last stage.
    pub repeat: Option<Repeat>,
    /// The smallest balance (amount, for a payment) that qualifies, per currency code; equal
    /// qualifies. None: any balance above zero.
    pub min_balance: BTreeMap<String, Decimal>,
    /// Only these customers (vendors for bills), by name; empty: everyone.
    pub include: Vec<String>,
    /// Never these customers (vendors).
    pub exclude: Vec<String>,
    /// The local time a stage is due on its date.
    pub send_time: NaiveTime,
    /// When deliveries may go out.
    pub window: SendWindow,
    /// The language of the built-in templates; `None`: the company's.
    pub language: Option<Language>,
    /// Per customer (vendor) name, a language that wins over the others.
    pub customer_languages: BTreeMap<String, Language>,
    /// Pauses.
    pub paused: Vec<Pause>,
    /// Missed slots.
    pub catch_up: CatchUp,
}

/// `[workflows.NAME]` as written: every key optional, over [`WorkflowKind::defaults`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowOverrides {
    /// Switch it on. Default off.
    pub enabled: Option<bool>,
    /// What stages count from.
    pub anchor: Option<Anchor>,
    /// The stages (replace the default ones).
    pub stages: Option<Vec<Stage>>,
    /// Repeats after the last stage; `{ every_days = 0 }` is refused, `max = 0` turns them off.
    pub repeat: Option<Repeat>,
    /// Minimum balance per currency code (`{ USD = "50.00" }`).
    pub min_balance: Option<BTreeMap<String, Decimal>>,
    /// Only these customers (vendors).
    pub include: Option<Vec<String>>,
    /// Never these customers (vendors).
    pub exclude: Option<Vec<String>>,
    /// Local time of day stages are due. Default 09:00.
    pub send_time: Option<NaiveTime>,
    /// Send window. Default Monday to Friday, 09:00 to 17:00.
    pub window: Option<SendWindow>,
    /// `en` or `fr`. Default: the company's (`[company] language`, `[quickbooks.NAME] language`).
    pub language: Option<Language>,
    /// Per customer (vendor): `{ "Boulangerie Martin" = "fr" }`.
    pub customer_languages: Option<BTreeMap<String, Language>>,
    /// Pauses: `[{ who = "Acme", until = 2026-12-31 }]`.
    pub paused: Option<Vec<Pause>>,
    /// Missed slots: `{ policy = "skip" }`, `{ policy = "once_within_grace", grace_hours = 24 }`,
    /// `{ policy = "all" }`.
    pub catch_up: Option<CatchUp>,
}

impl WorkflowOverrides {
    /// These settings over `kind`'s defaults, validated, templates included.
    ///
    /// # Errors
    /// [`ConfigError`] naming what is wrong.
    pub fn apply(self, kind: WorkflowKind) -> Result<WorkflowConfig, ConfigError> {
        let mut c = kind.defaults();
        c.enabled = self.enabled.unwrap_or(c.enabled);
        c.anchor = self.anchor.unwrap_or(c.anchor);
        c.stages = self.stages.unwrap_or(c.stages);
        if let Some(r) = self.repeat {
            c.repeat = (r.max > 0).then_some(r);
            if r.every_days == 0 {
                return Err(ConfigError::RepeatEvery(0));
            }
        }
        c.min_balance = self.min_balance.unwrap_or(c.min_balance);
        c.include = self.include.unwrap_or(c.include);
        c.exclude = self.exclude.unwrap_or(c.exclude);
        c.send_time = self.send_time.unwrap_or(c.send_time);
        c.window = self.window.unwrap_or(c.window);
        c.language = self.language.or(c.language);
        c.customer_languages = self.customer_languages.unwrap_or(c.customer_languages);
        c.paused = self.paused.unwrap_or(c.paused);
        c.catch_up = self.catch_up.unwrap_or(c.catch_up);
        c.validate(kind)?;
        for (i, stage) in c.stages.iter().enumerate() {
            for (what, text) in [("subject", &stage.subject), ("body", &stage.body)] {
                if let Some(text) = text {
                    super::template::check(text).map_err(|e| ConfigError::Template { index: i + 1, what, error: e })?;
                }
            }
        }
        Ok(c)
    }
}

/// The longest interval between repeats, in days.
pub const MAX_REPEAT_EVERY: u32 = 365;

/// The most repeats after the last stage.
pub const MAX_REPEATS: u32 = 100;

/// Why a workflow's settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A stage offset outside −90 … +90.
    #[error("stage {index}: `days` = {days} is outside -90 … 90")]
    OffsetOutOfRange {
        /// Which stage (from 1).
        index: usize,
        /// Its offset.
        days: i32,
    },
    /// A stage with nowhere to go.
    #[error("stage {index}: no channel")]
    NoChannel {
        /// Which stage (from 1).
        index: usize,
    },
    /// No stage at all.
    #[error("no stage")]
    NoStage,
    /// Two stages on the same day: one stage sends to several channels instead.
    #[error("stages {first} and {second} are both {days} days from the date: give one stage both channels")]
    SameDay {
        /// The first (from 1).
        first: usize,
        /// The second (from 1).
        second: usize,
        /// Their offset.
        days: i32,
    },
    /// A repeat interval outside 1 … 365 days.
    #[error("repeat: `every_days` = {0} is outside 1 … 365")]
    RepeatEvery(u32),
    /// More repeats than anyone sends.
    #[error("repeat: `max` = {0} is above 100")]
    RepeatMax(u32),
    /// Customer email on a workflow that never writes to customers.
    #[error("stage {index}: {kind} never emails the {who}")]
    NotToCustomers {
        /// Which stage (from 1).
        index: usize,
        /// The workflow.
        kind: WorkflowKind,
        /// Customer or vendor.
        who: &'static str,
    },
    /// A currency code that is not ISO 4217.
    #[error("min_balance: {0}")]
    Currency(String),
    /// A template with an unknown merge field.
    #[error("stage {index}: {what}: {error}")]
    Template {
        /// Which stage (from 1).
        index: usize,
        /// `subject` or `body`.
        what: &'static str,
        /// The field.
        error: super::template::UnknownField,
    },
}

impl WorkflowConfig {
    /// The language to write to `party` (a customer or vendor name) of a company whose language
    /// is `company`: the customer's, else the workflow's, else the company's.
    pub fn language_for(&self, party: &str, company: Language) -> Language {
        self.customer_languages
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(party))
            .map(|(_, l)| *l)
            .or(self.language)
            .unwrap_or(company)
    }

    /// Checks what types cannot: offsets, channels, repeats, currencies.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self, kind: WorkflowKind) -> Result<(), ConfigError> {
        if self.stages.is_empty() {
            return Err(ConfigError::NoStage);
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let index = i + 1;
            if !(-90..=90).contains(&stage.days) {
                return Err(ConfigError::OffsetOutOfRange { index, days: stage.days });
            }
            if stage.channels.is_empty() {
                return Err(ConfigError::NoChannel { index });
            }
            if kind != WorkflowKind::PaymentDue && stage.channels.contains(&Channel::CustomerEmail) {
                let who = if kind == WorkflowKind::VendorPayment { "vendor" } else { "customer" };
                return Err(ConfigError::NotToCustomers { index, kind, who });
            }
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if let Some(first) = self.stages[..i].iter().position(|s| s.days == stage.days) {
                return Err(ConfigError::SameDay { first: first + 1, second: i + 1, days: stage.days });
            }
        }
        if let Some(r) = self.repeat {
            if r.every_days == 0 || r.every_days > MAX_REPEAT_EVERY {
                return Err(ConfigError::RepeatEvery(r.every_days));
            }
            if r.max > MAX_REPEATS {
                return Err(ConfigError::RepeatMax(r.max));
            }
        }
        for code in self.min_balance.keys() {
            crate::money::Currency::from_code(code).map_err(|e| ConfigError::Currency(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_takes_a_toml_date_or_a_string() {
        for text in ["who = \"Acme\"\nuntil = 2026-12-31\n", "who = \"Acme\"\nuntil = \"2026-12-31\"\n"] {
            let pause: Pause = toml::from_str(text).unwrap();
            assert_eq!(pause.until, chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(), "{text}");
        }
        let e = toml::from_str::<Pause>("who = \"Acme\"\nuntil = \"31/12/2026\"\n").unwrap_err();
        assert!(e.to_string().contains("is not a date (YYYY-MM-DD)"), "{e}");
    }

    #[test]
    fn stages_on_one_day_and_endless_repeats_are_refused() {
        let mut c = WorkflowKind::PaymentDue.defaults();
        c.stages.push(Stage::new(7, vec![Channel::Task { assignee: None }]));
        assert_eq!(c.validate(WorkflowKind::PaymentDue), Err(ConfigError::SameDay { first: 2, second: 5, days: 7 }));
        let mut c = WorkflowKind::UnsentInvoice.defaults();
        c.repeat = Some(Repeat { every_days: 3_000_000_000, max: 3 });
        assert_eq!(c.validate(WorkflowKind::UnsentInvoice), Err(ConfigError::RepeatEvery(3_000_000_000)));
        c.repeat = Some(Repeat { every_days: 2, max: 101 });
        assert_eq!(c.validate(WorkflowKind::UnsentInvoice), Err(ConfigError::RepeatMax(101)));
        c.repeat = Some(Repeat { every_days: 365, max: 100 });
        assert_eq!(c.validate(WorkflowKind::UnsentInvoice), Ok(()));
    }

    #[test]
    fn the_defaults_are_quickbooks_and_switched_off() {
        let due = WorkflowKind::PaymentDue.defaults();
        assert!(!due.enabled);
        assert_eq!(due.anchor, Anchor::DueDate);
        assert_eq!(due.stages.iter().map(|s| s.days).collect::<Vec<_>>(), [-3, 7, 14, 30]);
        assert!(due.stages[3].channels.contains(&Channel::Task { assignee: None }));
        let deposit = WorkflowKind::BankDeposit.defaults();
        assert_eq!((deposit.anchor, deposit.stages[0].days), (Anchor::PaymentDate, 2));
        assert_eq!(deposit.repeat, Some(Repeat { every_days: 3, max: 10 }));
        assert_eq!(WorkflowKind::UnsentInvoice.defaults().repeat.map(|r| r.every_days), Some(2));
        assert_eq!(WorkflowKind::VendorPayment.defaults().stages.iter().map(|s| s.days).collect::<Vec<_>>(), [-3, 0]);
        for kind in WorkflowKind::ALL {
            assert_eq!(kind.defaults().validate(kind), Ok(()), "{kind}");
            assert_eq!(WorkflowKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn overrides_apply_over_the_defaults() {
        let o: WorkflowOverrides = toml::from_str(
            "enabled = true\nlanguage = \"fr\"\nmin_balance = { USD = \"50.00\" }\n\
             [[stages]]\ndays = 5\nchannels = [{ type = \"customer_email\" }]\nsubject = \"Facture {number}\"\n",
        )
        .unwrap();
        let c = o.apply(WorkflowKind::PaymentDue).unwrap();
        assert!(c.enabled);
        assert_eq!((c.language, c.stages.len(), c.stages[0].days), (Some(Language::Fr), 1, 5));
        assert_eq!(c.window, SendWindow::default(), "what is not given keeps its default");
        let bad: WorkflowOverrides =
            toml::from_str("[[stages]]\ndays = 5\nchannels = [{ type = \"task\" }]\nbody = \"{numbr}\"\n").unwrap();
        let e = bad.apply(WorkflowKind::PaymentDue).unwrap_err().to_string();
        assert!(e.starts_with("stage 1: body: unknown merge field {numbr} (did you mean {number}?)"), "{e}");
        assert!(toml::from_str::<WorkflowOverrides>("enable = true").is_err(), "unknown keys are errors");
    }

    #[test]
    fn bad_settings_are_refused_with_the_stage() {
        let mut c = WorkflowKind::PaymentDue.defaults();
        c.stages[1].days = 120;
        assert_eq!(
            c.validate(WorkflowKind::PaymentDue).map_err(|e| e.to_string()),
            Err("stage 2: `days` = 120 is outside -90 … 90".into())
        );
        let mut v = WorkflowKind::VendorPayment.defaults();
        v.stages[0].channels.push(Channel::CustomerEmail);
        assert_eq!(
            v.validate(WorkflowKind::VendorPayment).map_err(|e| e.to_string()),
            Err("stage 1: vendor_payment never emails the vendor".into())
        );
        let mut m = WorkflowKind::PaymentDue.defaults();
        m.min_balance.insert("EURO".into(), Decimal::ONE);
        assert!(m.validate(WorkflowKind::PaymentDue).is_err());
    }
}
