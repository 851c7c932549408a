//! A rule file: one TOML file per rule, read into a [`RuleDef`]. The file holds the name, the
//! description, the enabled flag, the record kind, the triggers, and two pieces of rhai: `when`
//! (an expression: does the record match?) and `then` (statements that call action constructors).

use std::str::FromStr;

use chrono_tz::Tz;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::diag::{Diagnostic, Span};
use crate::change::Property;
use crate::ids::RecordKind;

/// A rule's id: its file name without `.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct RuleId(String);

impl RuleId {
    /// Wraps a file stem.
    pub fn new(stem: impl Into<String>) -> Self {
        Self(stem.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A piece of rhai and where it sits in its file, so errors point at the file's line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The code.
    pub code: String,
    /// The file line (1-based) of the code's first line.
    pub line: usize,
    /// The file column (1-based) of the code's first character.
    pub col: usize,
    /// For a one-line string with escapes (`"a \"b\""`): the file column of each code character.
    pub columns: Option<Vec<usize>>,
}

impl Snippet {
    /// The file position of a 1-based (line, column) inside the snippet.
    pub fn file_position(&self, line: usize, col: usize) -> (usize, usize) {
        if line > 1 {
            return (self.line + line - 1, col);
        }
        match self.columns.as_ref().and_then(|c| c.get(col.saturating_sub(1))) {
            Some(file_col) => (self.line, *file_col),
            None => (self.line, self.col + col.saturating_sub(1)),
        }
    }

    /// Code given directly (a library module, a test): positions are the code's own.
    pub fn plain(code: &str) -> Self {
        Self { code: code.to_owned(), line: 1, col: 1, columns: None }
    }
}

/// What starts a rule.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A watched property changed (any of `properties`), optionally from and to given values.
    Change {
        /// The properties.
        properties: Vec<Property>,
        /// The value before, as text (`"sent"`), when required.
        from: Option<String>,
        /// The value after, as text (`"paid"`), when required.
        to: Option<String>,
    },
    /// A record appeared.
    Created,
    /// A record was voided or deleted.
    Deleted,
    /// A cron schedule: the rule is evaluated over every record of its kind at each slot.
    Schedule {
        /// The expression as written (`0 0 9 * * Mon-Fri`).
        expression: String,
        /// It, parsed.
        schedule: Box<cron::Schedule>,
        /// The time zone it runs in; `None` = each company's own.
        zone: Option<Tz>,
    },
}

/// A rule, read from its file (not yet compiled).
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// Its id (file name).
    pub id: RuleId,
    /// Its name, for people.
    pub name: String,
    /// What it does and why.
    pub description: String,
    /// Off rules are checked and tested, never run.
    pub enabled: bool,
    /// Which records it is about.
    pub records: RecordKind,
    /// What starts it.
    pub triggers: Vec<Trigger>,
    /// Does the record match? (rhai expression; absent = always.)
    pub when: Option<Snippet>,
    /// What to do (rhai statements calling `email`, `slack`, `webhook`, `task`, `send_invoice`).
    pub then: Snippet,
    /// A hash of the file: which version of the rule made an action.
    pub version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    records: Option<toml::Spanned<String>>,
    on: toml::Spanned<toml::Value>,
    #[serde(default)]
    when: Option<toml::Spanned<String>>,
    then: toml::Spanned<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(default)]
    change: Option<OneOrMany>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    zone: Option<String>,
    /// Keys of the rule written after an `[[on]]` header land in the trigger's table (TOML's
    /// rule); they are caught to say so.
    #[serde(default)]
    when: Option<toml::Value>,
    #[serde(default)]
    then: Option<toml::Value>,
    #[serde(default)]
    records: Option<toml::Value>,
    #[serde(default)]
    name: Option<toml::Value>,
    #[serde(default)]
    description: Option<toml::Value>,
    #[serde(default)]
    enabled: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Reads rule `id` from the text of its file. Every problem is returned, each located.
