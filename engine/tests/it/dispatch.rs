//! The outbox delivered: rounds of `dispatch::Dispatcher` over a real SQLite store, through the
//! file sink (a real file) or a peer that answers as it is told, at instants a fixed clock gives.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use invoiceflow::clock::{Clock, Now};
use invoiceflow::config::Config;
use invoiceflow::dispatch::{Dispatcher, Round};
use invoiceflow::reminders;
use invoiceflow::store::{DeliveryQuery, IntentQuery, SqliteStore, Store, StoredDelivery};
use invoiceflow_connectors::sink::FileSink;
use invoiceflow_connectors::{Attempted, Attempting, Connector, Delivery};
use invoiceflow_rules::workflow::config::{Channel, Stage, WorkflowConfig, WorkflowKind};
use serde_json::{Value, json};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A peer that answers each attempt with the next scripted outcome (then `Delivered`), and
/// remembers the keys it was given.
#[derive(Default)]
struct Peer {
    script: Mutex<Vec<Attempted>>,
    seen: Mutex<Vec<(String, u32)>>,
}

impl Connector for Peer {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        self.seen.lock().unwrap().push((d.key.to_owned(), d.attempt));
        let mut script = self.script.lock().unwrap();
        let outcome = if script.is_empty() { Attempted::Delivered } else { script.remove(0) };
        Box::pin(async move { outcome })
    }
}

struct World {
    dir: tempfile::TempDir,
    store: SqliteStore,
    config: Config,
    workflows: BTreeMap<WorkflowKind, WorkflowConfig>,
}

impl World {
    /// One invoice of Acme in New York, due 2026-12-10, reminded on its due date at 09:00.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoiceflow.toml");
        std::fs::write(&path, "[company]\ntime_zone = \"America/New_York\"\n").unwrap();
        let config = Config::load(Some(&path)).unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        let mut c = WorkflowKind::PaymentDue.defaults();
        c.enabled = true;
        c.stages = vec![Stage::new(0, vec![Channel::CustomerEmail])];
        let workflows = BTreeMap::from([(WorkflowKind::PaymentDue, c)]);
        let w = Self { dir, store, config, workflows };
        w.import("2026-11-10T12:00:00Z", "500.00").await;
        w
    }

    fn clock(&self, now: &str) -> Clock {
        Clock { now: Now::At(at(now)), companies: self.config.companies.clone() }
    }

    async fn import(&self, now: &str, balance: &str) {
        let invoice: Value = json!({"type": "invoice", "id": "42", "number": "1042", "customer": "Acme",
            "recipient": "ap@acme.example", "amount": "500.00", "balance": balance, "currency": "USD",
            "txn_date": "2026-11-10", "due_date": "2026-12-10", "email_status": "EmailSent", "updated_at": now});
        crate::support::import(&self.store, &self.clock(now), "default", &[invoice]).await;
    }

    /// The reminder decided: switched on the day before, then the pass at 09:00:30 on the 10th.
    async fn decide(&self) {
        reminders::pass(&self.store, &self.workflows, &self.clock("2026-12-09T12:00:00Z")).await.unwrap();
        let d = reminders::pass(&self.store, &self.workflows, &self.clock("2026-12-10T14:00:30Z")).await.unwrap();
        assert_eq!(d.sent, 1);
    }

    async fn round<C: Connector>(&self, node: &str, connector: &C, now: &str) -> Round {
        let dispatcher =
            Dispatcher { node: node.into(), lease: Duration::seconds(60), batch: 10, concurrency: 4, alerts: None };
        dispatcher.round(&self.store, connector, &self.workflows, &self.clock(now), || 0.5).await.unwrap()
    }

    async fn deliveries(&self) -> Vec<StoredDelivery> {
        self.store
            .deliveries(&DeliveryQuery { status: None, of: IntentQuery { limit: 100, ..Default::default() } })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_decided_reminder_reaches_the_sink_once() {
    let w = World::new().await;
    w.decide().await;
    let sink = FileSink::new(w.dir.path().join("sent/outbox.jsonl"));
    let round = w.round("a", &sink, "2026-12-10T14:00:31Z").await;
    assert_eq!((round.claimed, round.delivered), (1, 1));
    assert_eq!(w.round("a", &sink, "2026-12-10T14:01:00Z").await, Round::default(), "nothing twice");
    let text = std::fs::read_to_string(sink.path()).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["key"], "workflow:payment_due:invoice default/42:day+0:2026-12-10:0");
    assert_eq!(lines[0]["payload"]["to"], json!(["ap@acme.example"]));
    let d = &w.deliveries().await[0];
    assert_eq!((d.status.as_str(), d.attempts), ("delivered", 1));
}

