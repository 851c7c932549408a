//! `invoiceflow workflows` (the four standard reminder workflows and their settings) and
//! `invoiceflow simulate` (what would fire between two dates, sending nothing).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use invoiceflow::store::{DueScan, Encoded, Store, StoreError, Stored};
use invoiceflow_rules::RecordKind;
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::script::{Action, Subject};
use invoiceflow_rules::workflow::config::{Anchor, CatchUp, Channel, Language, WorkflowConfig, WorkflowKind};
use invoiceflow_rules::workflow::plan::{Placement, anchor_dates, coalesce, due_between, nominal_dates, qualifies};
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

/// Appends `text` as a JSON string. Most texts need no escaping and are copied as they are.
fn json_str(out: &mut String, text: &str) {
    // Every byte checked, without an early exit, so that the check is vectorized.
    let plain = !text.bytes().fold(false, |odd, b| odd | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(text).to_string());
    }
}

/// Appends `"name":` and the value `text` (or `null`).
fn json_field(out: &mut String, name: &str, text: Option<&str>) {
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
    match text {
        Some(t) => json_str(out, t),
        None => out.push_str("null"),
    }
}

/// An action as `--json` prints it: `channel`, then `destination`, `subject`, `text` and `to`
/// as the channel has them (fields in name order).
fn json_action(out: &mut String, a: &Action) {
    out.push_str("{\"channel\":");
    json_str(out, a.kind());
    let mut field = |name: &str, text: Option<&str>| {
        out.push(',');
        json_field(out, name, text);
    };
    match a {
        Action::Email { to, subject, .. } => {
            field("subject", Some(subject));
            out.push_str(",\"to\":[");
            for (i, address) in to.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, address);
            }
            out.push(']');
        }
        Action::Slack { destination, text, .. } => {
            field("destination", Some(destination));
            field("text", Some(text));
        }
        Action::Webhook { destination, .. } => field("destination", Some(destination)),
        Action::Task { title, assignee, .. } => {
            field("text", Some(title));
            field("to", assignee.as_deref());
        }
        Action::SendInvoice { invoice, to } => {
            field("text", Some(&invoice.to_string()));
            field("to", to.as_deref());
        }
    }
    out.push('}');
}

/// The printed forms of a firing's instant (UTC and local), shared by the firings at that
/// instant: most of a timeline's lines fall at a handful of times a day.
#[derive(Default)]
struct Stamps(std::collections::HashMap<(DateTime<Utc>, chrono_tz::Tz), (String, String)>);

impl Stamps {
    fn get(&mut self, at: DateTime<Utc>, zone: chrono_tz::Tz) -> &(String, String) {
        self.0.entry((at, zone)).or_insert_with(|| {
            (
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                at.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z").to_string(),
            )
        })
    }
}

impl Firing<'_> {
    fn row(self, json: bool, stamps: &mut Stamps) -> Row {
        let (at, local) = stamps.get(self.at, self.zone);
        let line = if json {
            // Fields in name order: actions, at, key, local_time, record, source, stage.
            let mut line = String::with_capacity(384);
            line.push_str("{\"actions\":[");
            for (i, action) in self.actions.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                json_action(&mut line, action);
            }
            line.push_str("],");
            for (name, text) in [
                ("at", at.as_str()),
                ("key", &self.key),
                ("local_time", local),
                ("record", self.record),
                ("source", self.source),
                ("stage", self.stage),
            ] {
                if name != "at" {
                    line.push(',');
                }
                json_field(&mut line, name, Some(text));
            }
            line.push('}');
            line
        } else {
            let what: Vec<String> = self.actions.iter().map(super::actions::describe).collect();
            format!("{local}  {:<24} {:<28} {:<9} {}", self.source, self.record, self.stage, what.join("; "))
        };
        Row { at: self.at, key: self.key, line }
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
    let companies = std::sync::Arc::new(env.config.companies.clone());
    let flows: Vec<(WorkflowKind, WorkflowConfig)> = env
        .config
        .workflows
        .iter()
        .filter(|(kind, config)| {
            workflows_wanted
                && (chosen.is_empty() || chosen.contains(kind))
                && (config.enabled || args.include_disabled)
        })
        .map(|(k, c)| (*k, c.clone()))
        .collect();
    for record_kind in [RecordKind::Invoice, RecordKind::Bill, RecordKind::Payment] {
        let flows: Vec<_> =
            flows.iter().filter(|(k, _)| invoiceflow::reminders::scope(*k).0 == record_kind).cloned().collect();
        if !flows.is_empty() {
            kind_timeline(record_kind, flows, &args, &companies, store, &mut timeline).await?;
        }
    }
    if rules_wanted {
        scheduled_rules(&args, env, store, &mut timeline).await?;
    }
    let count = timeline.len();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let printed = timeline.drain(|line| out.write_all(line).and_then(|()| out.write_all(b"\n")));
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

