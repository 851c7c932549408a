//! `invoiceflow actions` (what rules decided, and why) and `invoiceflow explain` (what one rule
//! would do with one record, and why or why not).

use std::process::ExitCode;

use clap::Args;
use invoiceflow::store::{EventQuery, IntentQuery, Store};
use invoiceflow_rules::script::check::check_rule;
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::script::testcase::change_triggers;
use invoiceflow_rules::script::{Action, Cause, Input, RuleHost, RuleId, Trigger};
use invoiceflow_rules::{Change, RecordKind};

use super::Env;
use super::holders::resolve;

#[derive(Debug, Args)]
pub(crate) struct ActionsArgs {
    /// Only this rule's (its file name without `.toml`).
    #[arg(long, value_name = "RULE")]
    rule: Option<String>,
    /// Only this record's (ID, or ACCOUNT/ID).
    #[arg(long, value_name = "ID")]
    record: Option<String>,
    /// The kind of record `--record` names.
    #[arg(long, default_value = "invoice", value_parser = ["invoice", "bill", "payment", "deposit"])]
    kind: String,
    /// At most this many, oldest first.
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

/// One line saying what an action does.
pub(crate) fn describe(action: &Action) -> String {
    match action {
        Action::Email { to, subject, .. } => format!("email to {}: \"{subject}\"", to.join(", ")),
        Action::Slack { destination, text, .. } => format!("slack → {destination}: \"{text}\""),
        Action::Webhook { destination, .. } => format!("webhook → {destination}"),
        Action::Task { title, assignee, due, .. } => {
            let mut line = format!("task \"{title}\"");
            if let Some(a) = assignee {
                line.push_str(&format!(" for {a}"));
            }
            if let Some(d) = due {
                line.push_str(&format!(", due {d}"));
            }
            line
        }
        Action::SendInvoice { invoice, to } => match to {
            Some(to) => format!("QuickBooks sends invoice {} to {to}", invoice.id),
            None => format!("QuickBooks sends invoice {}", invoice.id),
        },
    }
}

fn cause_text(cause: &Cause) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "∅".to_owned());
    match cause {
        Cause::Change { event, property, from, to } => {
            format!("change #{event}: {property} {} → {}", value(from), value(to))
        }
        Cause::Schedule { slot } => format!("schedule slot {}", slot.format("%Y-%m-%d %H:%M UTC")),
        Cause::Workflow { step, nominal, due } => {
            format!("{step} of {nominal}, due {}", due.format("%Y-%m-%d %H:%M UTC"))
        }
        Cause::Manual => "evaluated by hand".to_owned(),
        Cause::Failure { delivery } => format!("alert: delivery {delivery} failed"),
        Cause::Disconnected { reason } => format!("alert: QuickBooks connection lost ({reason})"),
    }
}

