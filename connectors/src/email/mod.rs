//! Email through SMTP (lettre): the message an action becomes (`message.rs`, pure), the
//! transport, and what the server's answer means — 4xx is worth another try, 5xx is not.

pub mod message;

use std::time::Duration;

pub use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
pub use message::{MessageError, Sender};

use crate::secret::SecretString;
use crate::{Attempted, Attempting, Connector, Delivery};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// No TLS: only for a relay on the same host or a test server.
    None,
}

/// Where and how email leaves.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The server's host name.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// The user name and password, when the server wants them.
    pub credentials: Option<(String, SecretString)>,
    /// Who sends.
    pub sender: Sender,
    /// How long one attempt may take.
    pub timeout: Duration,
}

/// Why the transport cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up SMTP to {host}: {source}")]
pub struct SmtpError {
    host: String,
    #[source]
    source: lettre::transport::smtp::Error,
}

/// Sends email through one SMTP server.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sender: Sender,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("sender", &self.sender).finish_non_exhaustive()
    }
}

impl Smtp {
    /// A transport for `settings`; nothing is connected until the first message.
    ///
    /// # Errors
    /// [`SmtpError`] when TLS cannot be set up for the host.
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let error = |source| SmtpError { host: settings.host.clone(), source };
        let tls = match settings.tls {
            TlsMode::None => Tls::None,
            TlsMode::Tls => Tls::Wrapper(TlsParameters::new(settings.host.clone()).map_err(error)?),
            TlsMode::StartTls => Tls::Required(TlsParameters::new(settings.host.clone()).map_err(error)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self { transport: builder.build(), sender: settings.sender.clone() })
    }
}

/// What an SMTP failure means: a 4xx reply is worth another try, a 5xx reply is not; no reply
/// (connection refused, timeout, TLS) is tried again.
pub fn classify(error: &lettre::transport::smtp::Error) -> Attempted {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    if error.is_permanent() {
        Attempted::Permanent { detail, disable_destination: false }
    } else {
        Attempted::Transient { retry_after: None, detail }
    }
}

impl Connector for Smtp {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        Box::pin(async move {
            let message = match message::build(d, &self.sender) {
                Ok(m) => m,
                Err(MessageError::NotEmail) => return crate::wrong_action("email", d),
                Err(e) => return Attempted::Permanent { detail: e.to_string(), disable_destination: false },
            };
            match self.transport.send(message).await {
                Ok(_) => Attempted::Delivered,
                Err(e) => classify(&e),
            }
        })
    }
}
