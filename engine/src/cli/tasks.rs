//! `invoiceflow tasks`: the task manager — list, show, create, done, approve, reject.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use invoiceflow::store::{NewTask, Store, StoredTask, TaskClose, TaskQuery};
use invoiceflow_rules::script::def::parse_kind;

use super::Env;

/// What to do with tasks.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Tasks, oldest first (open ones unless `--status` says otherwise).
    List(ListArgs),
    /// One task, whole.
    Show(IdArgs),
    /// Make a task by hand.
    Create(CreateArgs),
    /// Mark a task done.
    Done(CloseArgs),
    /// Approve an approval task.
    Approve(CloseArgs),
    /// Reject an approval task.
    Reject(CloseArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// open (default), done, approved, rejected, or all.
    #[arg(long, default_value = "open")]
    status: String,
    /// Only those assigned to this name or address.
    #[arg(long)]
    assignee: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The task's number.
    id: i64,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// What to do.
    #[arg(long)]
    title: String,
    /// Details.
    #[arg(long)]
    notes: Option<String>,
    /// Who should do it.
    #[arg(long)]
    assignee: Option<String>,
    /// When it is due (YYYY-MM-DD).
    #[arg(long)]
    due: Option<chrono::NaiveDate>,
    /// The record it is about: ID, or ACCOUNT/ID when the id is in several companies.
    #[arg(long, value_name = "RECORD")]
    record: Option<String>,
    /// The record's kind: invoice (default), bill, payment, deposit.
    #[arg(long, default_value = "invoice")]
    kind: String,
    /// An approval task (approve / reject) rather than a plain one.
    #[arg(long)]
    approval: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CloseArgs {
    /// The task's number.
    id: i64,
    /// Who closes it (default: $USER).
    #[arg(long, env = "USER", default_value = "someone")]
    by: String,
    /// A note kept with it (why it was rejected…).
    #[arg(long)]
    comment: Option<String>,
}

const STATUSES: [&str; 5] = ["open", "done", "approved", "rejected", "all"];

fn line(t: &StoredTask) -> String {
    let due = t.task.due.map(|d| format!(" due {d}")).unwrap_or_default();
    let who = t.task.assignee.as_deref().map(|a| format!(" for {a}")).unwrap_or_default();
    let kind = if t.task.approval { " (approval)" } else { "" };
    format!("{:>5}  {:<8} {}{kind}{who}{due}", t.id, t.status, t.task.title)
}

pub(crate) async fn run<S: Store>(command: TaskCommand, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let now = env.clock.now.instant();
    match command {
        TaskCommand::List(a) => {
            if !STATUSES.contains(&a.status.as_str()) {
                anyhow::bail!("no status {:?}: {}", a.status, STATUSES.join(", "));
            }
            let status = (a.status != "all").then(|| a.status.clone());
            let query = TaskQuery { status, assignee: a.assignee, record: None, id: None, limit: a.limit };
            for t in store.tasks(&query).await? {
                if a.json {
                    out!("{}", serde_json::to_string(&t)?);
                } else {
                    out!("{}", line(&t));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Show(a) => {
            let query = TaskQuery { id: Some(a.id), limit: 1, ..Default::default() };
            let Some(t) = store.tasks(&query).await?.into_iter().next() else {
                anyhow::bail!("no task {}", a.id);
            };
            out!("{}", line(&t));
            if let Some(notes) = &t.task.notes {
                out!("       notes: {notes}");
            }
            if let Some(record) = &t.task.record {
                out!("       about: {record}");
            }
            out!("       made by {} at {}", t.task.source, t.created_at.format("%Y-%m-%d %H:%M UTC"));
            if let (Some(at), Some(by)) = (t.closed_at, &t.closed_by) {
                let comment = t.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
                out!("       {} by {by} at {}{comment}", t.status, at.format("%Y-%m-%d %H:%M UTC"));
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Create(a) => {
            let kind = parse_kind(&a.kind)
                .ok_or_else(|| anyhow::anyhow!("--kind {:?}: invoice, bill, payment or deposit", a.kind))?;
            let record = match &a.record {
                Some(text) => Some(super::holders::resolve(store, kind, text).await?.record.key().clone()),
                None => None,
            };
            let task = NewTask {
                key: None,
                title: a.title,
                notes: a.notes,
                assignee: a.assignee,
                due: a.due,
                approval: a.approval,
                record,
                source: "manual".into(),
            };
            let (id, _) = store.create_task(&task, now).await?;
            out!("task {id} created");
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Done(a) => close(store, a, TaskClose::Done, now).await,
        TaskCommand::Approve(a) => close(store, a, TaskClose::Approved, now).await,
        TaskCommand::Reject(a) => close(store, a, TaskClose::Rejected, now).await,
    }
}

async fn close<S: Store>(
    store: &S,
    a: CloseArgs,
    how: TaskClose,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<ExitCode> {
    if store.close_task(a.id, how, &a.by, a.comment.as_deref(), now).await? {
        out!("task {} {}", a.id, how.status());
        return Ok(ExitCode::SUCCESS);
    }
    let query = TaskQuery { id: Some(a.id), limit: 1, ..Default::default() };
    match store.tasks(&query).await?.into_iter().next() {
        None => anyhow::bail!("no task {}", a.id),
        Some(t) if t.status != "open" => anyhow::bail!("task {} is already {}", a.id, t.status),
        Some(t) if t.task.approval => anyhow::bail!("task {} needs approving or rejecting, not done", a.id),
        Some(_) => anyhow::bail!("task {} is a plain task: mark it done", a.id),
    }
}
