//! `invoiceflow.toml`: where the database is and how each QuickBooks company keeps time and money.
//!
//! Every key is optional; no file at all is a valid configuration (SQLite file
//! `invoiceflow.db` in the current directory, UTC, USD). Unknown keys are errors, so a typo never
//! passes silently. [`ConfigFile`] is the file as written; [`Config::validate`] turns it into
//! strong types before anything opens a connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::workflow::config::{Channel, Language, WorkflowConfig, WorkflowKind, WorkflowOverrides};
use invoiceflow_rules::{AccountName, Company, Currency};
use serde::Deserialize;

/// The database used when the configuration names none: a SQLite file in the current directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://invoiceflow.db";

/// Where `invoiceflow run` serves its HTTP API unless `[server] listen` or `--listen` says otherwise:
/// this machine only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The environment variable the API token is read from unless `[server]` names another one or a
/// file.
pub const DEFAULT_TOKEN_ENV: &str = "INVOICEFLOW_API_TOKEN";

/// The largest request body `POST /v1/records` accepts unless `[server] max_body` says otherwise:
/// 10 MiB.
pub const DEFAULT_MAX_BODY: u64 = 10 << 20;

/// The bounds of `[server] max_body`: 1 KiB to 1 GiB.
const MAX_BODY_RANGE: std::ops::RangeInclusive<u64> = 1 << 10..=1 << 30;

/// How the built-in configuration is named in messages (no file given).
const DEFAULTS: &str = "(defaults)";

/// A configuration problem, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// TOML's message, with line and column.
        message: String,
    },
    /// A value is of the right type but not allowed.
    #[error("{path}: `{key}`: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, dotted (`quickbooks.acme.time_zone`).
        key: String,
        /// Why.
        reason: String,
    },
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Database URL: `sqlite://PATH` (created on first use) or `postgres://…` (several
    /// `invoiceflow` processes may share it). Default `sqlite://invoiceflow.db`.
    /// The environment variable `INVOICEFLOW_DATABASE_URL` overrides it.
    pub database_url: Option<String>,
    /// Defaults for every QuickBooks company.
    #[serde(default)]
    pub company: CompanyDefaults,
    /// The connected QuickBooks companies, by name (`[quickbooks.acme]`).
    #[serde(default)]
    pub quickbooks: BTreeMap<String, QuickBooksCompany>,
    /// Where rules live and how they print.
    #[serde(default)]
    pub rules: RulesSection,
    /// Where actions go, by name (`[destinations.finance]`); rules name them.
    #[serde(default)]
    pub destinations: BTreeMap<String, DestinationFile>,
    /// The four standard reminder workflows (`[workflows.payment_due]`, `vendor_payment`,
    /// `bank_deposit`, `unsent_invoice`): every one off until `enabled = true`.
    #[serde(default)]
    pub workflows: BTreeMap<String, WorkflowOverrides>,
    /// How email leaves (`[email]`).
    #[serde(default)]
    pub email: EmailSection,
    /// Where the engine says that something failed for good (`[alerts]`).
    #[serde(default)]
    pub alerts: AlertsSection,
    /// The HTTP API of `invoiceflow run` (`[server]`).
    #[serde(default)]
    pub server: ServerSection,
}

/// `[server]`: the HTTP API `invoiceflow run` serves (`POST /v1/records`, `GET /healthz`,
/// `GET /metrics`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The address to listen on, `IP:PORT`. Default `127.0.0.1:8080` (this machine only);
    /// `invoiceflow run --listen` overrides it, `--no-server` serves nothing.
    pub listen: Option<String>,
    /// The environment variable holding the bearer token `POST /v1/records` requires. Default
    /// `INVOICEFLOW_API_TOKEN`; when this key is set, the variable must be.
    pub token_env: Option<String>,
    /// A file holding the bearer token (its surrounding white space ignored), relative to this
    /// file; instead of `token_env`.
    pub token_file: Option<PathBuf>,
    /// The largest request body accepted: bytes (`1048576`) or a size (`"10 MiB"`, `"512 KiB"`).
    /// Default 10 MiB; from 1 KiB to 1 GiB.
    pub max_body: Option<ByteSize>,
    /// Refused: the token is never written in this file (see `token_env`, `token_file`).
    pub token: Option<toml::Value>,
}

/// A size in bytes, written as a number of bytes or as a string with a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// Bytes.
    Bytes(u64),
    /// `"10 MiB"`, `"512KiB"`, `"2 MB"`, `"4096 B"`.
    Text(String),
}

impl ByteSize {
    /// The number of bytes.
    ///
    /// # Errors
    /// A message saying which forms are accepted.
    pub fn bytes(&self) -> Result<u64, String> {
        let text = match self {
            Self::Bytes(n) => return Ok(*n),
            Self::Text(text) => text.trim(),
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = (&text[..split], text[split..].trim());
        let scale: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            _ => {
                return Err(format!(
                    "{text:?} is not a size: write bytes (1048576) or a size (\"10 MiB\", \"512 KiB\")"
                ));
            }
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| format!("{text:?} is not a size: write bytes (1048576) or a size (\"10 MiB\", \"512 KiB\")"))
    }
}

/// A secret (the API token, passwords, tokens): never printed, neither by `{}` nor by `{:?}`.
pub use invoiceflow_connectors::secret::SecretString as Secret;

