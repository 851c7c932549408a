//! `invoiceflow check`: everything that can be found wrong with a rule before it runs — the file,
//! the rhai syntax, property names (`invoice.amout` → did you mean `amount`?), destinations, cron
//! expressions, status values — and then a dry run on a sample record, which catches what only
//! running shows (an argument of the wrong type).

use rhai::AST;
use rhai::ASTNode;
use rhai::Expr;

use super::action::Cause;
use super::def::{RuleDef, RuleId, Snippet, Trigger, parse_rule};
use super::diag::{Diagnostic, Span};
use super::host::{CompiledRule, Input, RuleHost, variables};
use super::types::{self, Subject};
use crate::change::{Change, Property};
use crate::ids::RecordKind;
use crate::status::{BillStatus, InvoiceStatus, PaymentStatus};

/// What checking one rule file found.
pub struct Checked {
    /// The rule, compiled, unless it has errors.
    pub rule: Option<CompiledRule>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks rule `id` given the text of its file.
pub fn check_rule(host: &RuleHost, id: RuleId, text: &str) -> Checked {
    let def = match parse_rule(id, text) {
        Ok(def) => def,
        Err(diagnostics) => return Checked { rule: None, diagnostics },
    };
    let mut diagnostics = trigger_warnings(&def, text);
    let rule = match host.compile(def) {
        Ok(rule) => rule,
        Err(mut errors) => {
            errors.append(&mut diagnostics);
            errors.sort_by_key(|d| d.span);
            return Checked { rule: None, diagnostics: errors };
        }
    };
    if let (Some(ast), Some(snippet)) = (rule.when_ast(), rule.def.when.as_ref()) {
        analyse(host, &rule.def, ast, snippet, &mut diagnostics);
    }
    analyse(host, &rule.def, rule.then_ast(), &rule.def.then, &mut diagnostics);
    if !diagnostics.iter().any(|d| d.severity == super::diag::Severity::Error) {
        dry_run(host, &rule, &mut diagnostics);
    }
    diagnostics.sort_by_key(|d| d.span);
    diagnostics.dedup();
    let failed = diagnostics.iter().any(|d| d.severity == super::diag::Severity::Error);
    Checked { rule: if failed { None } else { Some(rule) }, diagnostics }
}

fn statuses(kind: RecordKind) -> Vec<&'static str> {
    match kind {
        RecordKind::Invoice => InvoiceStatus::ALL.iter().map(|s| s.as_str()).collect(),
        RecordKind::Bill => BillStatus::ALL.iter().map(|s| s.as_str()).collect(),
        RecordKind::Payment => PaymentStatus::ALL.iter().map(|s| s.as_str()).collect(),
        RecordKind::Deposit => vec!["recorded"],
    }
}

/// `to = "payed"` on a status change never matches.
fn trigger_warnings(def: &RuleDef, text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for t in &def.triggers {
        let Trigger::Change { properties, from, to } = t else { continue };
        if !properties.contains(&Property::Status) {
            continue;
        }
        let known = statuses(def.records);
        for value in [from, to].into_iter().flatten() {
            if known.contains(&value.as_str()) {
                continue;
            }
            let at = text.find(&format!("\"{value}\"")).map_or(Span::start(), |o| Span::at_offset(text, o));
            let hint = crate::suggest::closest(value, known.iter().copied())
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            out.push(Diagnostic::warning(
                at,
                format!("{} status {value:?} does not exist{hint}; known: {}", def.records, known.join(", ")),
            ));
        }
    }
    out
}

pub(crate) fn properties_of(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Invoice => types::INVOICE_PROPERTIES,
        RecordKind::Bill => types::BILL_PROPERTIES,
        RecordKind::Payment => types::PAYMENT_PROPERTIES,
        RecordKind::Deposit => types::DEPOSIT_PROPERTIES,
    }
}

fn span_of(snippet: &Snippet, pos: rhai::Position) -> Span {
    match pos.line() {
        Some(line) => {
            let (line, col) = snippet.file_position(line, pos.position().unwrap_or(1));
            Span { line, col }
        }
        None => Span { line: snippet.line, col: snippet.col },
    }
}

