//! Email through a real SMTP server: headers, UTF-8 French text, Message-ID, 4xx then success,
//! 5xx permanent.

use std::time::Duration;

use base64::Engine as _;
use invoiceflow_connectors::email::{Sender, Smtp, SmtpSettings, TlsMode};
use invoiceflow_connectors::{Attempted, Connector, Delivery};
use invoiceflow_rules::script::Action;

use crate::smtp_peer::SmtpPeer;
use crate::{at, intent};

fn smtp(peer: &SmtpPeer) -> Smtp {
    Smtp::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port: peer.addr.port(),
        tls: TlsMode::None,
        credentials: None,
        sender: Sender {
            from: "Atelier Lumière <factures@atelier.example>".parse().unwrap(),
            reply_to: Some("compta@atelier.example".parse().unwrap()),
        },
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn reminder() -> invoiceflow_rules::script::Intent {
    intent(
        "workflow:payment_due",
        Action::Email {
            to: vec!["Élodie Martin <elodie@client.example>".into()],
            cc: vec!["suivi@atelier.example".into()],
            subject: "Relance : facture n° 1042 échue".into(),
            text: "Bonjour Élodie,\n\nLa facture n° 1042 de 1 250,00 € est échue depuis 7 jours.\n\nCordialement,\nAtelier Lumière".into(),
            html: None,
        },
    )
}

/// A header's value in a raw message (first occurrence, unfolded).
fn header<'a>(data: &'a str, name: &str) -> &'a str {
    data.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(": ")))
        .unwrap_or_else(|| panic!("no {name} in\n{data}"))
}

/// The decoded body of the part of type `content_type` (quoted-printable, base64, 7/8 bit).
fn part(data: &str, content_type: &str) -> String {
    let start = data.find(&format!("Content-Type: {content_type}")).unwrap_or_else(|| panic!("no {content_type}"));
    let section = &data[start..];
    let (head, rest) = section.split_once("\r\n\r\n").unwrap();
    let body = &rest[..rest.find("\r\n--").unwrap_or(rest.len())];
    if head.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).unwrap()).unwrap()
    } else if head.contains("Content-Transfer-Encoding: quoted-printable") {
        let unfolded = body.replace("=\r\n", "");
        let mut bytes = Vec::new();
        let mut chars = unfolded.bytes();
        while let Some(b) = chars.next() {
            if b == b'=' {
                let hex: Vec<u8> = chars.by_ref().take(2).collect();
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
            } else {
                bytes.push(b);
            }
        }
        String::from_utf8(bytes).unwrap()
    } else {
        body.to_owned()
    }
}

#[tokio::test]
async fn a_451_is_tried_again_and_the_retry_is_the_same_message() {
    let peer = SmtpPeer::start(&["451 4.3.0 mailbox busy, try later"]).await;
    let smtp = smtp(&peer);
    let intent = reminder();
    let key = "workflow:payment_due:atelier-fr/88:day+7:2026-11-25";
    let first = smtp.deliver(&Delivery { key, intent: &intent, attempt: 1, at: at() }).await;
    assert!(matches!(&first, Attempted::Transient { detail, .. } if detail.contains("451")), "{first:?}");
    let second = smtp.deliver(&Delivery { key, intent: &intent, attempt: 2, at: at() }).await;
    assert_eq!(second, Attempted::Delivered);

    let mails = peer.mails();
    assert_eq!(mails.len(), 2);
    assert!(mails[0].reply.starts_with("451") && mails[1].reply.starts_with("250"));
    assert_eq!(header(&mails[0].data, "Message-ID"), header(&mails[1].data, "Message-ID"), "same Message-ID");
    let mail = &mails[1];
    assert_eq!(mail.from, "<factures@atelier.example>");
    assert_eq!(mail.to, ["<elodie@client.example>", "<suivi@atelier.example>"]);
    assert!(header(&mail.data, "Message-ID").ends_with("@atelier.example>"));
    assert_eq!(header(&mail.data, "X-Invoiceflow-Key"), key);
    assert_eq!(header(&mail.data, "Reply-To"), "compta@atelier.example");
    assert_eq!(header(&mail.data, "Date"), "Wed, 25 Nov 2026 09:00:00 +0000");
    assert!(header(&mail.data, "Content-Type").starts_with("multipart/alternative"), "{}", mail.data);
    let text = part(&mail.data, "text/plain; charset=utf-8");
    assert!(text.contains("Bonjour Élodie,") && text.contains("1 250,00 € est échue"), "{text}");
    let html = part(&mail.data, "text/html; charset=utf-8");
    assert!(html.contains("<p>Bonjour Élodie,</p>") && html.contains("Atelier Lumière</p>"), "{html}");
}

#[tokio::test]
async fn a_5xx_is_permanent() {
    let peer = SmtpPeer::start(&["550 5.1.1 no such user here"]).await;
    let smtp = smtp(&peer);
    let intent = reminder();
    let outcome = smtp.deliver(&Delivery { key: "k", intent: &intent, attempt: 1, at: at() }).await;
    assert!(
        matches!(&outcome, Attempted::Permanent { detail, disable_destination: false } if detail.contains("550")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn no_server_is_a_transient_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let smtp = Smtp::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        credentials: None,
        sender: Sender { from: "a@b.example".parse().unwrap(), reply_to: None },
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let intent = reminder();
    let outcome = smtp.deliver(&Delivery { key: "k", intent: &intent, attempt: 1, at: at() }).await;
    assert!(matches!(outcome, Attempted::Transient { .. }), "{outcome:?}");
}