/// Where the API token comes from, validated; [`TokenSource::load`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable; `required` when `[server] token_env` names it (else it is the
    /// default, and its absence leaves `POST /v1/records` refusing every request).
    Env {
        /// The variable.
        var: String,
        /// Whether the configuration names it.
        required: bool,
    },
    /// A file (`[server] token_file`).
    File(PathBuf),
}

impl TokenSource {
    /// Reads the token: `env` looks a variable up (the process environment, in the binary).
    /// `None` when no token is configured (the default variable is unset).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `server.token_env` or `server.token_file` when the
    /// variable the configuration names is unset, the file cannot be read, or the token is empty.
    pub fn load(
        &self,
        config_path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        let invalid =
            |key: &str, reason: String| ConfigError::Invalid { path: config_path.to_owned(), key: key.into(), reason };
        let (key, value) = match self {
            Self::Env { var, required } => match env(var) {
                Some(value) => ("server.token_env", value),
                None if *required => return Err(invalid("server.token_env", format!("{var} is not set"))),
                None => return Ok(None),
            },
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(value) => ("server.token_file", value),
                Err(e) => return Err(invalid("server.token_file", format!("cannot read {}: {e}", path.display()))),
            },
        };
        let token = value.trim();
        if token.is_empty() {
            return Err(invalid(key, "the token is empty".into()));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(key, "the token holds white space or control characters".into()));
        }
        Ok(Some(Secret::new(token)))
    }
}

/// `[server]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the bearer token comes from.
    pub token: TokenSource,
    /// The largest request body accepted, in bytes.
    pub max_body: u64,
}

/// `[email]`: how email leaves — through an SMTP server (`host`), or into a local file (`file`)
/// to try invoiceflow out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// Write each email as a JSON line to this file instead of sending it; relative to the
    /// configuration file. Not with `host`.
    pub file: Option<PathBuf>,
    /// The SMTP server's host name.
    pub host: Option<String>,
    /// Its port. Default: 465 with `tls = "tls"`, 587 with `starttls`, 25 with `none`.
    pub port: Option<u16>,
    /// `starttls` (default; required, not opportunistic), `tls` (from the first byte) or `none`
    /// (a relay on the same host only).
    pub tls: Option<String>,
    /// The SMTP user name, when the server wants one.
    pub username: Option<String>,
    /// The environment variable holding the SMTP password.
    pub password_env: Option<String>,
    /// A file holding the SMTP password (relative to this file).
    pub password_file: Option<PathBuf>,
    /// `From`: `"Acme Billing <billing@acme.example>"`. Required with `host`.
    pub from: Option<String>,
    /// `Reply-To`, when replies should go elsewhere.
    pub reply_to: Option<String>,
    /// Seconds one attempt may take. Default 15.
    pub timeout_seconds: Option<u64>,
}

/// Where a secret is read from when the engine starts: never from the configuration file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (its content, trimmed).
    File(PathBuf),
}

impl SecretSource {
    /// The source named by a `*_env` / `*_file` pair of keys; `key` is their prefix for messages.
    fn of(env: Option<String>, file: Option<PathBuf>, base: &Path, key: &str) -> Result<Option<Self>, String> {
        match (env, file) {
            (Some(_), Some(_)) => Err(format!("set one of `{key}_env` and `{key}_file`, not both")),
            (Some(var), None) => Ok(Some(Self::Env(var))),
            (None, Some(file)) => Ok(Some(Self::File(base.join(file)))),
            (None, None) => Ok(None),
        }
    }

    /// Reads the secret.
    ///
    /// # Errors
    /// A message naming the variable or file (never the secret).
    pub fn read(&self) -> Result<Secret, String> {
        let text = match self {
            Self::Env(var) => std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?,
            Self::File(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
        };
        if text.trim().is_empty() {
            return Err(match self {
                Self::Env(var) => format!("the environment variable {var} is empty"),
                Self::File(path) => format!("{} is empty", path.display()),
            });
        }
        Ok(Secret::new(&text))
    }
}

/// How email leaves, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTransport {
    /// JSON lines into a local file.
    File(PathBuf),
    /// An SMTP server.
    Smtp(SmtpConfig),
}

/// `[email]` with a `host`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// The server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `tls`, `starttls` or `none`.
    pub tls: invoiceflow_connectors::email::TlsMode,
    /// The user name and where its password is read from.
    pub credentials: Option<(String, SecretSource)>,
    /// `From`.
    pub from: String,
    /// `Reply-To`.
    pub reply_to: Option<String>,
    /// Seconds per attempt.
    pub timeout_seconds: u64,
}

/// `[alerts]`: where the engine tells an admin that a delivery failed for good (dead-lettered) or
/// that a peer's answer disabled a destination. Without it, both are logged as errors only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// A destination's name (`[destinations.NAME]`: Slack, webhook or email addresses).
    pub destination: Option<String>,
}

/// `[rules]`: the rules directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// The directory of rule files (`*.toml`, tests in `*.test.toml`), relative to this file.
    /// Default `rules` beside this file (with no configuration file: no rules).
    pub dir: Option<PathBuf>,
    /// The rules library: `*.rhai` modules rules may `import "name"`. Relative to this file.
    /// Default `<dir>/lib`.
    pub library: Option<PathBuf>,
    /// How money and dates print in rule text by default: `en`, `en-GB`, `fr`, `de`, `es`, `it`,
    /// `nl`. Default `en`.
    pub locale: Option<String>,
}

