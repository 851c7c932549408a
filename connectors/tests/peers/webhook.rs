//! Signed webhooks to a receiver on 127.0.0.1 that checks the signature itself, per Standard
//! Webhooks; redirects not followed; 410 disables; private targets refused unless allowed.

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use invoiceflow_connectors::http::HttpError;
use invoiceflow_connectors::webhook::{Secret, Webhook};
use invoiceflow_connectors::{Attempted, Connector, Delivery};
use invoiceflow_rules::script::Action;
use sha2::Sha256;

use crate::http_peer::{Answer, HttpPeer};
use crate::{at, intent};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn event() -> invoiceflow_rules::script::Intent {
    intent(
        "invoice-overdue",
        Action::Webhook {
            destination: "erp".into(),
            payload: serde_json::json!({"invoice": "1042", "balance": "1250.00"}),
        },
    )
}

/// What a receiver does: recompute the signature from the raw body with the shared secret.
fn verifies(received: &crate::http_peer::Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let signed =
        format!("{}.{}.{}", received.header("webhook-id"), received.header("webhook-timestamp"), received.body);
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    received.header("webhook-signature").split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn the_receiver_verifies_the_signature_and_the_id_is_the_key_on_every_attempt() {
    let peer = HttpPeer::start(vec![Answer::new(503, "busy"), Answer::new(204, "")]).await;
    let hook = Webhook::new(&peer.url("/hooks/invoiceflow"), Secret::parse(SECRET).unwrap(), true).unwrap();
    let intent = event();
    let key = "rule:invoice-overdue:acme-us/239:3";
    let first = hook.deliver(&Delivery { key, intent: &intent, attempt: 1, at: at() }).await;
    assert!(matches!(&first, Attempted::Transient { detail, .. } if detail == "HTTP 503"), "{first:?}");
    let later = at() + chrono::Duration::seconds(5);
    assert_eq!(hook.deliver(&Delivery { key, intent: &intent, attempt: 2, at: later }).await, Attempted::Delivered);
    let received = peer.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert!(verifies(r), "signature checks out: {r:?}");
        assert_eq!(r.header("webhook-id"), key);
        assert_eq!(r.header("content-type"), "application/json");
    }
    assert_eq!(received[1].header("webhook-timestamp"), later.timestamp().to_string());
    let body: serde_json::Value = serde_json::from_str(&received[1].body).unwrap();
    assert_eq!(body["type"], "rule.invoice-overdue");
    assert_eq!(body["data"]["invoice"], "1042");
    // A body changed on the way no longer verifies.
    let mut tampered = received[1].clone();
    tampered.body = tampered.body.replace("1042", "1043");
    assert!(!verifies(&tampered));
}

#[tokio::test]
async fn redirects_are_failures_and_are_not_followed() {
    let peer = HttpPeer::start(vec![Answer::new(302, "").with("Location", "/elsewhere")]).await;
    let hook = Webhook::new(&peer.url("/hook"), Secret::parse(SECRET).unwrap(), true).unwrap();
    let outcome = hook.deliver(&Delivery { key: "k", intent: &event(), attempt: 1, at: at() }).await;
    assert!(matches!(&outcome, Attempted::Transient { detail, .. } if detail.contains("not followed")), "{outcome:?}");
    assert_eq!(peer.received().len(), 1, "the redirect's target was not asked");
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let peer = HttpPeer::start(vec![Answer::new(410, "gone")]).await;
    let hook = Webhook::new(&peer.url("/hook"), Secret::parse(SECRET).unwrap(), true).unwrap();
    let outcome = hook.deliver(&Delivery { key: "k", intent: &event(), attempt: 1, at: at() }).await;
    assert!(matches!(outcome, Attempted::Permanent { disable_destination: true, .. }), "{outcome:?}");
}

#[tokio::test]
async fn private_targets_are_refused_unless_the_configuration_allows_them() {
    let peer = HttpPeer::start(vec![]).await;
    match Webhook::new(&peer.url("/hook"), Secret::parse(SECRET).unwrap(), false) {
        Err(HttpError::Refused { why, .. }) => assert_eq!(why, "loopback"),
        other => panic!("{other:?}"),
    }
    assert!(peer.received().is_empty());
}
