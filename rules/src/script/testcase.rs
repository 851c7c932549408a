//! Rule tests: cases admins write next to a rule (`NAME.test.toml`), each giving a record, maybe a
//! change, and "now", and expecting actions (or none). `invoiceflow test` runs them.
//!
//! ```toml
//! [[case]]
//! name = "a paid invoice posts to finance"
//! now = "2026-11-25T15:00:00Z"
//! record = { id = "1001", customer = "Acme", amount = "1250.00", balance = "0.00", due_date = "2026-11-18" }
//! change = { property = "status", from = "sent", to = "paid" }
//! expect = [{ type = "slack", destination = "finance", text = "💰 Acme paid invoice #1001 ($1,250.00)" }]
//! ```
//!
//! The record uses the canonical import format; omitted fields take the defaults below. An
//! expected action lists the fields that matter: fields it leaves out are not compared.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::action::{Action, Cause};
use super::def::Trigger;
use super::diag::{Diagnostic, Span};
use super::host::{CompiledRule, Input, RuleHost};
use crate::change::{Change, Property};
use crate::format::Locale;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    case: Vec<toml::Spanned<RawCase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    now: String,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    locale: Option<String>,
    record: toml::Table,
    #[serde(default)]
    change: Option<RawChange>,
    #[serde(default)]
    deal: Option<RawDeal>,
    expect: Vec<toml::Table>,
}

/// `deal = { id = "deal-1", amount = "12000.00", status = "sent", … }`: the deal's properties.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeal {
    id: String,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    due_date: Option<String>,
}

impl RawDeal {
    /// The deal as scripts see it; amounts in `currency`.
    fn view(&self, currency: crate::money::Currency) -> Result<super::types::DealView, String> {
        let properties = match (&self.amount, &self.status) {
            (Some(amount), Some(status)) => Some(crate::deal::DealProperties {
                amount: crate::money::Money::new(
                    crate::money::parse_decimal(amount).map_err(|e| format!("`deal.amount`: {e}"))?,
                    currency,
                ),
                recipient: self.recipient.clone().unwrap_or_default(),
                number: self.number.clone(),
                status: crate::status::InvoiceStatus::parse(status)
                    .ok_or_else(|| format!("`deal.status` {status:?} is not an invoice status"))?,
                due_date: match &self.due_date {
                    None => None,
                    Some(d) => Some(d.parse().map_err(|_| format!("`deal.due_date` {d:?} is not a date"))?),
                },
            }),
            (None, None) => None,
            _ => return Err("`deal`: give both `amount` and `status`, or neither".to_owned()),
        };
        Ok(super::types::DealView { id: self.id.clone(), properties })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChange {
    property: String,
    #[serde(default)]
    from: Option<toml::Value>,
    #[serde(default)]
    to: Option<toml::Value>,
}

/// One case's result.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Where it starts in the test file.
    pub span: Span,
    /// `None` when it passed; otherwise why not, ready to print (a diff of actions).
    pub failure: Option<String>,
}

/// Defaults for fields a test record leaves out, by record kind.
fn defaults(kind: crate::ids::RecordKind) -> serde_json::Value {
    use crate::ids::RecordKind as K;
    match kind {
        K::Invoice => serde_json::json!({"type": "invoice", "id": "1", "customer": "Customer", "amount": "100.00",
            "balance": "100.00", "currency": "USD", "txn_date": "2026-01-01", "email_status": "EmailSent",
            "updated_at": "2026-01-01T00:00:00Z"}),
        K::Bill => serde_json::json!({"type": "bill", "id": "1", "vendor": "Vendor", "amount": "100.00",
            "balance": "100.00", "currency": "USD", "txn_date": "2026-01-01", "updated_at": "2026-01-01T00:00:00Z"}),
        K::Payment => serde_json::json!({"type": "payment", "id": "1", "customer": "Customer", "amount": "100.00",
            "currency": "USD", "txn_date": "2026-01-01", "updated_at": "2026-01-01T00:00:00Z"}),
        K::Deposit => serde_json::json!({"type": "deposit", "id": "1", "amount": "100.00", "currency": "USD",
            "txn_date": "2026-01-01", "updated_at": "2026-01-01T00:00:00Z"}),
    }
}

fn text_of(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `change` starts `rule` (one of its change triggers matches it).
pub fn change_triggers(rule: &CompiledRule, change: &Change) -> bool {
    rule.def.triggers.iter().any(|t| match t {
        Trigger::Change { properties, from, to } => {
            properties.contains(&change.property)
                && from.as_ref().is_none_or(|f| change.old.as_deref() == Some(f.as_str()))
                && to.as_ref().is_none_or(|t| change.new.as_deref() == Some(t.as_str()))
        }
        Trigger::Created => change.property == Property::Lifecycle && change.old.is_none(),
        Trigger::Deleted => {
            change.property == Property::Lifecycle && matches!(change.new.as_deref(), Some("voided" | "deleted"))
        }
        Trigger::Schedule { .. } => false,
    })
}

/// Runs the cases of a test file against `rule`.
///
/// # Errors
/// Diagnostics when the test file itself is malformed.
pub fn run_cases(host: &RuleHost, rule: &CompiledRule, text: &str) -> Result<Vec<CaseResult>, Vec<Diagnostic>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().map_or(Span::start(), |r| Span::at_offset(text, r.start));
        vec![Diagnostic::error(span, e.message().trim_end().to_owned())]
    })?;
    let mut results = Vec::new();
    for case in &raw.case {
        let span = Span::at_offset(text, case.span().start);
        let failure = run_case(host, rule, case.get_ref()).err();
        results.push(CaseResult { name: case.get_ref().name.clone(), span, failure });
    }
    Ok(results)
}