#[tokio::test]
async fn a_transient_failure_is_retried_on_schedule_with_the_same_key() {
    let w = World::new().await;
    w.decide().await;
    let peer = Peer::default();
    peer.script.lock().unwrap().push(Attempted::Transient { retry_after: None, detail: "451 greylisted".into() });
    let first = w.round("a", &peer, "2026-12-10T14:00:31Z").await;
    assert_eq!((first.claimed, first.retrying), (1, 1));
    let d = &w.deliveries().await[0];
    assert_eq!((d.status.as_str(), d.reason.as_deref()), ("pending", Some("451 greylisted")));
    assert_eq!(d.next_at, at("2026-12-10T14:05:31Z"), "email: five minutes later");
    assert_eq!(w.round("a", &peer, "2026-12-10T14:05:00Z").await.claimed, 0, "not before its time");
    assert_eq!(w.round("a", &peer, "2026-12-10T14:05:31Z").await.delivered, 1);
    let seen = peer.seen.lock().unwrap().clone();
    let key = "workflow:payment_due:invoice default/42:day+0:2026-12-10:0".to_owned();
    assert_eq!(seen, [(key.clone(), 1), (key, 2)], "the same key on every attempt");
}

#[tokio::test]
async fn a_permanent_failure_is_dead_and_a_paid_invoice_is_not_reminded() {
    let w = World::new().await;
    w.decide().await;
    let peer = Peer::default();
    peer.script
        .lock()
        .unwrap()
        .push(Attempted::Permanent { detail: "550 no such user".into(), disable_destination: false });
    assert_eq!(w.round("a", &peer, "2026-12-10T14:00:31Z").await.failed, 1);
    assert_eq!(w.deliveries().await[0].status, "dead");

    // Another: paid after the reminder was decided, before it went out.
    let w = World::new().await;
    w.decide().await;
    w.import("2026-12-10T14:00:40Z", "0.00").await;
    let peer = Peer::default();
    assert_eq!(w.round("a", &peer, "2026-12-10T14:00:45Z").await.cancelled, 1);
    assert!(peer.seen.lock().unwrap().is_empty(), "nothing sent");
    let d = &w.deliveries().await[0];
    assert_eq!((d.status.as_str(), d.reason.as_deref()), ("cancelled", Some("no longer due: stopped: paid")));
}

#[tokio::test]
async fn a_dead_nodes_lease_runs_out_and_another_node_delivers() {
    let w = World::new().await;
    w.decide().await;
    // Node a leases the delivery and dies before finishing: nothing recorded.
    let claimed = w.store.claim("a", at("2026-12-10T14:00:31Z"), Duration::seconds(60), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let sink = FileSink::new(w.dir.path().join("out.jsonl"));
    assert_eq!(w.round("b", &sink, "2026-12-10T14:01:00Z").await.claimed, 0, "still a's");
    assert_eq!(w.round("b", &sink, "2026-12-10T14:01:32Z").await.delivered, 1, "a's lease ran out");
    assert_eq!(std::fs::read_to_string(sink.path()).unwrap().lines().count(), 1);
}

#[tokio::test]
async fn a_task_action_makes_one_task_in_the_task_manager_however_often_it_is_tried() {
    use invoiceflow::store::TaskQuery;
    use invoiceflow::tasks::{TaskManager, WithTasks};
    let mut w = World::new().await;
    let config = w.workflows.get_mut(&WorkflowKind::PaymentDue).unwrap();
    config.stages =
        vec![Stage::new(0, vec![Channel::CustomerEmail, Channel::Task { assignee: Some("collections".into()) }])];
    w.decide().await;
    let sink = FileSink::new(w.dir.path().join("out.jsonl"));
    let now = at("2026-12-10T14:00:31Z");
    let routes = WithTasks { tasks: TaskManager { store: &w.store, now }, other: &sink };
    assert_eq!(w.round("a", &routes, "2026-12-10T14:00:31Z").await.delivered, 2);
    let tasks = w.store.tasks(&TaskQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!((t.task.assignee.as_deref(), t.task.source.as_str()), (Some("collections"), "workflow:payment_due"));
    assert_eq!(t.task.record.as_ref().map(ToString::to_string).as_deref(), Some("invoice default/42"));
    assert!(t.task.title.contains("1042"), "{t:?}");
    assert_eq!(std::fs::read_to_string(sink.path()).unwrap().lines().count(), 1, "the email went to the sink");

    // Another reminder: node a makes the task and dies before recording it; node b tries again
    // once a's lease ran out, and the task manager knows the key.
    let mut w2 = World::new().await;
    w2.workflows = w.workflows.clone();
    w2.decide().await;
    let claimed = w2.store.claim("a", now, Duration::seconds(60), 10).await.unwrap();
    let task = claimed.iter().find(|c| c.intent.action.kind() == "task").unwrap();
    let routes2 = WithTasks { tasks: TaskManager { store: &w2.store, now }, other: &sink };
    let first = routes2.deliver(&Delivery { key: &task.key, intent: &task.intent, attempt: 1, at: now }).await;
    assert_eq!(first, Attempted::Delivered);
    assert_eq!(w2.round("b", &routes2, "2026-12-10T14:01:40Z").await.delivered, 2);
    let all = TaskQuery { limit: 10, ..Default::default() };
    assert_eq!(w2.store.tasks(&all).await.unwrap().len(), 1, "one task for one delivery");
}