/// The period of `args` in `zone`: after the instant before its first day starts, through the
/// instant before the day after its last one starts.
fn period(args: &SimulateArgs, zone: chrono_tz::Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    period_of(args.from, args.to, zone)
}

/// The firings of `flows` (the workflows about records of `kind`) in the period, added to
/// `timeline`. Like the running engine, it reads only the records with a step in the period (by
/// their anchor dates), in a status a workflow may still act on; each record is read once for
/// all the workflows, and each page is planned on a blocking thread while the next is read.
async fn kind_timeline<S: Store>(
    kind: RecordKind,
    flows: Vec<(WorkflowKind, WorkflowConfig)>,
    args: &SimulateArgs,
    companies: &std::sync::Arc<invoiceflow::config::Companies>,
    store: &S,
    timeline: &mut Timeline,
) -> anyhow::Result<()> {
    let mut query =
        DueScan { kind, statuses: Vec::new(), due_dates: Vec::new(), txn_dates: Vec::new(), after: None, limit: PAGE };
    for (workflow, config) in &flows {
        let dates = companies.zones().into_iter().flat_map(|zone| {
            let (after, through) = period(args, zone);
            anchor_dates(config, &nominal_dates(config, zone, after, through))
        });
        match config.anchor {
            Anchor::DueDate => query.due_dates.extend(dates),
            Anchor::InvoiceDate | Anchor::PaymentDate => query.txn_dates.extend(dates),
        }
        query.statuses.extend(invoiceflow::reminders::scope(*workflow).1);
    }
    for list in [&mut query.due_dates, &mut query.txn_dates] {
        list.sort_unstable();
        list.dedup();
    }
    query.statuses.sort_unstable();
    query.statuses.dedup();
    let zones: Vec<ZonePlan> = companies
        .zones()
        .into_iter()
        .map(|zone| {
            let (after, through) = period(args, zone);
            let placements = flows.iter().map(|(_, c)| Placement::for_period(c, zone, after, through)).collect();
            ZonePlan { zone, after, through, placements }
        })
        .collect();
    let plan =
        std::sync::Arc::new(PagePlan { flows, zones, companies: companies.clone(), from: args.from, json: args.json });
    // Two pages are decoded and planned at a time, on blocking threads, while the next is read;
    // their rows join the timeline in page order.
    let mut pending: std::collections::VecDeque<tokio::task::JoinHandle<Result<Vec<Row>, StoreError>>> =
        std::collections::VecDeque::new();
    loop {
        let page = store.scan_due(&query).await?;
        while pending.len() >= PLANNERS || (page.is_empty() && !pending.is_empty()) {
            let Some(planned) = pending.pop_front() else { break };
            for row in planned.await.context("planning a page of records stopped")?? {
                timeline.push(&row)?;
            }
        }
        let Some(last) = page.last() else { break };
        query.after = Some(last.position());
        let plan = plan.clone();
        pending.push_back(tokio::task::spawn_blocking(move || plan.page(&page)));
    }
    Ok(())
}

/// Pages planned at once.
const PLANNERS: usize = 2;

/// The period in one zone, and when each workflow's nominal dates fall due there.
struct ZonePlan {
    zone: chrono_tz::Tz,
    after: DateTime<Utc>,
    through: DateTime<Utc>,
    placements: Vec<Placement>,
}

/// What planning a page of records needs.
struct PagePlan {
    flows: Vec<(WorkflowKind, WorkflowConfig)>,
    /// Per zone: the period, and each workflow's placement of nominal dates.
    zones: Vec<ZonePlan>,
    companies: std::sync::Arc<invoiceflow::config::Companies>,
    from: NaiveDate,
    json: bool,
}

impl PagePlan {
    /// The workflow's firings of a page of records in the period, as timeline rows: when each
    /// falls due (`due_between`), whether the record, as it will be that day, qualifies, and
    /// what it sends — the running engine's planner.
    fn page(&self, page: &[Encoded]) -> Result<Vec<Row>, StoreError> {
        let sources: Vec<String> = self.flows.iter().map(|(kind, _)| format!("workflow:{kind}")).collect();
        let mut stamps = Stamps::default();
        let mut rows = Vec::new();
        for encoded in page {
            let stored = encoded.decode()?;
            let key = stored.record.key().clone();
            let zone = self.companies.get(&key.account).time_zone;
            let Some(ZonePlan { after, through, placements, .. }) = self.zones.iter().find(|z| z.zone == zone) else {
                continue;
            };
            let base = subject_of(stored.record, self.from, stored.status == "deposited");
            let record = key.to_string();
            let company_language = self.companies.language(&key.account);
            for (((kind, config), source), placement) in self.flows.iter().zip(&sources).zip(placements) {
                let kind = *kind;
                let Ok(mut plan) = due_between(kind, config, &base, placement, *after, *through) else { continue };
                // Steps the send window moved onto one opening: only the last goes out.
                coalesce(&mut plan);
                for firing in plan {
                    let Some(at) = firing.at else { continue };
                    let day = at.with_timezone(&zone).date_naive();
                    // The record as it will be that day: time-dependent statuses move on.
                    let subject: Subject = base.on_day(day);
                    if qualifies(kind, config, &subject, day).is_err() {
                        continue;
                    }
                    let language = config.language_for(template::party(&subject), company_language);
                    let actions = template::headlines(&firing, config, &subject, day, language);
                    let stage = firing.step.to_string();
                    let line =
                        Firing { at, zone, source, record: &record, stage: &stage, key: firing.key, actions: &actions };
                    rows.push(line.row(self.json, &mut stamps));
                }
            }
        }
        Ok(rows)
    }
}