pub(crate) async fn list<S: Store>(args: ActionsArgs, store: &S) -> anyhow::Result<ExitCode> {
    let kind = RecordKind::parse(&args.kind).unwrap_or(RecordKind::Invoice);
    let record = match &args.record {
        Some(r) => Some(resolve(store, kind, r).await?.record.key().clone()),
        None => None,
    };
    let query = IntentQuery { rule: args.rule.clone(), record, after_seq: None, limit: args.limit };
    let intents = store.intents(&query).await?;
    for i in &intents {
        if args.json {
            out!("{}", serde_json::to_string(i)?);
            continue;
        }
        let it = &i.intent;
        out!("#{:<5} {}  {}", i.seq, i.created_at.format("%Y-%m-%d %H:%M UTC"), describe(&it.action));
        let seen: Vec<String> = it
            .seen
            .to_map()
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k} {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect();
        out!("       why: rule {}@{}, {}, on {}", it.rule, it.version, cause_text(&it.cause), it.record);
        out!("       saw: {}", seen.join(", "));
    }
    let failures = store.failures(&query).await?;
    for f in &failures {
        if args.json {
            out!("{}", serde_json::json!({"failure": f}));
            continue;
        }
        let r = &f.failure;
        let kind = if r.limit { "limit" } else { "error" };
        out!(
            "failed #{:<3} {}  rule {}@{} on {}: {kind}: {}",
            f.seq,
            f.created_at.format("%Y-%m-%d %H:%M UTC"),
            r.rule,
            r.version,
            r.record,
            r.message
        );
        out!("       {}", cause_text(&r.cause));
    }
    if !args.json {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        out!(
            "{}, {}",
            plural(intents.len(), "action", "actions"),
            plural(failures.len(), "failed evaluation", "failed evaluations")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The rule (its file name without `.toml`) in the rules directory.
    #[arg(long, value_name = "RULE")]
    rule: String,
    /// The record (ID, or ACCOUNT/ID), of the kind the rule is about.
    #[arg(long, value_name = "ID")]
    record: String,
}

pub(crate) async fn explain<S: Store>(args: ExplainArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let config = &env.config;
    let Some((dir, library)) = &config.rules.dirs else {
        anyhow::bail!("no rules directory: give a configuration file with [rules] dir (see --config)");
    };
    let path = dir.join(format!("{}.toml", args.rule));
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read rule {}: {e}", path.display()))?;
    let host: RuleHost = invoiceflow::rulebook::host(config, library)?;
    let checked = check_rule(&host, RuleId::new(args.rule.as_str()), &text);
    let Some(rule) = checked.rule else {
        for d in &checked.diagnostics {
            out!("{}", d.render(&path.display().to_string(), &text));
        }
        anyhow::bail!("rule {} does not compile", args.rule);
    };
    let stored = resolve(store, rule.def.records, &args.record).await?;
    let key = stored.record.key().clone();
    let zone = config.companies.get(&key.account).time_zone;
    let now = env.clock.now.instant_in(zone);
    let today = env.clock.today_of(&key.account);
    let subject = subject_of(stored.record.clone(), today, stored.status == "deposited");
    out!(
        "rule {} ({}@{}), {}",
        rule.def.id,
        rule.def.name,
        rule.def.version,
        if rule.def.enabled { "enabled" } else { "disabled" }
    );
    out!("record {key} on {today} ({zone}): status {}", subject.status());
    // The trigger: the latest recorded change of this record that starts the rule, or the next slot.
    let events = store.events(&EventQuery { record: Some(key.clone()), after_seq: None, limit: 100_000 }).await?;
    let mut change = None;
    for t in &rule.def.triggers {
        if let Trigger::Schedule { expression, schedule, zone: rule_zone } = t {
            let z = rule_zone.unwrap_or(zone);
            match schedule.after(&now.with_timezone(&z)).next() {
                Some(next) => {
                    out!("trigger: schedule {expression:?}; next slot {} ({z})", next.format("%Y-%m-%d %H:%M"))
                }
                None => out!("trigger: schedule {expression:?}; no slot ahead"),
            }
        }
    }
    if rule.def.triggers.iter().any(|t| !matches!(t, Trigger::Schedule { .. })) {
        let latest = events.iter().rev().find_map(|e| {
            let c = Change { property: e.property, old: e.old.clone(), new: e.new.clone() };
            change_triggers(&rule, &c).then_some((e.seq, c))
        });
        match &latest {
            Some((seq, c)) => out!(
                "trigger: change #{seq}: {} {} → {}",
                c.property,
                c.old.as_deref().unwrap_or("∅"),
                c.new.as_deref().unwrap_or("∅")
            ),
            None => out!("trigger: no recorded change of this record starts the rule (evaluated as if one had)"),
        }
        change = latest;
    }
    let cause = match &change {
        Some((seq, c)) => {
            Cause::Change { event: *seq, property: c.property.to_string(), from: c.old.clone(), to: c.new.clone() }
        }
        None => Cause::Manual,
    };
    let deal = match (&subject, rule.uses_deal()) {
        (invoiceflow_rules::script::Subject::Invoice(inv, _), true) => match &inv.holders.deal {
            Some(id) => Some(invoiceflow::deals::deal_view(store, id, &env.clock).await?),
            None => None,
        },
        _ => None,
    };
    let input = Input {
        subject: &subject,
        change: change.as_ref().map(|(_, c)| c),
        now,
        zone,
        locale: config.rules.locale,
        cause,
        deal: deal.as_ref(),
    };
    match host.evaluate(&rule, &input) {
        Err(e) => {
            out!("evaluation failed: {e}");
            return Ok(ExitCode::from(1));
        }
        Ok(evaluation) => {
            let when = rule.def.when.as_ref().map_or("(no condition)", |w| w.code.as_str());
            out!("when: {} → {}", when.trim(), evaluation.matched);
            if evaluation.intents.is_empty() {
                out!("it would do nothing{}", if evaluation.matched { ": `then` called no action" } else { "" });
            }
            for intent in &evaluation.intents {
                out!("it would: {}", describe(&intent.action));
                if let Action::Email { text, .. } = &intent.action {
                    for line in text.lines() {
                        out!("    | {line}");
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
