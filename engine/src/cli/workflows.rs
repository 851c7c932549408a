//! `invoiceflow workflows` (the four standard reminder workflows and their settings) and
//! `invoiceflow simulate` (what would fire between two dates, sending nothing).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use invoiceflow::store::{Store, Stored};
use invoiceflow_rules::RecordKind;
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::script::{Action, Subject};
use invoiceflow_rules::workflow::config::{Anchor, CatchUp, Channel, Language, WorkflowConfig, WorkflowKind};
use invoiceflow_rules::workflow::plan::{due_between, qualifies};
use invoiceflow_rules::workflow::template;
use invoiceflow_rules::workflow::time::local_instant;
use serde_json::json;

use super::Env;
use super::timeline::{Row, Timeline};

#[derive(Debug, Args)]
pub(crate) struct WorkflowsArgs {
    /// One JSON object per workflow instead of text.
    #[arg(long)]
    json: bool,
}

fn channel_text(c: &Channel) -> String {
    match c {
        Channel::CustomerEmail => "customer email".into(),
        Channel::TeamEmail { destination } => format!("email {destination}"),
        Channel::Slack { destination } => format!("slack {destination}"),
        Channel::Task { assignee: Some(a) } => format!("task for {a}"),
        Channel::Task { assignee: None } => "task".into(),
    }
}

fn describe(c: &WorkflowConfig) -> Vec<String> {
    let anchor = match c.anchor {
        Anchor::DueDate => "due date",
        Anchor::InvoiceDate => "invoice date",
        Anchor::PaymentDate => "payment date",
    };
    let mut stages: Vec<_> = c.stages.iter().collect();
    stages.sort_by_key(|s| s.days);
    let stages: Vec<String> = stages
        .iter()
        .map(|s| format!("{:+} {}", s.days, s.channels.iter().map(channel_text).collect::<Vec<_>>().join(" + ")))
        .collect();
    let mut first = format!("from the {anchor}: {}", stages.join("; "));
    if let Some(r) = c.repeat {
        first.push_str(&format!("; then every {} days, at most {} times", r.every_days, r.max));
    }
    let days: Vec<String> = c.window.days.iter().map(ToString::to_string).collect();
    let catch_up = match c.catch_up {
        CatchUp::Skip => "skip missed".to_owned(),
        CatchUp::OnceWithinGrace { grace_hours } => format!("catch up once within {grace_hours} h"),
        CatchUp::All => "catch up all".to_owned(),
    };
    let mut second = format!(
        "at {} in the window {} {}–{}; templates in {}; {catch_up}",
        c.send_time.format("%H:%M"),
        days.join(","),
        c.window.start.format("%H:%M"),
        c.window.end.format("%H:%M"),
        match c.language {
            Some(Language::En) => "English",
            Some(Language::Fr) => "French",
            None => "each company's language",
        }
    );
    if !c.min_balance.is_empty() {
        let mins: Vec<String> = c.min_balance.iter().map(|(cur, v)| format!("{v} {cur}")).collect();
        second.push_str(&format!("; minimum {}", mins.join(", ")));
    }
    if !c.include.is_empty() {
        second.push_str(&format!("; only {}", c.include.join(", ")));
    }
    if !c.exclude.is_empty() {
        second.push_str(&format!("; never {}", c.exclude.join(", ")));
    }
    vec![first, second]
}

