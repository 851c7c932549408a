//! The email an action becomes: multipart text + HTML (an HTML part made from the text when the
//! action gives none), UTF-8 throughout, `Date` of the attempt, and a `Message-ID` that is a
//! function of the delivery's key, so that every attempt of one delivery is the same message to
//! the recipient's server and client.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use sha2::{Digest as _, Sha256};

use crate::Delivery;

/// The header carrying the delivery's key as written (the Message-ID carries its digest).
pub const KEY_HEADER: &str = "X-Invoiceflow-Key";

/// Who sends.
#[derive(Debug, Clone)]
pub struct Sender {
    /// `From`.
    pub from: Mailbox,
    /// `Reply-To`, when replies should go elsewhere.
    pub reply_to: Option<Mailbox>,
}

/// Why an action cannot become an email: no retry can change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// An address is not one.
    #[error("{field}: {address:?} is not an email address")]
    Address {
        /// `to` or `cc`.
        field: &'static str,
        /// The address as written.
        address: String,
    },
    /// Not an email action.
    #[error("not an email action")]
    NotEmail,
    /// lettre refused the message.
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// The `Message-ID` of the delivery `key` sent from `domain`: `<` 32 hex digits of the key's
/// SHA-256 `@domain>`. Keys hold characters a Message-ID may not (`:`, `/`, `+`).
pub fn message_id(key: &str, domain: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{domain}>")
}

/// An HTML body made from plain text: escaped, paragraphs at blank lines, line breaks kept.
pub fn html_of(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace("\r\n", "\n");
    let paragraphs: Vec<String> = escaped
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", p.replace('\n', "<br>\n")))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n{}\n</body></html>\n",
        paragraphs.join("\n")
    )
}

/// The message of an email delivery.
///
/// # Errors
/// [`MessageError`] naming the address at fault.
pub fn build(delivery: &Delivery<'_>, sender: &Sender) -> Result<Message, MessageError> {
    let invoiceflow_rules::script::Action::Email { to, cc, subject, text, html } = &delivery.intent.action else {
        return Err(MessageError::NotEmail);
    };
    let mailbox = |field: &'static str, address: &str| {
        address.trim().parse::<Mailbox>().map_err(|_| MessageError::Address { field, address: address.to_owned() })
    };
    let domain = sender.from.email.domain().to_owned();
    let mut builder = Message::builder()
        .from(sender.from.clone())
        .subject(subject.as_str())
        .date(SystemTime::from(delivery.at))
        .message_id(Some(message_id(delivery.key, &domain)))
        .user_agent(concat!("invoiceflow/", env!("CARGO_PKG_VERSION")).to_owned());
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    for address in to {
        builder = builder.to(mailbox("to", address)?);
    }
    for address in cc {
        builder = builder.cc(mailbox("cc", address)?);
    }
    let html = html.clone().unwrap_or_else(|| html_of(text));
    let mut message = builder
        .multipart(MultiPart::alternative_plain_html(text.clone(), html))
        .map_err(|e| MessageError::Build(e.to_string()))?;
    message
        .headers_mut()
        .insert_raw(HeaderValue::new(HeaderName::new_from_ascii_str(KEY_HEADER), delivery.key.to_owned()));
    Ok(message)
}

#[cfg(test)]
mod tests {
    use invoiceflow_rules::script::{Action, Cause, Intent};
    use invoiceflow_rules::{AccountName, RecordId, RecordKey, RecordKind};

    use super::*;

    fn email(to: &[&str], html: Option<&str>) -> Intent {
        Intent {
            rule: "workflow:payment_due".into(),
            version: "1".into(),
            cause: Cause::Manual,
            record: RecordKey::new(
                RecordKind::Invoice,
                AccountName::new("atelier-fr").expect("account"),
                RecordId::new("88").expect("id"),
            )
            .into(),
            seen: serde_json::from_value(serde_json::json!({})).expect("seen"),
            action: Action::Email {
                to: to.iter().map(|s| (*s).to_owned()).collect(),
                cc: vec![],
                subject: "Relance : facture n° 1042 échue".into(),
                text: "Bonjour Élodie,\n\nLa facture 1042 de 1 250,00 € est échue.\nMerci.".into(),
                html: html.map(str::to_owned),
            },
        }
    }

    fn sender() -> Sender {
        Sender { from: "Atelier <factures@atelier.example>".parse().expect("from"), reply_to: None }
    }

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").expect("time").to_utc()
    }

    #[test]
    fn the_message_id_is_the_same_on_every_attempt_and_differs_per_key() {
        let intent = email(&["elodie@client.example"], None);
        let first =
            build(&Delivery { key: "workflow:payment_due:k1", intent: &intent, attempt: 1, at: at() }, &sender())
                .expect("message");
        let again =
            build(&Delivery { key: "workflow:payment_due:k1", intent: &intent, attempt: 2, at: at() }, &sender())
                .expect("message");
        let other =
            build(&Delivery { key: "workflow:payment_due:k2", intent: &intent, attempt: 1, at: at() }, &sender())
                .expect("message");
        let id = |m: &Message| m.headers().get_raw("Message-ID").expect("Message-ID").to_owned();
        assert_eq!(id(&first), id(&again));
        assert_ne!(id(&first), id(&other));
        assert!(id(&first).ends_with("@atelier.example>") && id(&first).len() == 1 + 32 + 17, "{}", id(&first));
    }

    #[test]
    fn french_text_goes_out_as_utf8_text_and_html() {
        let intent = email(&["Élodie Martin <elodie@client.example>"], None);
        let message = build(&Delivery { key: "k", intent: &intent, attempt: 1, at: at() }, &sender()).expect("message");
        let raw = String::from_utf8_lossy(&message.formatted()).into_owned();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain; charset=utf-8") && raw.contains("text/html; charset=utf-8"), "{raw}");
        assert!(raw.contains("X-Invoiceflow-Key: k"), "{raw}");
        assert!(raw.contains("Date: Wed, 25 Nov 2026 09:00:00 +0000"), "{raw}");
        // The subject's accented words are RFC 2047-encoded UTF-8.
        assert!(raw.contains("Subject: Relance : facture =?utf-8?b?bsKw?= 1042 =?utf-8?b?w6ljaHVl?="), "{raw}");
    }

    #[test]
    fn html_made_from_text_is_escaped_and_keeps_paragraphs() {
        assert_eq!(
            html_of("Total <b>: 5 & 6\n\nBye\nnow"),
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n<p>Total &lt;b&gt;: 5 &amp; 6</p>\n<p>Bye<br>\nnow</p>\n</body></html>\n"
        );
    }

    #[test]
    fn a_bad_address_is_named() {
        let intent = email(&["ok@client.example", "not-an-address"], None);
        let e = build(&Delivery { key: "k", intent: &intent, attempt: 1, at: at() }, &sender()).expect_err("refused");
        assert_eq!(e, MessageError::Address { field: "to", address: "not-an-address".into() });
    }
}