/// `[destinations.NAME]`: exactly one of `slack`, `webhook`, `email`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationFile {
    /// A Slack incoming-webhook URL, or `file:PATH` to write the posts to a local file.
    pub slack: Option<String>,
    /// A signed-webhook URL, or `file:PATH`.
    pub webhook: Option<String>,
    /// Email addresses.
    pub email: Option<Vec<String>>,
    /// The environment variable holding a webhook's signing secret (`whsec_…`).
    pub secret_env: Option<String>,
    /// A file holding a webhook's signing secret (relative to this file).
    pub secret_file: Option<PathBuf>,
    /// Allow a URL that reaches loopback, private or link-local addresses (a server on the same
    /// network). Default false: such targets are refused, as an SSRF guard.
    pub allow_private: Option<bool>,
    /// Slack: at most this many posts a second. Default 1, Slack's limit for an incoming webhook;
    /// raise it only for a Slack-compatible receiver that takes more.
    pub per_second: Option<u32>,
}

/// Where a Slack or webhook destination posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An http(s) URL.
    Url {
        /// The URL.
        url: String,
        /// Whether private addresses are allowed.
        allow_private: bool,
    },
    /// A local file (JSON lines), relative paths read from the configuration's folder.
    File(PathBuf),
}

/// A destination, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A Slack incoming webhook.
    Slack {
        /// Where it posts.
        target: Target,
        /// At most this many posts a second.
        per_second: u32,
    },
    /// A signed webhook.
    Webhook {
        /// Where it posts.
        target: Target,
        /// Where its signing secret is read from (required for a URL).
        secret: Option<SecretSource>,
    },
    /// A list of email addresses.
    Email {
        /// The addresses.
        to: Vec<String>,
    },
}

/// `[rules]`, validated.
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// The rules directory and the library directory; none without a configuration file (and
    /// without `[rules] dir`), so that no stray `rules/` folder of the current directory is read.
    pub dirs: Option<(PathBuf, PathBuf)>,
    /// The default locale of rule text.
    pub locale: Locale,
}

/// `[company]`: defaults for every QuickBooks company.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyDefaults {
    /// IANA time zone where "today" and "09:00" are read. Default `UTC`.
    pub time_zone: Option<String>,
    /// ISO 4217 home currency. Default `USD`.
    pub home_currency: Option<String>,
    /// The language of the workflows' built-in templates: `en` or `fr`. Default `en`.
    pub language: Option<String>,
}

/// `[quickbooks.NAME]`: one connected QuickBooks company.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickBooksCompany {
    /// The QuickBooks company id (realm id).
    pub realm_id: Option<String>,
    /// Overrides `[company].time_zone`.
    pub time_zone: Option<String>,
    /// Overrides `[company].home_currency`.
    pub home_currency: Option<String>,
    /// Overrides `[company].language`.
    pub language: Option<String>,
    /// The QuickBooks API: `production` (default), `sandbox`, or a URL (a test server).
    pub api_base: Option<String>,
    /// The environment variable holding a fixed access token for the API, used instead of the
    /// tokens `invoiceflow quickbooks connect` keeps (a token from Intuit's OAuth playground).
    pub access_token_env: Option<String>,
    /// A file holding that access token (relative to this file).
    pub access_token_file: Option<PathBuf>,
    /// The Intuit app's client id (OAuth 2), for `invoiceflow quickbooks connect`.
    pub client_id: Option<String>,
    /// The environment variable holding the app's client secret.
    pub client_secret_env: Option<String>,
    /// A file holding that client secret (relative to this file).
    pub client_secret_file: Option<PathBuf>,
    /// Where Intuit sends the browser back after consent; `invoiceflow quickbooks connect`
    /// listens there. Default `http://localhost:8765/callback` (register it in the app).
    pub redirect_uri: Option<String>,
    /// Intuit's OAuth endpoints: `production` (default: also serves sandbox companies) or a URL
    /// (a test server) under which `/connect/oauth2` and `/oauth2/v1/tokens/bearer` are served.
    pub oauth_base: Option<String>,
    /// The environment variable holding the app's webhook verifier token (checks
    /// `intuit-signature` on `POST /v1/quickbooks/webhook`).
    pub webhook_verifier_env: Option<String>,
    /// A file holding that verifier token (relative to this file).
    pub webhook_verifier_file: Option<PathBuf>,
    /// Minutes between change-data-capture sweeps that back-fill what webhooks missed. Default 15.
    pub sync_every_minutes: Option<u32>,
}

/// The QuickBooks API of a company, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickBooksApi {
    /// The company id.
    pub realm_id: String,
    /// The API's base URL.
    pub base: String,
    /// Where a fixed access token is read from (else the tokens `quickbooks connect` keeps).
    pub access_token: Option<SecretSource>,
    /// How to connect the company and refresh its tokens (OAuth 2).
    pub oauth: Option<OAuthSettings>,
    /// Where the webhook verifier token is read from.
    pub webhook_verifier: Option<SecretSource>,
    /// Minutes between change-data-capture sweeps.
    pub sync_every_minutes: u32,
}

/// An Intuit app's OAuth 2 settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The app's client id.
    pub client_id: String,
    /// Where its client secret is read from.
    pub client_secret: SecretSource,
    /// Where the browser comes back to.
    pub redirect_uri: String,
    /// The consent page.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
}

/// Intuit's consent page.
pub use invoiceflow_connectors::quickbooks::oauth::AUTHORIZE_URL as INTUIT_AUTHORIZE;
/// Intuit's token endpoint.
pub use invoiceflow_connectors::quickbooks::oauth::TOKEN_URL as INTUIT_TOKENS;
/// Where `invoiceflow quickbooks connect` listens by default.
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:8765/callback";
/// Minutes between change-data-capture sweeps by default.
pub const DEFAULT_SYNC_MINUTES: u32 = 15;