///
/// # Errors
/// The diagnostics (at least one error) when the file is not a valid rule.
pub fn parse_rule(id: RuleId, text: &str) -> Result<RuleDef, Vec<Diagnostic>> {
    let raw: RawRule = toml::from_str(text).map_err(|e| {
        let span = e.span().map_or(Span::start(), |r| Span::at_offset(text, r.start));
        let message = misplaced_key(text).unwrap_or_else(|| e.message().trim_end().to_owned());
        vec![Diagnostic::error(span, message)]
    })?;
    let mut errors = Vec::new();
    let records = match &raw.records {
        None => RecordKind::Invoice,
        Some(r) => parse_kind(r.get_ref()).unwrap_or_else(|| {
            errors.push(Diagnostic::error(
                Span::at_offset(text, r.span().start),
                format!("unknown records {:?}: use invoices, bills, payments or deposits", r.get_ref()),
            ));
            RecordKind::Invoice
        }),
    };
    let raw_on = &raw.on;
    let on_at = Span::at_offset(text, raw_on.span().start);
    let tables = match raw.on.get_ref() {
        toml::Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    if tables.is_empty() {
        errors.push(Diagnostic::error(on_at, "the rule has no trigger: give `on` at least one".to_owned()));
    }
    let mut triggers = Vec::new();
    for (n, table) in tables.into_iter().enumerate() {
        let raw = RawTrigger::deserialize(table).map_err(|e| e.message().trim_end().to_owned());
        // Point at the schedule's text when there is one: that is what is usually wrong.
        let at = raw
            .as_ref()
            .ok()
            .and_then(|t| t.schedule.as_ref())
            .and_then(|expr| {
                let (start, end) = (raw_on.span().start, raw_on.span().end);
                text.get(start..end)?.find(&format!("\"{expr}\"")).map(|o| start + o + 1)
            })
            .map_or(on_at, |o| Span::at_offset(text, o));
        match raw.and_then(|t| trigger(&t)) {
            Ok(trigger) => triggers.push(trigger),
            Err(message) => errors.push(Diagnostic::error(at, format!("trigger {}: {message}", n + 1))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let version = content_hash(text);
    Ok(RuleDef {
        id,
        name: raw.name,
        description: raw.description,
        enabled: raw.enabled,
        records,
        triggers,
        when: raw.when.as_ref().map(|w| snippet(text, w)),
        then: snippet(text, &raw.then),
        version,
    })
}

/// The rule-level keys TOML put inside an `[[on]]` table because they follow its header.
fn misplaced_key(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let on = table.get("on")?;
    let triggers: Vec<&toml::Value> = match on {
        toml::Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let rule_keys = ["name", "description", "enabled", "records", "when", "then"];
    let key =
        triggers.iter().find_map(|t| rule_keys.iter().find(|k| t.get(**k).is_some() && !table.contains_key(**k)))?;
    Some(format!(
        "`{key}` belongs to the rule, not to a trigger: in TOML, keys after an `[[on]]` header go into that table. \
         Move `{key}` above the first `[[on]]`, or write the trigger inline: on = {{ change = \"status\" }}"
    ))
}

/// A rule file's version: the first 12 hex digits of the SHA-256 of its text.
pub fn content_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// `invoices`, `invoice`, `bills`, …
pub fn parse_kind(text: &str) -> Option<RecordKind> {
    RecordKind::parse(text.strip_suffix('s').unwrap_or(text))
}

fn trigger(t: &RawTrigger) -> Result<Trigger, String> {
    let misplaced = [
        ("when", t.when.is_some()),
        ("then", t.then.is_some()),
        ("records", t.records.is_some()),
        ("name", t.name.is_some()),
        ("description", t.description.is_some()),
        ("enabled", t.enabled.is_some()),
    ];
    if let Some((key, _)) = misplaced.iter().find(|(_, set)| *set) {
        return Err(format!(
            "`{key}` belongs to the rule, not to a trigger: in TOML, keys after an `[[on]]` header go into that \
             table. Move `{key}` above the first `[[on]]`, or write the trigger inline: on = {{ change = \"status\" }}"
        ));
    }
    let set = [t.change.is_some(), t.created, t.deleted, t.schedule.is_some()].iter().filter(|b| **b).count();
    if set != 1 {
        return Err("set exactly one of `change`, `created = true`, `deleted = true`, `schedule`".to_owned());
    }
    if (t.from.is_some() || t.to.is_some()) && t.change.is_none() {
        return Err("`from` and `to` go with `change`".to_owned());
    }
    if t.zone.is_some() && t.schedule.is_none() {
        return Err("`zone` goes with `schedule`".to_owned());
    }
    if let Some(change) = &t.change {
        let names = match change {
            OneOrMany::One(n) => vec![n.clone()],
            OneOrMany::Many(n) => n.clone(),
        };
        let mut properties = Vec::new();
        for name in names {
            let property = Property::parse(&name).ok_or_else(|| {
                let known: Vec<&str> = Property::ALL.iter().map(|p| p.as_str()).collect();
                let hint =
                    crate::suggest::closest(&name, known.iter().copied()).map(|s| format!(" (did you mean {s}?)"));
                format!("unknown property {name:?}{}; known: {}", hint.unwrap_or_default(), known.join(", "))
            })?;
            properties.push(property);
        }
        return Ok(Trigger::Change { properties, from: t.from.clone(), to: t.to.clone() });
    }
    if t.created {
        return Ok(Trigger::Created);
    }
    if t.deleted {
        return Ok(Trigger::Deleted);
    }
    let expression = t.schedule.clone().unwrap_or_default();
    if expression.split_whitespace().count() == 5 {
        return Err(format!(
            "cron expression {expression:?} has 5 fields, but this syntax starts with seconds (second minute hour \
             day-of-month month day-of-week [year]): did you mean \"0 {}\"?",
            expression.trim()
        ));
    }
    let schedule = cron::Schedule::from_str(&expression).map_err(|e| {
        // The cron crate repeats the expression and draws its own caret: keep its last line.
        let text = e.to_string();
        let reason = text.lines().rev().find(|l| !l.trim().is_empty() && l.trim() != "^").unwrap_or("invalid");
        format!(
            "invalid cron expression {expression:?}: {} (fields: second minute hour day-of-month month day-of-week \
             [year], e.g. \"0 0 9 * * Mon-Fri\" for weekdays at 09:00)",
            reason.trim()
        )
    })?;
    let zone = match &t.zone {
        None => None,
        Some(z) => {
            Some(Tz::from_str(z).map_err(|_| format!("unknown time zone {z:?} (an IANA name such as Europe/Paris)"))?)
        }
    };
    Ok(Trigger::Schedule { expression, schedule: Box::new(schedule), zone })
}

/// Where a TOML string's content starts: after its opening quotes, and after the newline that
/// TOML drops right after `'''` or `"""`.
fn snippet(text: &str, value: &toml::Spanned<String>) -> Snippet {
    let start = value.span().start;
    let rest = text.get(start..).unwrap_or_default();
    let quote = if rest.starts_with("'''") || rest.starts_with("\"\"\"") { 3 } else { 1 };
    let mut offset = start + quote.min(rest.len());
    if quote == 3 {
        let after = text.get(offset..).unwrap_or_default();
        if after.starts_with("\r\n") {
            offset += 2;
        } else if after.starts_with('\n') {
            offset += 1;
        }
    }
    let span = Span::at_offset(text, offset);
    let columns = (quote == 1 && rest.starts_with('"'))
        .then(|| escaped_columns(text.get(offset..).unwrap_or_default(), span.col))
        .flatten();
    Snippet { code: value.get_ref().clone(), line: span.line, col: span.col, columns }
}

/// The file column of each character of a one-line basic string whose content starts at column
/// `col` of `raw`; `None` when it has no escapes (columns then follow one to one).
fn escaped_columns(raw: &str, col: usize) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    let mut chars = raw.chars();
    let mut at = col;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => break,
            '\\' => {
                escaped = true;
                out.push(at);
                let width = match chars.next() {
                    Some('u') => 5,
                    Some('U') => 9,
                    Some('x') => 3,
                    Some(_) => 1,
                    None => 0,
                };
                for _ in 1..width {
                    chars.next();
                }
                at += 1 + width;
            }
            _ => {
                out.push(at);
                at += 1;
            }
        }
    }
    escaped.then_some(out)
}