pub(crate) fn list(args: &WorkflowsArgs, env: &Env) -> anyhow::Result<ExitCode> {
    for (kind, c) in &env.config.workflows {
        if args.json {
            out!("{}", json!({"workflow": kind.as_str(), "settings": c}));
            continue;
        }
        let lines = describe(c);
        out!("{:<15} {:<4} {}", kind.as_str(), if c.enabled { "on" } else { "off" }, lines[0]);
        out!("{:<20} {}", "", lines[1]);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// First day (YYYY-MM-DD, in each company's time zone).
    #[arg(long, value_name = "DATE")]
    from: NaiveDate,
    /// Last day, included.
    #[arg(long, value_name = "DATE")]
    to: NaiveDate,
    /// Only this workflow (repeatable): payment_due, vendor_payment, bank_deposit, unsent_invoice.
    #[arg(long, value_name = "W")]
    workflow: Vec<String>,
    /// Only this scheduled rule (repeatable; its file name without `.toml`).
    #[arg(long, value_name = "RULE")]
    rule: Vec<String>,
    /// Include workflows not switched on (to preview them).
    #[arg(long)]
    include_disabled: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// What a line says.
struct Firing<'a> {
    at: DateTime<Utc>,
    zone: chrono_tz::Tz,
    source: &'a str,
    record: &'a str,
    stage: &'a str,
    key: String,
    actions: &'a [Action],
}

/// A `--json` line (fields in name order, as before).
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    actions: &'a [serde_json::Value],
    at: &'a str,
    key: &'a str,
    local_time: &'a str,
    record: &'a str,
    source: &'a str,
    stage: &'a str,
}

impl Firing<'_> {
    fn row(self, json: bool) -> Row {
        let local = self.at.with_timezone(&self.zone).format("%Y-%m-%d %H:%M %Z").to_string();
        let line = if json {
            let actions: Vec<_> = self.actions.iter().map(action_json).collect();
            let at = self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let line = JsonLine {
                actions: &actions,
                at: &at,
                key: &self.key,
                local_time: &local,
                record: self.record,
                source: self.source,
                stage: self.stage,
            };
            serde_json::to_string(&line).unwrap_or_default()
        } else {
            let what: Vec<String> = self.actions.iter().map(super::actions::describe).collect();
            format!("{local}  {:<24} {:<28} {:<9} {}", self.source, self.record, self.stage, what.join("; "))
        };
        Row { at: self.at, key: self.key, line }
    }
}

fn kind_of(w: WorkflowKind) -> RecordKind {
    match w {
        WorkflowKind::PaymentDue | WorkflowKind::UnsentInvoice => RecordKind::Invoice,
        WorkflowKind::VendorPayment => RecordKind::Bill,
        WorkflowKind::BankDeposit => RecordKind::Payment,
    }
}

/// Records read per query.
const PAGE: u32 = 5000;

async fn all_of<S: Store>(store: &S, kind: RecordKind) -> anyhow::Result<Vec<Stored>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.records_of_kind(kind, after.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.record.key().clone());
        out.extend(page);
    }
    Ok(out)
}

fn action_json(a: &Action) -> serde_json::Value {
    match a {
        Action::Email { to, subject, .. } => json!({"channel": "email", "to": to, "subject": subject}),
        Action::Slack { destination, text, .. } => {
            json!({"channel": "slack", "destination": destination, "text": text})
        }
        Action::Webhook { destination, .. } => json!({"channel": "webhook", "destination": destination}),
        Action::Task { title, assignee, .. } => json!({"channel": "task", "to": assignee, "text": title}),
        Action::SendInvoice { invoice, to } => {
            json!({"channel": "send_invoice", "to": to, "text": invoice.to_string()})
        }
    }
}