/// QuickBooks' production API.
pub use invoiceflow_connectors::quickbooks::api::PRODUCTION as QUICKBOOKS_PRODUCTION;
/// QuickBooks' sandbox API.
pub use invoiceflow_connectors::quickbooks::api::SANDBOX as QUICKBOOKS_SANDBOX;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store lives.
    pub database_url: String,
    /// Time zone and home currency of every company.
    pub companies: Companies,
    /// Where rules live.
    pub rules: RulesConfig,
    /// Where actions go, by name.
    pub destinations: BTreeMap<String, Destination>,
    /// The four workflows' effective settings.
    pub workflows: BTreeMap<WorkflowKind, WorkflowConfig>,
    /// How email leaves; none without `[email]`.
    pub email: Option<EmailTransport>,
    /// The destination alerts go to (`[alerts] destination`).
    pub alerts: Option<String>,
    /// The companies whose QuickBooks API invoiceflow may call (send-invoice), by name.
    pub quickbooks_api: BTreeMap<AccountName, QuickBooksApi>,
    /// The HTTP API of `invoiceflow run`.
    pub server: ServerConfig,
    /// The configuration file (`(defaults)` without one), for messages.
    pub path: PathBuf,
    /// The folder relative paths are read from (the configuration file's).
    pub base: PathBuf,
}

/// The companies invoiceflow knows, and the defaults for the ones it does not.
#[derive(Debug, Clone)]
pub struct Companies {
    defaults: Company,
    configured: BTreeMap<AccountName, (Company, Option<String>)>,
    default_language: Language,
    languages: BTreeMap<AccountName, Language>,
}

impl Companies {
    /// The company called `name`; an unconfigured name gets the `[company]` defaults.
    pub fn get(&self, name: &AccountName) -> Company {
        match self.configured.get(name) {
            Some((c, _)) => c.clone(),
            None => Company { name: name.clone(), ..self.defaults.clone() },
        }
    }

    /// The language company `name` writes to its customers (workflow templates).
    pub fn language(&self, name: &AccountName) -> Language {
        self.languages.get(name).copied().unwrap_or(self.default_language)
    }

    /// Every time zone a company lives in: the configured companies' and the default one.
    pub fn zones(&self) -> Vec<chrono_tz::Tz> {
        let mut zones: Vec<chrono_tz::Tz> = std::iter::once(self.defaults.time_zone)
            .chain(self.configured.values().map(|(c, _)| c.time_zone))
            .collect();
        zones.sort_by_key(|z| z.name());
        zones.dedup();
        zones
    }

    /// True when `name` is configured under `[quickbooks.NAME]`.
    pub fn is_configured(&self, name: &AccountName) -> bool {
        self.configured.contains_key(name)
    }

    /// True when no company is configured.
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty()
    }

    /// The company records belong to when neither they nor `--account` name one: the only
    /// configured company, else `default`.
    pub fn default_account(&self) -> AccountName {
        match self.configured.keys().collect::<Vec<_>>().as_slice() {
            [only] => (*only).clone(),
            _ => AccountName::default_account(),
        }
    }
}

