//! The action constructors rules call: `email`, `slack`, `webhook`, `task`, `send_invoice`. Each
//! checks its arguments (with a message that names the argument), checks the destination against
//! the configuration, and records an [`Action`]; none performs I/O.

use std::sync::Arc;

use chrono::NaiveDate;
use rhai::{Dynamic, Engine, ImmutableString, Map};

use super::action::Action;
use super::host::{Destinations, current_subject, push_action};
use crate::ids::RecordKind;
use crate::money::Money;

type Fallible<T> = Result<T, Box<rhai::EvalAltResult>>;

fn fail<T>(message: String) -> Fallible<T> {
    Err(message.into())
}

/// What a value is, in an admin's words.
pub(crate) fn kind_of(value: &Dynamic) -> String {
    if value.is_unit() {
        "nothing (`()`)".into()
    } else if value.is_int() || value.is_float() {
        "a number".into()
    } else if value.is_bool() {
        "true/false".into()
    } else if value.is_array() {
        "an array".into()
    } else if value.is_map() {
        "a map".into()
    } else if value.is::<Money>() {
        "money (put it in a text with `${…}`, or use .format(\"fr\"))".into()
    } else if value.is::<NaiveDate>() {
        "a date (put it in a text with `${…}`, or use .long())".into()
    } else {
        value.type_name().rsplit("::").next().unwrap_or("a value").to_owned()
    }
}

fn text(value: &Dynamic, call: &str, arg: &str) -> Fallible<String> {
    match value.clone().try_cast::<ImmutableString>() {
        Some(s) => Ok(s.to_string()),
        None => fail(format!("{call}: `{arg}` must be text, not {}", kind_of(value))),
    }
}

fn texts(value: &Dynamic, call: &str, arg: &str) -> Fallible<Vec<String>> {
    if let Some(items) = value.clone().try_cast::<rhai::Array>() {
        return items.iter().map(|v| text(v, call, arg)).collect();
    }
    Ok(vec![text(value, call, arg)?])
}

fn options(value: &Dynamic, call: &str, allowed: &[&str]) -> Fallible<Map> {
    let Some(map) = value.clone().try_cast::<Map>() else {
        return fail(format!("{call}: options must be a map like #{{ {}: … }}, not {}", allowed[0], kind_of(value)));
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let hint = crate::suggest::closest(key, allowed.iter().copied())
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            return fail(format!("{call}: unknown option `{key}`{hint}; known: {}", allowed.join(", ")));
        }
    }
    Ok(map)
}

fn opt_text(map: &Map, key: &str, call: &str) -> Fallible<Option<String>> {
    map.get(key).filter(|v| !v.is_unit()).map(|v| text(v, call, key)).transpose()
}

/// A script value as JSON, for webhook payloads and Slack blocks.
pub(crate) fn to_json(value: &Dynamic) -> Fallible<serde_json::Value> {
    use serde_json::Value;
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = value.as_float() {
        return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Some(s) = value.clone().try_cast::<ImmutableString>() {
        return Ok(Value::String(s.to_string()));
    }
    if let Some(m) = value.clone().try_cast::<Money>() {
        return Ok(serde_json::json!({"amount": m.amount_string(), "currency": m.currency.code()}));
    }
    if let Some(d) = value.clone().try_cast::<NaiveDate>() {
        return Ok(Value::String(d.to_string()));
    }
    if let Some(items) = value.clone().try_cast::<rhai::Array>() {
        return items.iter().map(to_json).collect::<Fallible<Vec<_>>>().map(Value::Array);
    }
    if let Some(map) = value.clone().try_cast::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, v) in &map {
            out.insert(k.to_string(), to_json(v)?);
        }
        return Ok(Value::Object(out));
    }
    fail(format!("{} cannot be sent as JSON", kind_of(value)))
}

fn due(value: &Dynamic) -> Fallible<NaiveDate> {
    if let Some(d) = value.clone().try_cast::<NaiveDate>() {
        return Ok(d);
    }
    if let Some(s) = value.clone().try_cast::<ImmutableString>()
        && let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d")
    {
        return Ok(d);
    }
    fail(format!("task: `due` must be a date (like today + 3), not {}", kind_of(value)))
}

fn known(set: &std::collections::BTreeSet<String>, name: &str, kind: &str) -> Fallible<()> {
    if set.contains(name) {
        return Ok(());
    }
    let hint = crate::suggest::closest(name, set.iter().map(String::as_str))
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default();
    fail(format!("unknown {kind} destination {name:?}{hint}; configure it under [destinations.{name}]"))
}

