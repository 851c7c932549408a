//! Slack's incoming webhooks, played by an HTTP server on 127.0.0.1: `ok`, 429 + `Retry-After`,
//! 500, `channel_not_found`, and the pace of one message a second.

use std::time::Instant;

use invoiceflow_connectors::slack::Slack;
use invoiceflow_connectors::{Attempted, Connector, Delivery};
use invoiceflow_rules::script::Action;

use crate::http_peer::{Answer, HttpPeer};
use crate::{at, intent};

fn message(text: &str) -> invoiceflow_rules::script::Intent {
    intent("payment-received", Action::Slack { destination: "finance".into(), text: text.into(), blocks: None })
}

#[tokio::test]
async fn slacks_answers_mean_what_slack_says() {
    let peer = HttpPeer::start(vec![
        Answer::new(200, "ok"),
        Answer::new(429, "rate_limited").with("Retry-After", "7"),
        Answer::new(500, "internal_error"),
        Answer::new(404, "channel_not_found"),
    ])
    .await;
    let slack = Slack::new("finance", &peer.url("/services/T/B/X"), true).unwrap();
    let outcomes = [
        slack.deliver(&Delivery { key: "k1", intent: &message("Paid: 1007 ✓"), attempt: 1, at: at() }).await,
        slack.deliver(&Delivery { key: "k2", intent: &message("b"), attempt: 1, at: at() }).await,
        slack.deliver(&Delivery { key: "k3", intent: &message("c"), attempt: 1, at: at() }).await,
        slack.deliver(&Delivery { key: "k4", intent: &message("d"), attempt: 1, at: at() }).await,
    ];
    assert_eq!(outcomes[0], Attempted::Delivered);
    assert!(
        matches!(&outcomes[1], Attempted::Transient { retry_after: Some(d), .. } if *d == chrono::Duration::seconds(7)),
        "{:?}",
        outcomes[1]
    );
    assert!(matches!(&outcomes[2], Attempted::Transient { retry_after: None, .. }), "{:?}", outcomes[2]);
    assert!(
        matches!(&outcomes[3], Attempted::Permanent { detail, disable_destination: true } if detail.contains("channel_not_found")),
        "{:?}",
        outcomes[3]
    );
    let received = peer.received();
    assert_eq!(received[0].uri.path(), "/services/T/B/X");
    assert_eq!(received[0].header("content-type"), "application/json");
    assert_eq!(received[0].body, r#"{"text":"Paid: 1007 ✓"}"#);
}

#[tokio::test]
async fn posts_to_one_webhook_go_at_most_one_a_second() {
    let peer = HttpPeer::start(vec![]).await;
    let slack = Slack::new("finance", &peer.url("/hook"), true).unwrap();
    let intents: Vec<_> = (0..4).map(|n| message(&format!("m{n}"))).collect();
    let keys = ["a", "b", "c", "d"];
    let deliveries: Vec<Delivery<'_>> =
        keys.iter().zip(&intents).map(|(key, intent)| Delivery { key, intent, attempt: 1, at: at() }).collect();
    let started = Instant::now();
    let outcomes = join_all(deliveries.iter().map(|d| slack.deliver(d)).collect()).await;
    // Slots 0, 1 and 2 s are waited for in place; the one at 3 s is deferred to its turn.
    assert_eq!(outcomes.iter().filter(|o| **o == Attempted::Delivered).count(), 3, "{outcomes:?}");
    let deferred: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Attempted::Deferred { until } => Some(*until),
            _ => None,
        })
        .collect();
    assert_eq!(deferred.len(), 1, "{outcomes:?}");
    assert!(deferred[0] >= at() + chrono::Duration::seconds(2), "deferred to its turn: {deferred:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "three posts take two seconds at least");
    assert_eq!(peer.received().len(), 3);
}

/// Polls the futures together until all are ready (each Slack post sleeps for its own slot).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, r) in pinned.iter_mut().zip(results.iter_mut()) {
            if r.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *r = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    results.into_iter().map(|r| r.expect("ready")).collect()
}