impl Config {
    /// Reads and validates `path`; with no path, the built-in defaults.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key at fault.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::validate(ConfigFile::default(), Path::new(DEFAULTS)),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                let file: ConfigFile = toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
                Self::validate(file, path)
            }
        }
    }

    /// Turns the file into strong types. Pure: opens nothing.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for an unknown time zone or currency, or a bad company name.
    pub fn validate(file: ConfigFile, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |key: String, reason: String| ConfigError::Invalid { path: path.to_owned(), key, reason };
        let tz = |key: String, value: &str| -> Result<Tz, ConfigError> {
            value
                .parse::<Tz>()
                .map_err(|_| invalid(key, format!("{value:?} is not an IANA time zone (e.g. Europe/Paris)")))
        };
        let currency = |key: String, value: &str| -> Result<Currency, ConfigError> {
            Currency::from_code(value).map_err(|e| invalid(key, e.to_string()))
        };
        let defaults = Company {
            name: AccountName::default_account(),
            time_zone: match &file.company.time_zone {
                Some(v) => tz("company.time_zone".into(), v)?,
                None => chrono_tz::UTC,
            },
            home_currency: match &file.company.home_currency {
                Some(v) => currency("company.home_currency".into(), v)?,
                None => currency("company.home_currency".into(), "USD")?,
            },
        };
        let language = |key: String, value: &Option<String>| -> Result<Option<Language>, ConfigError> {
            match value.as_deref() {
                None => Ok(None),
                Some("en") => Ok(Some(Language::En)),
                Some("fr") => Ok(Some(Language::Fr)),
                Some(other) => Err(invalid(key, format!("{other:?} is not a template language: en or fr"))),
            }
        };
        let default_language = language("company.language".into(), &file.company.language)?.unwrap_or_default();
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut languages = BTreeMap::new();
        let mut configured = BTreeMap::new();
        let mut quickbooks_api = BTreeMap::new();
        for (name, qb) in file.quickbooks {
            let key = |k: &str| format!("quickbooks.{name}.{k}");
            let account = AccountName::new(name.as_str())
                .map_err(|e| invalid(format!("quickbooks.{name}"), format!("company name {e}")))?;
            let company = Company {
                name: account.clone(),
                time_zone: match &qb.time_zone {
                    Some(v) => tz(key("time_zone"), v)?,
                    None => defaults.time_zone,
                },
                home_currency: match &qb.home_currency {
                    Some(v) => currency(key("home_currency"), v)?,
                    None => defaults.home_currency,
                },
            };
            if let Some(l) = language(key("language"), &qb.language)? {
                languages.insert(account.clone(), l);
            }
            let api_base = match qb.api_base.as_deref() {
                None | Some("production") => QUICKBOOKS_PRODUCTION.to_owned(),
                Some("sandbox") => QUICKBOOKS_SANDBOX.to_owned(),
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => url.to_owned(),
                Some(other) => {
                    return Err(invalid(
                        key("api_base"),
                        format!("{other:?}: write production, sandbox or an http(s) URL"),
                    ));
                }
            };
            let token = SecretSource::of(qb.access_token_env, qb.access_token_file, base, "access_token")
                .map_err(|reason| invalid(key("access_token_env"), reason))?;
            let verifier =
                SecretSource::of(qb.webhook_verifier_env, qb.webhook_verifier_file, base, "webhook_verifier")
                    .map_err(|reason| invalid(key("webhook_verifier_env"), reason))?;
            let secret = SecretSource::of(qb.client_secret_env, qb.client_secret_file, base, "client_secret")
                .map_err(|reason| invalid(key("client_secret_env"), reason))?;
            let oauth = match (qb.client_id, secret) {
                (Some(client_id), Some(client_secret)) => {
                    let (authorize_url, token_url) = match qb.oauth_base.as_deref() {
                        None | Some("production") => (INTUIT_AUTHORIZE.to_owned(), INTUIT_TOKENS.to_owned()),
                        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                            let url = url.trim_end_matches('/');
                            (format!("{url}/connect/oauth2"), format!("{url}/oauth2/v1/tokens/bearer"))
                        }
                        Some(other) => {
                            return Err(invalid(
                                key("oauth_base"),
                                format!("{other:?}: write production or an http(s) URL"),
                            ));
                        }
                    };
                    let redirect_uri = qb.redirect_uri.unwrap_or_else(|| DEFAULT_REDIRECT_URI.to_owned());
                    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
                        return Err(invalid(key("redirect_uri"), format!("{redirect_uri:?} is not an http(s) URL")));
                    }
                    Some(OAuthSettings { client_id, client_secret, redirect_uri, authorize_url, token_url })
                }
                (Some(_), None) => {
                    return Err(invalid(
                        key("client_secret_env"),
                        "client_id needs client_secret_env or client_secret_file".into(),
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(key("client_id"), "a client secret needs the app's client_id".into()));
                }
                (None, None) => None,
            };
            let sync_every_minutes = match qb.sync_every_minutes {
                None => DEFAULT_SYNC_MINUTES,
                Some(m @ 1..=1440) => m,
                Some(other) => return Err(invalid(key("sync_every_minutes"), format!("{other}: from 1 to 1440"))),
            };
            let uses_api = token.is_some() || oauth.is_some() || verifier.is_some();
            match (&qb.realm_id, uses_api) {
                (Some(realm_id), true) => {
                    quickbooks_api.insert(
                        account.clone(),
                        QuickBooksApi {
                            realm_id: realm_id.clone(),
                            base: api_base,
                            access_token: token,
                            oauth,
                            webhook_verifier: verifier,
                            sync_every_minutes,
                        },
                    );
                }
                (None, true) => {
                    return Err(invalid(key("realm_id"), "the QuickBooks API needs the company's realm_id".into()));
                }
                (_, false) => {}
            }
            configured.insert(account, (company, qb.realm_id));
        }
        let database_url = file.database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let dirs = match file.rules.dir {
            Some(dir) => Some(base.join(dir)),
            None if path != Path::new(DEFAULTS) => Some(base.join("rules")),
            None => None,
        }
        .map(|dir| {
            let library = file.rules.library.as_ref().map_or_else(|| dir.join("lib"), |l| base.join(l));
            (dir, library)
        });
        let locale = match &file.rules.locale {
            None => Locale::En,
            Some(tag) => Locale::parse(tag).ok_or_else(|| {
                invalid("rules.locale".into(), format!("{tag:?} is not a known locale: {}", Locale::TAGS.join(", ")))
            })?,
        };
        let mut destinations = BTreeMap::new();
        for (name, d) in file.destinations {
            let key = format!("destinations.{name}");
            let target = |url: String, key: &str| -> Result<Target, ConfigError> {
                if let Some(path) = url.strip_prefix("file:") {
                    return Ok(Target::File(base.join(path)));
                }
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(invalid(key.to_owned(), format!("{url:?} is neither an http(s) URL nor file:PATH")));
                }
                Ok(Target::Url { url, allow_private: d.allow_private.unwrap_or(false) })
            };
            let secret = SecretSource::of(d.secret_env.clone(), d.secret_file.clone(), base, "secret")
                .map_err(|reason| invalid(key.clone(), reason))?;
            let destination = match (d.slack.clone(), d.webhook.clone(), d.email.clone()) {
                (Some(url), None, None) => Destination::Slack {
                    target: target(url, &format!("{key}.slack"))?,
                    per_second: match d.per_second {
                        Some(0) => return Err(invalid(format!("{key}.per_second"), "at least 1".into())),
                        Some(n) => n,
                        None => 1,
                    },
                },
                (None, Some(url), None) => {
                    let target = target(url, &format!("{key}.webhook"))?;
                    if matches!(target, Target::Url { .. }) && secret.is_none() {
                        return Err(invalid(
                            key,
                            "a webhook signs what it sends: set `secret_env` (or `secret_file`) to where its whsec_ secret is"
                                .into(),
                        ));
                    }
                    Destination::Webhook { target, secret: secret.clone() }
                }
                (None, None, Some(to)) if !to.is_empty() && to.iter().all(|a| a.contains('@')) => {
                    Destination::Email { to }
                }
                (None, None, Some(_)) => return Err(invalid(key, "`email` must list at least one address".into())),
                _ => return Err(invalid(key, "set exactly one of `slack`, `webhook`, `email`".into())),
            };
            if d.per_second.is_some() && !matches!(destination, Destination::Slack { .. }) {
                return Err(invalid(format!("{key}.per_second"), "only Slack destinations are paced".into()));
            }
            if secret.is_some() && !matches!(destination, Destination::Webhook { .. }) {
                return Err(invalid(key, "`secret_env` and `secret_file` are for webhook destinations".into()));
            }
            destinations.insert(name, destination);
        }
        let email = email_transport(file.email, base).map_err(|(k, reason)| invalid(format!("email.{k}"), reason))?;
        if let Some(name) = &file.alerts.destination
            && !destinations.contains_key(name)
        {
            return Err(invalid(
                "alerts.destination".into(),
                format!("unknown destination {name:?}: configure it under [destinations.{name}]"),
            ));
        }
        let mut workflows: BTreeMap<WorkflowKind, WorkflowConfig> =
            WorkflowKind::ALL.into_iter().map(|k| (k, k.defaults())).collect();
        for (name, overrides) in file.workflows {
            let key = format!("workflows.{name}");
            let Some(kind) = WorkflowKind::parse(&name) else {
                let names: Vec<&str> = WorkflowKind::ALL.iter().map(|k| k.as_str()).collect();
                let hint = invoiceflow_rules::suggest::closest(&name, names.iter().copied())
                    .map(|h| format!(" (did you mean {h}?)"))
                    .unwrap_or_default();
                return Err(invalid(key, format!("no such workflow{hint}; the four are {}", names.join(", "))));
            };
            let config = overrides.apply(kind).map_err(|e| invalid(key, e.to_string()))?;
            for stage in &config.stages {
                for channel in &stage.channels {
                    if let Channel::TeamEmail { destination } | Channel::Slack { destination } = channel
                        && !destinations.contains_key(destination)
                    {
                        return Err(invalid(
                            format!("workflows.{name}.stages"),
                            format!(
                                "unknown destination {destination:?}: configure it under [destinations.{destination}]"
                            ),
                        ));
                    }
                }
            }
            workflows.insert(kind, config);
        }
        let server = server(file.server, base, &invalid)?;
        Ok(Self {
            database_url,
            companies: Companies { defaults, configured, default_language, languages },
            rules: RulesConfig { dirs, locale },
            destinations,
            workflows,
            email,
            alerts: file.alerts.destination,
            quickbooks_api,
            server,
            path: path.to_owned(),
            base: base.to_path_buf(),
        })
    }
}