fn run_case(host: &RuleHost, rule: &CompiledRule, case: &RawCase) -> Result<(), String> {
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339(&case.now)
        .map(|t| t.to_utc())
        .map_err(|e| format!("`now` {:?} is not an RFC 3339 instant: {e}", case.now))?;
    let zone: Tz = match &case.zone {
        None => chrono_tz::UTC,
        Some(z) => z.parse().map_err(|_| format!("`zone` {z:?} is not an IANA time zone"))?,
    };
    let locale = match &case.locale {
        None => Locale::En,
        Some(l) => {
            Locale::parse(l).ok_or_else(|| format!("`locale` {l:?} is unknown; known: {}", Locale::TAGS.join(", ")))?
        }
    };
    let mut record = defaults(rule.def.records);
    let given = serde_json::to_value(&case.record).map_err(|e| format!("`record`: {e}"))?;
    if let (Some(base), serde_json::Value::Object(given)) = (record.as_object_mut(), given) {
        base.extend(given);
    }
    let today = now.with_timezone(&zone).date_naive();
    let subject = super::subject::from_canonical(record, today).map_err(|e| format!("`record`: {e}"))?;
    let change = match &case.change {
        None => None,
        Some(c) => Some(Change {
            property: Property::parse(&c.property)
                .ok_or_else(|| format!("`change.property` {:?} is unknown", c.property))?,
            old: c.from.as_ref().map(text_of),
            new: c.to.as_ref().map(text_of),
        }),
    };
    let triggered = change.as_ref().is_none_or(|c| change_triggers(rule, c));
    let cause = match &change {
        Some(c) => Cause::Change { event: 0, property: c.property.to_string(), from: c.old.clone(), to: c.new.clone() },
        None => Cause::Schedule { slot: now },
    };
    let actual: Vec<Action> = if triggered {
        let currency = match &subject {
            super::types::Subject::Invoice(r, _) => r.amount.currency,
            super::types::Subject::Bill(r, _) => r.amount.currency,
            super::types::Subject::Payment(r, _) => r.amount.currency,
            super::types::Subject::Deposit(r) => r.amount.currency,
        };
        let deal = case.deal.as_ref().map(|d| d.view(currency)).transpose()?;
        let input = Input { subject: &subject, change: change.as_ref(), now, zone, locale, cause, deal: deal.as_ref() };
        host.evaluate(rule, &input)
            .map_err(|e| format!("the rule failed: {e}"))?
            .intents
            .into_iter()
            .map(|i| i.action)
            .collect()
    } else {
        Vec::new()
    };
    compare(&case.expect, &actual, triggered)
}

fn compare(expected: &[toml::Table], actual: &[Action], triggered: bool) -> Result<(), String> {
    let actual_json: Vec<serde_json::Value> = actual.iter().filter_map(|a| serde_json::to_value(a).ok()).collect();
    let matches = expected.len() == actual_json.len()
        && expected.iter().zip(&actual_json).all(|(e, a)| {
            e.iter().all(|(k, v)| {
                let expected = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                a.get(k).is_some_and(|actual| actual == &expected || equal_dates(actual, &expected))
            })
        });
    if matches {
        return Ok(());
    }
    let mut out = String::new();
    if !triggered {
        out.push_str("the change does not match the rule's triggers, so it does not run\n");
    }
    out.push_str("expected:\n");
    if expected.is_empty() {
        out.push_str("  (no actions)\n");
    }
    for e in expected {
        out.push_str(&format!("  - {}\n", serde_json::to_string(e).unwrap_or_default()));
    }
    out.push_str("actual:\n");
    if actual_json.is_empty() {
        out.push_str("  (no actions)\n");
    }
    for a in &actual_json {
        out.push_str(&format!("  + {}\n", serde_json::to_string(a).unwrap_or_default()));
    }
    Err(out)
}

/// TOML dates (`due = 2026-11-27`) compare equal to the same date as text.
fn equal_dates(actual: &serde_json::Value, expected: &serde_json::Value) -> bool {
    let as_text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(m) => m.values().next().and_then(|d| d.as_str().map(str::to_owned)),
        _ => None,
    };
    as_text(actual).is_some() && as_text(actual) == as_text(expected)
}
