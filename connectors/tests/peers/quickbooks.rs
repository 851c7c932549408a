//! QuickBooks' send-invoice against a server shaped like the QuickBooks API.

use std::collections::BTreeMap;

use invoiceflow_connectors::quickbooks::{Company, QuickBooks};
use invoiceflow_connectors::secret::SecretString;
use invoiceflow_connectors::{Attempted, Connector, Delivery};
use invoiceflow_rules::script::Action;
use invoiceflow_rules::{AccountName, RecordId, RecordKey, RecordKind};

use crate::http_peer::{Answer, HttpPeer};
use crate::{at, intent};

const SENT: &str = r#"{"Invoice":{"Id":"239","DocNumber":"1042","EmailStatus":"EmailSent","BillEmail":{"Address":"ap@client.example"}},"time":"2026-11-25T01:00:00.000-08:00"}"#;

fn quickbooks(peer: &HttpPeer) -> QuickBooks {
    let companies = BTreeMap::from([(
        AccountName::new("acme-us").unwrap(),
        Company::new("9341453050298464", &peer.url("/"), SecretString::new("eyJ-access")).unwrap(),
    )]);
    QuickBooks::new(companies).unwrap()
}

fn send(to: Option<&str>) -> invoiceflow_rules::script::Intent {
    let invoice =
        RecordKey::new(RecordKind::Invoice, AccountName::new("acme-us").unwrap(), RecordId::new("239").unwrap());
    intent("unsent-invoices", Action::SendInvoice { invoice, to: to.map(str::to_owned) })
}

#[tokio::test]
async fn send_invoice_posts_to_the_invoice_with_minorversion_and_the_token() {
    let peer = HttpPeer::start(vec![Answer::new(200, SENT)]).await;
    let outcome = quickbooks(&peer)
        .deliver(&Delivery { key: "k", intent: &send(Some("ap@client.example")), attempt: 1, at: at() })
        .await;
    assert_eq!(outcome, Attempted::Delivered);
    let received = peer.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri.path(), "/v3/company/9341453050298464/invoice/239/send");
    assert_eq!(r.uri.query(), Some("minorversion=75&sendTo=ap%40client.example"));
    assert_eq!(r.header("authorization"), "Bearer eyJ-access");
    assert!(r.body.is_empty(), "no body");
}

#[tokio::test]
async fn a_fault_in_a_200_and_a_429_are_read_as_quickbooks_means_them() {
    let fault = r#"{"Fault":{"Error":[{"Message":"Invalid Email Address","Detail":"sendTo","code":"6140"}],"type":"ValidationFault"}}"#;
    let peer = HttpPeer::start(vec![Answer::new(200, fault), Answer::new(429, "")]).await;
    let qb = quickbooks(&peer);
    let first = qb.deliver(&Delivery { key: "k", intent: &send(Some("nope")), attempt: 1, at: at() }).await;
    assert!(matches!(&first, Attempted::Permanent { detail, .. } if detail.contains("6140")), "{first:?}");
    let second = qb.deliver(&Delivery { key: "k2", intent: &send(None), attempt: 1, at: at() }).await;
    assert!(
        matches!(&second, Attempted::Transient { retry_after: Some(d), .. } if *d == chrono::Duration::seconds(60)),
        "{second:?}"
    );
}

#[tokio::test]
async fn an_unconnected_company_is_a_clear_permanent_failure() {
    let peer = HttpPeer::start(vec![]).await;
    let qb = QuickBooks::new(BTreeMap::new()).unwrap();
    let outcome = qb.deliver(&Delivery { key: "k", intent: &send(None), attempt: 1, at: at() }).await;
    assert!(
        matches!(&outcome, Attempted::Permanent { detail, .. } if detail.contains("[quickbooks.acme-us]")),
        "{outcome:?}"
    );
    assert!(peer.received().is_empty());
}