/// `[email]`, validated: a file, an SMTP server, or nothing.
fn email_transport(e: EmailSection, base: &Path) -> Result<Option<EmailTransport>, (&'static str, String)> {
    use invoiceflow_connectors::email::TlsMode;
    let host = match (e.file, e.host) {
        (Some(_), Some(_)) => return Err(("file", "set `file` or `host`, not both".into())),
        (Some(file), None) => return Ok(Some(EmailTransport::File(base.join(file)))),
        (None, None) => {
            return match e.from {
                Some(_) => Err(("host", "`from` is set but no `host` says which SMTP server sends".into())),
                None => Ok(None),
            };
        }
        (None, Some(host)) => host,
    };
    let tls = match e.tls.as_deref() {
        None | Some("starttls") => TlsMode::StartTls,
        Some("tls") => TlsMode::Tls,
        Some("none") => TlsMode::None,
        Some(other) => return Err(("tls", format!("{other:?}: write starttls, tls or none"))),
    };
    let port = e.port.unwrap_or(match tls {
        TlsMode::Tls => 465,
        TlsMode::StartTls => 587,
        TlsMode::None => 25,
    });
    let from = e.from.ok_or(("from", "who sends? e.g. from = \"Acme Billing <billing@acme.example>\"".to_owned()))?;
    let mailbox = |key: &'static str, text: &str| -> Result<(), (&'static str, String)> {
        text.parse::<invoiceflow_connectors::email::Mailbox>()
            .map(|_| ())
            .map_err(|_| (key, format!("{text:?} is not an email address")))
    };
    mailbox("from", &from)?;
    if let Some(r) = &e.reply_to {
        mailbox("reply_to", r)?;
    }
    let password =
        SecretSource::of(e.password_env, e.password_file, base, "password").map_err(|r| ("password_env", r))?;
    let credentials = match (e.username, password) {
        (Some(user), Some(p)) => Some((user, p)),
        (None, None) => None,
        (Some(_), None) => return Err(("password_env", "`username` needs `password_env` or `password_file`".into())),
        (None, Some(_)) => return Err(("username", "a password needs its `username`".into())),
    };
    Ok(Some(EmailTransport::Smtp(SmtpConfig {
        host,
        port,
        tls,
        credentials,
        from,
        reply_to: e.reply_to,
        timeout_seconds: e.timeout_seconds.unwrap_or(15).clamp(1, 300),
    })))
}