/// Registers the constructors; each evaluation may record at most `max` actions.
pub(crate) fn register(engine: &mut Engine, destinations: &Arc<Destinations>, max: usize) {
    let push = move |action: Action| -> Fallible<()> {
        if push_action(action, max) { Ok(()) } else { fail(format!("more than {max} actions in one evaluation")) }
    };

    let d = destinations.clone();
    let email = move |to: &Dynamic, subject: &Dynamic, body: &Dynamic, opts: Option<&Dynamic>| -> Fallible<()> {
        const CALL: &str = "email(to, subject, body)";
        let mut addresses = Vec::new();
        for target in texts(to, CALL, "to")? {
            if target.contains('@') {
                addresses.push(target);
            } else if let Some(list) = d.email.get(&target) {
                addresses.extend(list.iter().cloned());
            } else {
                let names: std::collections::BTreeSet<String> = d.email.keys().cloned().collect();
                known(&names, &target, "email")?;
            }
        }
        if addresses.is_empty() {
            return fail(format!("{CALL}: no recipient (an empty address?)"));
        }
        let (mut cc, mut html) = (Vec::new(), None);
        if let Some(opts) = opts {
            let map = options(opts, CALL, &["html", "cc"])?;
            html = opt_text(&map, "html", CALL)?;
            if let Some(v) = map.get("cc") {
                cc = texts(v, CALL, "cc")?;
            }
        }
        push(Action::Email {
            to: addresses,
            cc,
            subject: text(subject, CALL, "subject")?,
            text: text(body, CALL, "body")?,
            html,
        })
    };
    let e4 = email.clone();
    engine.register_fn("email", move |to: Dynamic, subject: Dynamic, body: Dynamic| email(&to, &subject, &body, None));
    engine.register_fn("email", move |to: Dynamic, subject: Dynamic, body: Dynamic, opts: Dynamic| {
        e4(&to, &subject, &body, Some(&opts))
    });

    let d = destinations.clone();
    let slack = move |dest: &Dynamic, message: &Dynamic, blocks: Option<&Dynamic>| -> Fallible<()> {
        const CALL: &str = "slack(destination, text)";
        let destination = text(dest, CALL, "destination")?;
        known(&d.slack, &destination, "slack")?;
        let blocks = blocks.map(to_json).transpose()?;
        push(Action::Slack { destination, text: text(message, CALL, "text")?, blocks })
    };
    let s3 = slack.clone();
    engine.register_fn("slack", move |dest: Dynamic, message: Dynamic| slack(&dest, &message, None));
    engine.register_fn("slack", move |dest: Dynamic, message: Dynamic, blocks: Dynamic| {
        s3(&dest, &message, Some(&blocks))
    });

    let d = destinations.clone();
    engine.register_fn("webhook", move |dest: Dynamic, payload: Dynamic| -> Fallible<()> {
        let destination = text(&dest, "webhook(destination, payload)", "destination")?;
        known(&d.webhook, &destination, "webhook")?;
        push(Action::Webhook { destination, payload: to_json(&payload)? })
    });

    let task = move |title: &Dynamic, opts: Option<&Dynamic>| -> Fallible<()> {
        const CALL: &str = "task(title, options)";
        let title = text(title, CALL, "title")?;
        let (mut notes, mut assignee, mut due_on, mut approval) = (None, None, None, false);
        if let Some(opts) = opts {
            let map = options(opts, CALL, &["assignee", "notes", "due", "approval"])?;
            notes = opt_text(&map, "notes", CALL)?;
            assignee = opt_text(&map, "assignee", CALL)?;
            due_on = map.get("due").filter(|v| !v.is_unit()).map(due).transpose()?;
            if let Some(v) = map.get("approval") {
                approval =
                    v.as_bool().or_else(|t| fail(format!("{CALL}: `approval` must be true or false, not {t}")))?;
            }
        }
        push(Action::Task { title, notes, assignee, due: due_on, approval })
    };
    let t2 = task;
    engine.register_fn("task", move |title: Dynamic| task(&title, None));
    engine.register_fn("task", move |title: Dynamic, opts: Dynamic| t2(&title, Some(&opts)));

    let send = move |to: Option<&Dynamic>| -> Fallible<()> {
        let Some(invoice) = current_subject().filter(|k| k.kind == RecordKind::Invoice) else {
            return fail("send_invoice(): only rules about invoices can send one".to_owned());
        };
        let to = to.map(|t| text(t, "send_invoice(to)", "to")).transpose()?;
        push(Action::SendInvoice { invoice, to })
    };
    engine.register_fn("send_invoice", move || send(None));
    engine.register_fn("send_invoice", move |to: Dynamic| send(Some(&to)));
}
