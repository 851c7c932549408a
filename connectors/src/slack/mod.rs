//! Slack-style incoming webhooks: a message posted as Slack's JSON, at most one a second per
//! webhook, and Slack's answer read as Slack means it (`request.rs`).

mod request;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use invoiceflow_rules::script::Action;
pub use request::{PERMANENT_ERRORS, classify, payload};

use crate::guard::Pacer;
use crate::http::{self, HttpError};
use crate::{Attempted, Attempting, Connector, Delivery};

/// The longest a post waits for its turn in place; a later turn defers the delivery to it.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Posts to one Slack incoming webhook.
#[derive(Debug)]
pub struct Slack {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    pacer: Mutex<Pacer>,
}

impl Slack {
    /// The destination `name` posting to `url`, at most one post a second (Slack's limit).
    ///
    /// # Errors
    /// [`HttpError`] for a URL that is not http(s), or that names a private address without
    /// `allow_private`.
    pub fn new(name: &str, url: &str, allow_private: bool) -> Result<Self, HttpError> {
        Self::paced(name, url, allow_private, 1)
    }

    /// [`Slack::new`] at most `per_second` posts a second (a Slack-compatible receiver that takes
    /// more: Mattermost, a local relay).
    ///
    /// # Errors
    /// As [`Slack::new`].
    pub fn paced(name: &str, url: &str, allow_private: bool, per_second: u32) -> Result<Self, HttpError> {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Ok(Self {
            name: name.to_owned(),
            url: http::target(url, allow_private)?,
            client: http::client(allow_private)?,
            pacer: Mutex::new(Pacer::new(interval)),
        })
    }

    fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Connector for Slack {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        Box::pin(async move {
            let Action::Slack { text, blocks, .. } = &d.intent.action else { return crate::wrong_action("Slack", d) };
            let now = Instant::now();
            let slot = self.pacer().slot(&self.name, d.key, now);
            let wait = slot.saturating_duration_since(now);
            if wait > MAX_WAIT {
                let wait = chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::seconds(1));
                return Attempted::Deferred { until: d.at + wait };
            }
            tokio::time::sleep(wait).await;
            self.pacer().used(d.key);
            let request = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(payload(text, blocks.as_ref()));
            match request.send().await {
                Ok(response) => {
                    let (status, retry_after, body) = http::answer(response).await;
                    classify(status, &body, retry_after.as_deref())
                }
                Err(e) => http::unanswered(&e),
            }
        })
    }
}