/// Property typos and unknown destinations, found by walking the compiled script.
fn analyse(host: &RuleHost, def: &RuleDef, ast: &AST, snippet: &Snippet, out: &mut Vec<Diagnostic>) {
    let [record_var, alias, ..] = variables(def.records);
    let known_for = |var: &str| -> Option<&'static [&'static str]> {
        match var {
            v if v == record_var || v == alias => Some(properties_of(def.records)),
            "change" => Some(types::CHANGE_PROPERTIES),
            "now" => Some(types::MOMENT_PROPERTIES),
            "today" => Some(types::DATE_PROPERTIES),
            "deal" => Some(types::DEAL_PROPERTIES),
            _ => None,
        }
    };
    let destinations = host.destinations();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::Dot(x, _, _))) => {
                let (Expr::Variable(var, _, _), first) = (&x.lhs, &x.rhs) else { return true };
                let property = match first {
                    Expr::Property(p, pos) => Some((p.2.clone(), *pos)),
                    Expr::Dot(inner, _, _) => match &inner.lhs {
                        Expr::Property(p, pos) => Some((p.2.clone(), *pos)),
                        _ => None,
                    },
                    _ => None,
                };
                if let (Some(known), Some((name, pos))) = (known_for(var.1.as_str()), property)
                    && !known.contains(&name.as_str())
                {
                    let hint = crate::suggest::closest(&name, known.iter().copied())
                        .map(|s| format!(": did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("; known: {}", known.join(", ")));
                    // An error, not a warning: such a script fails on every record.
                    out.push(Diagnostic::error(
                        span_of(snippet, pos),
                        format!("`{}` has no property `{name}`{hint}", var.1),
                    ));
                }
            }
            Some(ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(rhai::Stmt::FnCall(call, pos))) => {
                let Some(Expr::StringConstant(name, name_pos)) = call.args.first() else { return true };
                let pos = if name_pos.is_none() { pos } else { name_pos };
                let (set, kind): (Vec<&str>, &str) = match call.name.as_str() {
                    "slack" => (destinations.slack.iter().map(String::as_str).collect(), "slack"),
                    "webhook" => (destinations.webhook.iter().map(String::as_str).collect(), "webhook"),
                    "email" if !name.contains('@') => (destinations.email.keys().map(String::as_str).collect(), "email"),
                    _ => return true,
                };
                if !set.contains(&name.as_str()) {
                    let hint = crate::suggest::closest(name, set.iter().copied())
                        .map(|s| format!(" (did you mean {s:?}?)"))
                        .unwrap_or_default();
                    let known = if set.is_empty() { "none is configured".to_owned() } else { format!("known: {}", set.join(", ")) };
                    out.push(Diagnostic::error(
                        span_of(snippet, *pos),
                        format!("unknown {kind} destination {name:?}{hint}; {known} (see [destinations] in invoiceflow.toml)"),
                    ));
                }
            }
            _ => {}
        }
        true
    });
}

/// Runs `when` and `then` on a sample record of the rule's kind, to surface what only running
/// shows. Its actions are dropped.
fn dry_run(host: &RuleHost, rule: &CompiledRule, out: &mut Vec<Diagnostic>) {
    let Some(subject) = sample(rule.def.records) else { return };
    let sample_deal = types::DealView {
        id: "deal-1".to_owned(),
        properties: match &subject {
            Subject::Invoice(inv, status) => Some(crate::deal::DealProperties {
                amount: inv.amount,
                recipient: inv.recipient().to_owned(),
                number: inv.number.clone(),
                status: *status,
                due_date: inv.due_date,
            }),
            _ => None,
        },
    };
    let change = rule.def.triggers.iter().find_map(|t| match t {
        Trigger::Change { properties, from, to } => Some(Change {
            property: properties.first().copied().unwrap_or(Property::Status),
            old: from.clone().or_else(|| Some("sent".to_owned())),
            new: to.clone().or_else(|| Some("overdue".to_owned())),
        }),
        _ => None,
    });
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    let input = Input {
        subject: &subject,
        change: change.as_ref(),
        now,
        zone: chrono_tz::UTC,
        locale: crate::format::Locale::En,
        cause: Cause::Manual,
        deal: Some(&sample_deal),
    };
    // `when` may be false on the sample: run `then` on its own too, so its mistakes show.
    let then_only = CompiledRule::then_only(rule);
    for r in [rule, &then_only] {
        if let Err(e) = host.evaluate(r, &input) {
            if e.limit {
                out.push(Diagnostic::warning(
                    e.at.unwrap_or(Span::start()),
                    format!("on a sample {}: {}", rule.def.records, e.message),
                ));
            } else {
                out.push(Diagnostic::error(
                    e.at.unwrap_or(Span::start()),
                    format!("on a sample {}: {}", rule.def.records, e.message),
                ));
            }
            return;
        }
    }
}

/// The day the dry run pretends it is.
const SAMPLE_DAY: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(2026, 11, 25) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};

/// A record of `kind` with every field set, for the dry run.
pub fn sample(kind: RecordKind) -> Option<Subject> {
    let text = match kind {
        RecordKind::Invoice => {
            r#"{"type":"invoice","id":"1001","number":"1001","customer":"Sample Customer","recipient":"ap@example.com","amount":"12500.00","balance":"12500.00","currency":"USD","txn_date":"2026-10-01","due_date":"2026-11-18","email_status":"EmailSent","deal_id":"deal-1","updated_at":"2026-10-02T09:00:00Z"}"#
        }
        RecordKind::Bill => {
            r#"{"type":"bill","id":"2001","number":"B-2001","vendor":"Sample Vendor","amount":"6200.00","balance":"6200.00","currency":"USD","txn_date":"2026-11-01","due_date":"2026-11-28","updated_at":"2026-11-01T09:00:00Z"}"#
        }
        RecordKind::Payment => {
            r#"{"type":"payment","id":"3001","customer":"Sample Customer","amount":"500.00","currency":"USD","txn_date":"2026-11-20","invoices":["1001"],"updated_at":"2026-11-20T09:00:00Z"}"#
        }
        RecordKind::Deposit => {
            r#"{"type":"deposit","id":"4001","amount":"500.00","currency":"USD","txn_date":"2026-11-21","payments":["3001"],"updated_at":"2026-11-21T09:00:00Z"}"#
        }
    };
    let value = serde_json::from_str(text).ok()?;
    super::subject::from_canonical(value, SAMPLE_DAY).ok()
}
