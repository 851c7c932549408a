//! The task manager as a delivery channel: a task action becomes a task in the store, once per
//! delivery key however often it is tried, linked to its record and to the rule or workflow that
//! made it.

use chrono::{DateTime, Utc};
use invoiceflow_connectors::{Attempted, Attempting, Connector, Delivery};
use invoiceflow_rules::script::Action;

use crate::store::{NewTask, Store};

/// Delivers task actions into the store's task manager.
pub struct TaskManager<'a, S> {
    /// The store.
    pub store: &'a S,
    /// When the tasks are made.
    pub now: DateTime<Utc>,
}

impl<S: Store> Connector for TaskManager<'_, S> {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        Box::pin(self.make(d))
    }
}

impl<S: Store> TaskManager<'_, S> {
    /// Makes the task of delivery `d`, once per key.
    async fn make(&self, d: &Delivery<'_>) -> Attempted {
        let Action::Task { title, notes, assignee, due, approval } = &d.intent.action else {
            return Attempted::Permanent {
                detail: format!("the task manager takes tasks, not {}", d.intent.action.kind()),
                disable_destination: false,
            };
        };
        let task = NewTask {
            key: Some(d.key.to_owned()),
            title: title.clone(),
            notes: notes.clone(),
            assignee: assignee.clone(),
            due: *due,
            approval: *approval,
            record: d.intent.record.record().cloned(),
            source: d.intent.rule.clone(),
        };
        match self.store.create_task(&task, self.now).await {
            Ok(_) => Attempted::Delivered,
            Err(e) => Attempted::Transient { retry_after: None, detail: e.to_string() },
        }
    }
}

/// Tasks to the task manager, everything else to `other`.
pub struct WithTasks<'a, S, C> {
    /// The task manager.
    pub tasks: TaskManager<'a, S>,
    /// Where the other channels go.
    pub other: &'a C,
}

impl<S: Store, C: Connector> Connector for WithTasks<'_, S, C> {
    fn deliver<'a>(&'a self, d: &'a Delivery<'a>) -> Attempting<'a> {
        match d.intent.action {
            Action::Task { .. } => self.tasks.deliver(d),
            _ => self.other.deliver(d),
        }
    }
}