/// `[server]`, validated: an `IP:PORT`, at most one token source, a size within bounds.
fn server(
    section: ServerSection,
    base: &Path,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<ServerConfig, ConfigError> {
    if section.token.is_some() {
        return Err(invalid(
            "server.token".into(),
            "the token is never written in the configuration: set token_env (an environment variable) \
             or token_file (a file only invoiceflow can read)"
                .into(),
        ));
    }
    let listen = section.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen.parse::<SocketAddr>().map_err(|_| {
        invalid("server.listen".into(), format!("{listen:?} is not IP:PORT (127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080)"))
    })?;
    let token = match (section.token_env, section.token_file) {
        (Some(_), Some(_)) => {
            return Err(invalid("server.token_env".into(), "set `token_env` or `token_file`, not both".into()));
        }
        (Some(var), None) => {
            let valid = !var.is_empty()
                && !var.starts_with(|c: char| c.is_ascii_digit())
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(invalid(
                    "server.token_env".into(),
                    format!("{var:?} is not an environment variable name (letters, digits, _)"),
                ));
            }
            TokenSource::Env { var, required: true }
        }
        (None, Some(file)) => TokenSource::File(base.join(file)),
        (None, None) => TokenSource::Env { var: DEFAULT_TOKEN_ENV.into(), required: false },
    };
    let max_body = match &section.max_body {
        None => DEFAULT_MAX_BODY,
        Some(size) => {
            let bytes = size.bytes().map_err(|reason| invalid("server.max_body".into(), reason))?;
            if !MAX_BODY_RANGE.contains(&bytes) {
                return Err(invalid(
                    "server.max_body".into(),
                    format!("{bytes} bytes is out of bounds: from 1 KiB (1024) to 1 GiB (1073741824)"),
                ));
            }
            bytes
        }
    };
    Ok(ServerConfig { listen, token, max_body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: "t.toml".into(), message: e.to_string() })?;
        Config::validate(file, Path::new("t.toml"))
    }

    #[test]
    fn no_file_means_sqlite_utc_usd() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        let any = c.companies.get(&AccountName::new("x").unwrap());
        assert_eq!((any.time_zone, any.home_currency.code()), (chrono_tz::UTC, "USD"));
    }

    #[test]
    fn companies_inherit_and_override_defaults() {
        let c = parse("[company]\ntime_zone = \"America/New_York\"\n[quickbooks.fr]\nhome_currency = \"EUR\"\ntime_zone = \"Europe/Paris\"\n[quickbooks.us]\n").unwrap();
        let fr = c.companies.get(&AccountName::new("fr").unwrap());
        assert_eq!((fr.time_zone, fr.home_currency.code()), (chrono_tz::Europe::Paris, "EUR"));
        let us = c.companies.get(&AccountName::new("us").unwrap());
        assert_eq!((us.time_zone, us.home_currency.code()), (chrono_tz::America::New_York, "USD"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse("database_ur = \"x\"").unwrap_err().to_string();
        assert!(e.contains("database_ur"), "{e}");
        let e = parse("[quickbooks.a]\nrealm = \"1\"").unwrap_err().to_string();
        assert!(e.contains("realm"), "{e}");
    }

    #[test]
    fn destinations_name_one_kind_each() {
        let c = parse("[destinations.finance]\nslack = \"https://hooks.slack.com/services/T/B/X\"\n[destinations.ap]\nemail = [\"ap@x.example\"]\n").unwrap();
        assert_eq!(c.destinations["ap"], Destination::Email { to: vec!["ap@x.example".into()] });
        let e = parse("[destinations.x]\nslack = \"u\"\nwebhook = \"v\"").unwrap_err().to_string();
        assert!(e.contains("destinations.x") && e.contains("exactly one"), "{e}");
        let e = parse("[rules]\nlocale = \"klingon\"").unwrap_err().to_string();
        assert!(e.contains("rules.locale"), "{e}");
    }

    #[test]
    fn workflows_are_off_until_enabled_and_checked() {
        let c = Config::load(None).unwrap();
        assert!(c.workflows.values().all(|w| !w.enabled));
        let c = parse("[workflows.payment_due]\nenabled = true\n").unwrap();
        assert!(c.workflows[&WorkflowKind::PaymentDue].enabled);
        let e = parse("[workflows.paymnt_due]\nenabled = true").unwrap_err().to_string();
        assert!(e.contains("workflows.paymnt_due") && e.contains("did you mean payment_due"), "{e}");
        let e = parse("[workflows.vendor_payment]\n[[workflows.vendor_payment.stages]]\ndays = 0\nchannels = [{ type = \"slack\", destination = \"ap\" }]").unwrap_err().to_string();
        assert!(e.contains("unknown destination \"ap\""), "{e}");
    }

    #[test]
    fn the_server_listens_on_loopback_with_a_token_from_the_environment_by_default() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.server.token, TokenSource::Env { var: DEFAULT_TOKEN_ENV.into(), required: false });
        assert_eq!(c.server.max_body, 10 << 20);
        let none = c.server.token.load(&c.path, |_| None).unwrap();
        assert_eq!(none, None, "no token: the records endpoint refuses, the engine still runs");
        let token = c.server.token.load(&c.path, |v| (v == DEFAULT_TOKEN_ENV).then(|| " s3cret\n".into())).unwrap();
        assert_eq!(token.as_ref().map(Secret::expose), Some("s3cret"));
    }

    #[test]
    fn server_keys_are_checked_and_name_the_key() {
        let c =
            parse("[server]\nlisten = \"0.0.0.0:9000\"\nmax_body = \"512 KiB\"\ntoken_env = \"API_TOKEN\"").unwrap();
        assert_eq!((c.server.listen.port(), c.server.max_body), (9000, 512 << 10));
        let e = c.server.token.load(&c.path, |_| None).unwrap_err().to_string();
        assert!(e.contains("server.token_env") && e.contains("API_TOKEN is not set"), "{e}");
        assert_eq!(parse("[server]\nmax_body = 2048").unwrap().server.max_body, 2048);
        for (text, key) in [
            ("listen = \"localhost\"", "server.listen"),
            ("max_body = \"10 parsecs\"", "server.max_body"),
            ("max_body = 10", "server.max_body"),
            ("token_env = \"A\"\ntoken_file = \"t\"", "server.token_env"),
            ("token_env = \"NOT A NAME\"", "server.token_env"),
            ("token = \"s3cret\"", "server.token"),
        ] {
            let e = parse(&format!("[server]\n{text}")).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
            assert!(!e.contains("s3cret"), "the token is not repeated: {e}");
        }
    }

    #[test]
    fn a_token_file_is_read_relative_to_the_configuration_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoiceflow.toml");
        std::fs::write(&path, "[server]\ntoken_file = \"token\"\n").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        let e = c.server.token.load(&c.path, |_| None).unwrap_err().to_string();
        assert!(e.contains("server.token_file") && e.contains("cannot read"), "{e}");
        std::fs::write(dir.path().join("token"), "  \n").unwrap();
        let e = c.server.token.load(&c.path, |_| None).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        let token = c.server.token.load(&c.path, |_| None).unwrap().unwrap();
        assert_eq!(token.expose(), "s3cret");
        assert_eq!((format!("{token}"), format!("{token:?}")), ("***".into(), "Secret(***)".into()));
    }

    #[test]
    fn a_quickbooks_company_connects_by_oauth_and_is_watched_by_webhooks() {
        let c = parse(
            "[quickbooks.acme]\nrealm_id = \"9341\"\napi_base = \"sandbox\"\nclient_id = \"AB12\"\n\
             client_secret_env = \"QBO_SECRET\"\nwebhook_verifier_file = \"verifier.txt\"\n",
        )
        .unwrap();
        let api = &c.quickbooks_api[&AccountName::new("acme").unwrap()];
        assert_eq!((api.realm_id.as_str(), api.base.as_str()), ("9341", QUICKBOOKS_SANDBOX));
        assert_eq!((api.access_token.clone(), api.sync_every_minutes), (None, DEFAULT_SYNC_MINUTES));
        let oauth = api.oauth.clone().unwrap();
        assert_eq!((oauth.client_id.as_str(), oauth.client_secret), ("AB12", SecretSource::Env("QBO_SECRET".into())));
        assert_eq!((oauth.authorize_url.as_str(), oauth.token_url.as_str()), (INTUIT_AUTHORIZE, INTUIT_TOKENS));
        assert_eq!(oauth.redirect_uri, DEFAULT_REDIRECT_URI);
        assert!(matches!(&api.webhook_verifier, Some(SecretSource::File(p)) if p.ends_with("verifier.txt")));

        // A test server serves both the API and the OAuth endpoints.
        let c = parse(
            "[quickbooks.acme]\nrealm_id = \"1\"\napi_base = \"http://127.0.0.1:9/\"\noauth_base = \"http://127.0.0.1:9/\"\n\
             client_id = \"x\"\nclient_secret_file = \"s\"\nsync_every_minutes = 5\n",
        )
        .unwrap();
        let api = &c.quickbooks_api[&AccountName::new("acme").unwrap()];
        let oauth = api.oauth.clone().unwrap();
        assert_eq!(oauth.token_url, "http://127.0.0.1:9/oauth2/v1/tokens/bearer");
        assert_eq!(oauth.authorize_url, "http://127.0.0.1:9/connect/oauth2");
        assert_eq!(api.sync_every_minutes, 5);

        // Each mistake names its key.
        for (text, key) in [
            ("client_id = \"x\"", "quickbooks.acme.client_secret_env"),
            ("client_secret_env = \"S\"", "quickbooks.acme.client_id"),
            (
                "client_id = \"x\"\nclient_secret_env = \"S\"\nclient_secret_file = \"f\"",
                "quickbooks.acme.client_secret_env",
            ),
            ("client_id = \"x\"\nclient_secret_env = \"S\"\noauth_base = \"intuit\"", "quickbooks.acme.oauth_base"),
            (
                "client_id = \"x\"\nclient_secret_env = \"S\"\nredirect_uri = \"localhost:1\"",
                "quickbooks.acme.redirect_uri",
            ),
            ("webhook_verifier_env = \"V\"\nsync_every_minutes = 0", "quickbooks.acme.sync_every_minutes"),
        ] {
            let e = parse(&format!("[quickbooks.acme]\nrealm_id = \"1\"\n{text}\n")).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = parse("[quickbooks.acme]\nwebhook_verifier_env = \"V\"\n").unwrap_err().to_string();
        assert!(e.contains("quickbooks.acme.realm_id"), "{e}");
    }

    #[test]
    fn bad_time_zone_names_the_key() {
        let e = parse("[quickbooks.a]\ntime_zone = \"Mars/Olympus\"").unwrap_err().to_string();
        assert!(e.contains("quickbooks.a.time_zone") && e.contains("Mars/Olympus"), "{e}");
    }
}