pub(crate) async fn simulate<S: Store>(args: SimulateArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    if args.to < args.from {
        anyhow::bail!("--to {} is before --from {}", args.to, args.from);
    }
    let mut chosen = Vec::new();
    for name in &args.workflow {
        chosen.push(WorkflowKind::parse(name).ok_or_else(|| {
            anyhow::anyhow!("no workflow {name:?}: payment_due, vendor_payment, bank_deposit, unsent_invoice")
        })?);
    }
    let mut timeline = Timeline::new().context("cannot create the simulation's temporary files")?;
    // With only rules named, no workflow; with only workflows named, no rule.
    let workflows_wanted = !chosen.is_empty() || args.rule.is_empty();
    let rules_wanted = !args.rule.is_empty() || chosen.is_empty();
    let flows: Vec<(WorkflowKind, &WorkflowConfig)> = env
        .config
        .workflows
        .iter()
        .filter(|(kind, config)| {
            workflows_wanted
                && (chosen.is_empty() || chosen.contains(kind))
                && (config.enabled || args.include_disabled)
        })
        .map(|(k, c)| (*k, c))
        .collect();
    for record_kind in [RecordKind::Invoice, RecordKind::Bill, RecordKind::Payment] {
        let flows: Vec<&(WorkflowKind, &WorkflowConfig)> =
            flows.iter().filter(|(k, _)| kind_of(*k) == record_kind).collect();
        if flows.is_empty() {
            continue;
        }
        // Page by page: the records are read once for every workflow about them, and not kept.
        // Each page is planned on a blocking thread while the next one is read and decoded.
        let flows: std::sync::Arc<Vec<(WorkflowKind, WorkflowConfig)>> =
            std::sync::Arc::new(flows.iter().map(|(k, c)| (*k, (*c).clone())).collect());
        let companies = std::sync::Arc::new(env.config.companies.clone());
        let (from, to, json) = (args.from, args.to, args.json);
        let mut after = None;
        let mut pending: Option<tokio::task::JoinHandle<Vec<Row>>> = None;
        loop {
            let page = store.records_of_kind(record_kind, after.as_ref(), PAGE).await?;
            if let Some(planned) = pending.take() {
                for row in planned.await.context("planning a page of records stopped")? {
                    timeline.push(&row)?;
                }
            }
            let Some(last) = page.last().map(|s| s.record.key().clone()) else { break };
            after = Some(last);
            let (flows, companies) = (flows.clone(), companies.clone());
            pending = Some(tokio::task::spawn_blocking(move || plan_page(page, &flows, &companies, from, to, json)));
        }
    }
    if rules_wanted {
        scheduled_rules(&args, env, store, &mut timeline).await?;
    }
    let count = timeline.len();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let printed = timeline.drain(|line| writeln!(out, "{line}"));
    match printed.and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other?,
    }
    drop(out);
    if !args.json {
        out!("{count} firings from {} to {}", args.from, args.to);
    }
    Ok(ExitCode::SUCCESS)
}

/// The workflow firings of a page of records between `from` and `to`, as timeline rows.
fn plan_page(
    page: Vec<Stored>,
    flows: &[(WorkflowKind, WorkflowConfig)],
    companies: &invoiceflow::config::Companies,
    from: NaiveDate,
    to: NaiveDate,
    json: bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let tick = chrono::Duration::nanoseconds(1);
    for stored in page {
        let key = stored.record.key().clone();
        let record = key.to_string();
        let zone = companies.get(&key.account).time_zone;
        let company_language = companies.language(&key.account);
        // The period, from the first day's start to the last one's end in the record's zone.
        let after = local_instant(zone, from, chrono::NaiveTime::MIN) - tick;
        let through = local_instant(zone, to + chrono::Duration::days(1), chrono::NaiveTime::MIN) - tick;
        let base = subject_of(stored.record, from, stored.status == "deposited");
        for (kind, config) in flows {
            let Ok(plan) = due_between(*kind, config, &base, zone, after, through) else { continue };
            for firing in &plan {
                let Some(at) = firing.at else { continue };
                let day = at.with_timezone(&zone).date_naive();
                // The record as it will be that day: time-dependent statuses move on.
                let subject: Subject = base.on_day(day);
                if qualifies(*kind, config, &subject, day).is_err() {
                    continue;
                }
                let language = config.language_for(template::party(&subject), company_language);
                let actions = template::headlines(firing, config, &subject, day, language);
                let source = format!("workflow:{kind}");
                let stage = firing.step.to_string();
                rows.push(
                    Firing {
                        at,
                        zone,
                        source: &source,
                        record: &record,
                        stage: &stage,
                        key: firing.key.clone(),
                        actions: &actions,
                    }
                    .row(json),
                );
            }
        }
    }
    rows
}

