//! The native `when` evaluator gives rhai's answers: the same expressions over many records,
//! evaluated with and without it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly on purpose")]

use std::time::Instant;

use chrono::{DateTime, NaiveDate};
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::subject::from_canonical;
use invoiceflow_rules::script::{Cause, Destinations, HostConfig, Input, Limits, RuleHost, RuleId, Subject};
use invoiceflow_rules::{Change, Property};
use serde_json::json;

const EXPRESSIONS: &[&str] = &[
    r#"invoice.status == "overdue""#,
    r#"invoice.status != "paid" && invoice.amount >= 1000"#,
    r#"invoice.status == "overdue" || invoice.status == "partially_paid""#,
    r#"!(invoice.status == "sent")"#,
    r#"invoice.amount > 999.99"#,
    r#"invoice.amount >= "1000.00""#,
    r#"invoice.amount == 1000"#,
    r#"invoice.balance < invoice.amount"#,
    r#"invoice.paid > 0"#,
    r#"invoice.amount - invoice.balance >= 100"#,
    r#"1000 <= invoice.balance"#,
    r#"invoice.amount > "abc""#,
    r#"invoice.days_overdue in [1, 7, 14, 30, 60]"#,
    r#"invoice.days_overdue >= 2"#,
    r#"invoice.days_until_due == 3"#,
    r#"invoice.days_overdue == ()"#,
    r#"invoice.due_date == ()"#,
    r#"invoice.due_date != ()"#,
    r#"invoice.due_date < today"#,
    r#"invoice.due_date + 7 == today"#,
    r#"today - invoice.txn_date >= 2"#,
    r#"invoice.due_date >= "2026-11-20""#,
    r#"invoice.due_date > "not a date""#,
    r#"invoice.number == ()"#,
    r#"invoice.number == "1003""#,
    r#"invoice.currency in ["USD", "CAD"]"#,
    r#"invoice.customer < "M""#,
    r#"invoice.deal_id != ()"#,
    r#"invoice.email_status == "EmailSent""#,
    r#"invoice.amount == 1000 && invoice.status"#,
    r#"invoice.amount == 1000.5"#,
    r#"invoice.days_overdue > 1.5"#,
    r#"change.property == "status" && change.to == "paid" && change.from != "paid""#,
    r#"change.to > change.from"#,
    r#"change.from == ()"#,
    r#"invoice.status == 3"#,
    r#"invoice.amount in [1000, 1500.5, "2000"]"#,
];

fn subjects() -> Vec<(Subject, Option<Change>)> {
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let mut out = Vec::new();
    let amounts = ["1000.00", "1000.50", "999.99", "2000", "0.00", "15000.00"];
    let balances = ["0.00", "100.00", "1000.00", "same"];
    let dues = [None, Some("2026-11-18"), Some("2026-11-24"), Some("2026-11-28"), Some("2026-12-25")];
    let changes = [
        None,
        Some(Change { property: Property::Status, old: Some("sent".into()), new: Some("paid".into()) }),
        Some(Change { property: Property::Status, old: None, new: Some("paid".into()) }),
        Some(Change { property: Property::DueDate, old: Some("2026-12-01".into()), new: Some("2026-12-31".into()) }),
        Some(Change { property: Property::Amount, old: Some("100.00".into()), new: Some("90.00".into()) }),
    ];
    let mut n = 0;
    for amount in amounts {
        for balance in balances {
            for due in dues {
                n += 1;
                let balance = if balance == "same" { amount } else { balance };
                let customer = if n % 2 == 0 { "Acme" } else { "Zed" };
                let currency = ["USD", "EUR", "CAD"][n % 3];
                let email_status = ["EmailSent", "NeedToSend"][n % 2];
                let mut v = json!({"type": "invoice", "id": format!("{n}"), "customer": customer,
                    "amount": amount, "balance": balance, "currency": currency,
                    "txn_date": "2026-11-20", "email_status": email_status,
                    "updated_at": "2026-11-20T00:00:00Z"});
                if let Some(d) = due {
                    v["due_date"] = json!(d);
                }
                if n % 4 == 0 {
                    v["number"] = json!(format!("{}", 1000 + n % 7));
                    v["deal_id"] = json!("deal-1");
                }
                let subject = from_canonical(v, today).unwrap();
                out.push((subject, changes[n % changes.len()].clone()));
            }
        }
    }
    out
}

#[test]
fn the_native_when_agrees_with_rhai() {
    let host = RuleHost::new(HostConfig {
        destinations: Destinations::default(),
        library: Vec::new(),
        limits: Limits::default(),
        stopwatch: Instant::now,
    })
    .map_err(|e| format!("{e:?}"))
    .unwrap();
    let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().to_utc();
    let cases = subjects();
    let mut native = 0;
    for when in EXPRESSIONS {
        let text = format!("name = \"t\"\non = {{ created = true }}\nwhen = '{when}'\nthen = ''\n");
        let def = invoiceflow_rules::script::parse_rule(RuleId::new("t"), &text).unwrap();
        let rule = host.compile(def).unwrap_or_else(|e| panic!("{when}: {e:?}"));
        if RuleHost::has_fast_path(&rule) {
            native += 1;
        }
        for (subject, change) in &cases {
            let input = Input {
                subject,
                change: change.as_ref(),
                now,
                zone: chrono_tz::UTC,
                locale: Locale::En,
                cause: Cause::Manual,
                deal: None,
            };
            let fast = host.evaluate(&rule, &input).map(|e| e.matched);
            let slow = host.evaluate_without_fast_path(&rule, &input).map(|e| e.matched);
            match (&fast, &slow) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{when} on {:?} with {change:?}", subject.key()),
                (Err(_), Err(_)) => {}
                _ => panic!("{when} on {:?} with {change:?}: native {fast:?}, rhai {slow:?}", subject.key()),
            }
        }
    }
    // Nearly every expression above runs natively; the test is worth little otherwise.
    assert!(native >= EXPRESSIONS.len() - 2, "only {native} of {} run natively", EXPRESSIONS.len());
}