/// [`period`] from dates.
fn period_of(from: NaiveDate, to: NaiveDate, zone: chrono_tz::Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let tick = chrono::Duration::nanoseconds(1);
    let start = |day: NaiveDate| local_instant(zone, day, chrono::NaiveTime::MIN) - tick;
    (start(from), start(to + chrono::Duration::days(1)))
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
    use invoiceflow::clock::{Clock, Now};
    use invoiceflow::evaluate;
    use invoiceflow_rules::script::Trigger;
    use invoiceflow_rules::script::types::DealView;
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
        // Enrollment as the running engine keeps it, in memory: the same decision, slot by slot.
        let mut enrolled: HashSet<invoiceflow_rules::RecordKey> = HashSet::new();
        let mut deals: HashMap<(invoiceflow_rules::HolderId, DateTime<Utc>), DealView> = HashMap::new();
        let mut stamps = Stamps::default();
        let source = format!("rule:{}", rule.def.id);
        for (slot, zone) in slots {
            for s in stored.iter().filter(|s| env.config.companies.get(&s.record.key().account).time_zone == zone) {
                let key = s.record.key().clone();
                let day = slot.with_timezone(&zone).date_naive();
                let subject = subject_of(s.record.clone(), day, s.status == "deposited");
                if evaluate::is_gone(&subject) {
                    enrolled.remove(&key);
                    continue;
                }
                if rule.uses_deal()
                    && let Some(deal) = evaluate::deal_of(&subject)
                    && !deals.contains_key(&(deal.clone(), slot))
                {
                    let clock = Clock { now: Now::At(slot), companies: env.config.companies.clone() };
                    let view = invoiceflow::deals::deal_view(store, deal, &clock).await?;
                    deals.insert((deal.clone(), slot), view);
                }
                let deal = evaluate::deal_of(&subject).and_then(|d| deals.get(&(d.clone(), slot)));
                let record = evaluate::SlotRecord { subject: &subject, key: &key, zone, deal };
                match evaluate::decide_slot(
                    &host,
                    rule,
                    slot,
                    &record,
                    enrolled.contains(&key),
                    env.config.rules.locale,
                ) {
                    evaluate::SlotDecision::Fire(intents) => {
                        let actions: Vec<Action> = intents.into_iter().map(|i| i.intent.action).collect();
                        let line = Firing {
                            at: slot,
                            zone,
                            source: &source,
                            record: &key.to_string(),
                            stage: "slot",
                            key: format!("rule:{}:slot:{}:{key}", rule.def.id, slot.format("%Y-%m-%dT%H:%M:%SZ")),
                            actions: &actions,
                        };
                        timeline.push(&line.row(args.json, &mut stamps))?;
                        enrolled.insert(key);
                    }
                    evaluate::SlotDecision::Leave => {
                        enrolled.remove(&key);
                    }
                    evaluate::SlotDecision::Stay | evaluate::SlotDecision::Failed(_) => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_as_serde_would() {
        for text in ["plain", "Relancer « FA-1 » : 4 200,00\u{a0}€", "say \"hi\"", "a\\b", "line\nbreak\t", "\u{1}", ""]
        {
            let mut out = String::new();
            json_str(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn actions_print_their_channel_fields_in_name_order() {
        let mut out = String::new();
        let task =
            Action::Task { title: "Pay \"B-1\"".into(), notes: None, assignee: None, due: None, approval: false };
        json_action(&mut out, &task);
        assert_eq!(out, r#"{"channel":"task","text":"Pay \"B-1\"","to":null}"#);
        let mut out = String::new();
        let email = Action::Email {
            to: vec!["a@x.example".into(), "b@x.example".into()],
            cc: Vec::new(),
            subject: "Hi".into(),
            text: String::new(),
            html: None,
        };
        json_action(&mut out, &email);
        assert_eq!(out, r#"{"channel":"email","subject":"Hi","to":["a@x.example","b@x.example"]}"#);
    }
}