/// The firings of scheduled rules between the two dates: each slot of each enabled rule (in each
/// company's zone, or the rule's), over the records of its kind as they will be that day; a record
/// fires when it starts matching (HubSpot's re-enrollment), as the running engine decides.
async fn scheduled_rules<S: Store>(
    args: &SimulateArgs,
    env: &Env,
    store: &S,
    timeline: &mut Timeline,
) -> anyhow::Result<()> {
    use invoiceflow_rules::script::{Cause, Input, Trigger};
    use std::collections::{HashMap, HashSet};
    let Some((host, rules)) = super::rules::runnable(&env.config)? else {
        if !args.rule.is_empty() {
            anyhow::bail!("no rules directory: give a configuration file with [rules] dir (see --config)");
        }
        return Ok(());
    };
    for name in &args.rule {
        if !rules.iter().any(|r| r.def.id.as_str() == name) {
            anyhow::bail!("no rule {name:?} in the rules directory (or it does not compile: see `invoiceflow check`)");
        }
    }
    let mut records: HashMap<RecordKind, Vec<Stored>> = HashMap::new();
    for rule in &rules {
        if (!args.rule.is_empty() && !args.rule.iter().any(|r| r == rule.def.id.as_str())) || !rule.def.enabled {
            continue;
        }
        let schedules: Vec<_> = rule
            .def
            .triggers
            .iter()
            .filter_map(|t| match t {
                Trigger::Schedule { schedule, zone, .. } => Some((schedule, *zone)),
                _ => None,
            })
            .collect();
        if schedules.is_empty() {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = records.entry(rule.def.records) {
            slot.insert(all_of(store, rule.def.records).await?);
        }
        let stored = records.get(&rule.def.records).map(Vec::as_slice).unwrap_or_default();
        // Every slot of every zone the records live in, in time order.
        let mut slots: Vec<(DateTime<Utc>, chrono_tz::Tz)> = Vec::new();
        let zones: HashSet<chrono_tz::Tz> =
            stored.iter().map(|s| env.config.companies.get(&s.record.key().account).time_zone).collect();
        for (schedule, rule_zone) in &schedules {
            for zone in zones.iter().copied() {
                let z = rule_zone.unwrap_or(zone);
                let from = invoiceflow_rules::workflow::time::local_instant(z, args.from, chrono::NaiveTime::MIN);
                let to = invoiceflow_rules::workflow::time::local_instant(
                    z,
                    args.to + chrono::Duration::days(1),
                    chrono::NaiveTime::MIN,
                );
                for slot in invoiceflow_rules::script::slots::slots(schedule, z, from, to) {
                    slots.push((slot, zone));
                }
            }
        }
        slots.sort_by_key(|(at, zone)| (*at, zone.name()));
        slots.dedup();
        let mut enrolled: HashSet<invoiceflow_rules::RecordKey> = HashSet::new();
        for (slot, zone) in slots {
            for s in stored.iter().filter(|s| env.config.companies.get(&s.record.key().account).time_zone == zone) {
                let key = s.record.key().clone();
                let day = slot.with_timezone(&zone).date_naive();
                let subject = subject_of(s.record.clone(), day, s.status == "deposited");
                let input = Input {
                    subject: &subject,
                    change: None,
                    now: slot,
                    zone,
                    locale: env.config.rules.locale,
                    cause: Cause::Schedule { slot },
                    deal: None,
                };
                let Ok(evaluation) = host.evaluate(rule, &input) else { continue };
                let was = enrolled.contains(&key);
                if evaluation.matched && !was {
                    enrolled.insert(key.clone());
                    let actions: Vec<Action> = evaluation.intents.into_iter().map(|i| i.action).collect();
                    let source = format!("rule:{}", rule.def.id);
                    let record = key.to_string();
                    timeline.push(
                        &Firing {
                            at: slot,
                            zone,
                            source: &source,
                            record: &record,
                            stage: "slot",
                            key: format!("rule:{}:slot:{}:{key}:0", rule.def.id, slot.format("%Y-%m-%dT%H:%M:%SZ")),
                            actions: &actions,
                        }
                        .row(args.json),
                    )?;
                } else if !evaluation.matched && was {
                    enrolled.remove(&key);
                }
            }
        }
    }
    Ok(())
}
