//! Signed webhooks (Standard Webhooks): a JSON body `{type, timestamp, data}` posted with the
//! `webhook-id`, `webhook-timestamp` and `webhook-signature` headers; the receiver's answer read as
//! Svix reads it (`request.rs`).

mod request;

use invoiceflow_rules::script::Action;
pub use request::{Secret, SecretError, body, classify, headers, signature};

use crate::http::{self, HttpError};
use crate::{Attempting, Connector, Delivery};

/// Posts signed deliveries to one endpoint.
#[derive(Debug)]
pub struct Webhook {
    url: reqwest::Url,
    client: reqwest::Client,
    secret: Secret,
}

impl Webhook {
    /// An endpoint at `url`, signing with `secret`.
    ///
    /// # Errors
    /// [`HttpError`] for a URL that is not http(s), or that names a private address without
    /// `allow_private`.
    pub fn new(url: &str, secret: Secret, allow_private: bool) -> Result<Self, HttpError> {
        Ok(Self { url: http::target(url, allow_private)?, client: http::client(allow_private)?, secret })
    }
}

/// The event type of a delivery: where it comes from, dotted (`rule.payment-received`,
/// `workflow.payment_due`).
pub fn event_type(source: &str) -> String {
    match source.split_once(':') {
        Some((kind, name)) => format!("{kind}.{name}"),
        None => format!("rule.{source}"),
    }
}

impl Connector for Webhook {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        Box::pin(async move {
            let Action::Webhook { payload, .. } = &d.intent.action else { return crate::wrong_action("webhook", d) };
            let body = body(&event_type(&d.intent.rule), d.at, payload);
            let mut request =
                self.client.post(self.url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in headers(&self.secret, d.key, d.at.timestamp(), &body) {
                request = request.header(name, value);
            }
            match request.body(body).send().await {
                Ok(response) => {
                    let (status, retry_after, _) = http::answer(response).await;
                    classify(status, retry_after.as_deref())
                }
                Err(e) => http::unanswered(&e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_say_where_a_delivery_comes_from() {
        assert_eq!(event_type("payment-received"), "rule.payment-received");
        assert_eq!(event_type("workflow:payment_due"), "workflow.payment_due");
    }
}
