//! Rule scripts end to end: the example rules, the script API, `check`'s diagnostics and the
//! sandbox's limits.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly on purpose")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::check::check_rule;
use invoiceflow_rules::script::subject::from_canonical;
use invoiceflow_rules::script::{
    Action, Cause, CompiledRule, Destinations, HostConfig, Input, Limits, RuleHost, RuleId, Subject,
};
use invoiceflow_rules::{Change, Property};
use serde_json::json;

fn host_with(library: Vec<(String, String)>) -> RuleHost {
    let destinations = Destinations {
        slack: BTreeSet::from(["finance".to_owned()]),
        webhook: BTreeSet::from(["erp".to_owned()]),
        email: BTreeMap::from([("ap-team".to_owned(), vec!["ap@acme.example".to_owned()])]),
    };
    let config = HostConfig { destinations, library, limits: Limits::default(), stopwatch: Instant::now };
    RuleHost::new(config).map_err(|e| format!("{e:?}")).unwrap()
}

fn host() -> RuleHost {
    host_with(Vec::new())
}

fn rule(host: &RuleHost, id: &str, text: &str) -> CompiledRule {
    let checked = check_rule(host, RuleId::new(id), text);
    let errors: Vec<String> = checked.diagnostics.iter().map(|d| d.render(id, text)).collect();
    checked.rule.unwrap_or_else(|| panic!("{id} does not compile:\n{}", errors.join("\n")))
}

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../examples/rules/{name}.toml", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn invoice(fields: serde_json::Value, today: &str) -> Subject {
    let mut base = json!({"type": "invoice", "id": "1001", "number": "1001", "customer": "Acme Corp",
        "recipient": "ap@acme.example", "amount": "1250.00", "balance": "1250.00", "currency": "USD",
        "txn_date": "2026-10-01", "due_date": "2026-11-18", "email_status": "EmailSent",
        "updated_at": "2026-10-02T09:00:00Z"});
    if let (Some(b), Some(f)) = (base.as_object_mut(), fields.as_object()) {
        b.extend(f.clone());
    }
    from_canonical(base, day(today)).unwrap()
}

fn run(host: &RuleHost, rule: &CompiledRule, subject: &Subject, change: Option<&Change>, now: &str) -> Vec<Action> {
    let input = Input {
        subject,
        change,
        now: at(now),
        zone: chrono_tz::America::New_York,
        locale: Locale::En,
        cause: Cause::Manual,
        deal: None,
    };
    host.evaluate(rule, &input).unwrap().intents.into_iter().map(|i| i.action).collect()
}

fn status_change(from: &str, to: &str) -> Change {
    Change { property: Property::Status, old: Some(from.to_owned()), new: Some(to.to_owned()) }
}

#[test]
fn payment_received_posts_to_finance() {
    let host = host();
    let rule = rule(&host, "payment-received", &example("payment-received"));
    let paid = invoice(json!({"balance": "0.00"}), "2026-11-25");
    let actions = run(&host, &rule, &paid, Some(&status_change("sent", "paid")), "2026-11-25T15:00:00Z");
    assert_eq!(
        actions,
        vec![Action::Slack {
            destination: "finance".into(),
            text: "💰 Acme Corp paid invoice #1001 ($1,250.00)".into(),
            blocks: None
        }]
    );
}

#[test]
fn overdue_follow_up_writes_on_days_7_14_and_30_only() {
    let host = host();
    let rule = rule(&host, "overdue-follow-up", &example("overdue-follow-up"));
    // Due 2026-11-18: 7 days overdue on the 25th.
    let due = |today: &str| invoice(json!({"balance": "800.00"}), today);
    let actions = run(&host, &rule, &due("2026-11-25"), None, "2026-11-25T14:00:00Z");
    let [Action::Email { to, subject, text, .. }] = actions.as_slice() else { panic!("one email: {actions:?}") };
    assert_eq!(to, &["ap@acme.example"]);
    assert_eq!(subject, "Reminder: invoice 1001 is 7 days overdue");
    assert!(text.contains("was due on November 18, 2026"), "{text}");
    assert!(text.contains("The amount due is $800.00 (of $1,250.00)"), "{text}");
    assert!(run(&host, &rule, &due("2026-11-26"), None, "2026-11-26T14:00:00Z").is_empty());
    let final_one = run(&host, &rule, &due("2026-12-18"), None, "2026-12-18T14:00:00Z");
    assert!(matches!(&final_one[..], [Action::Email { subject, .. }] if subject.starts_with("Final reminder")));
    let paid = invoice(json!({"balance": "0.00"}), "2026-11-25");
    assert!(run(&host, &rule, &paid, None, "2026-11-25T14:00:00Z").is_empty());
}

#[test]
fn large_invoice_due_date_moved_later_makes_a_task() {
    let host = host();
    let rule = rule(&host, "large-invoice-due-date-moved", &example("large-invoice-due-date-moved"));
    let large = invoice(json!({"amount": "12000.00", "balance": "12000.00", "due_date": "2026-12-31"}), "2026-11-25");
    let moved = |from: &str, to: &str| Change {
        property: Property::DueDate,
        old: Some(from.to_owned()),
        new: Some(to.to_owned()),
    };
    let later = run(&host, &rule, &large, Some(&moved("2026-12-01", "2026-12-31")), "2026-11-25T15:00:00Z");
    let [Action::Task { title, assignee, due, .. }] = later.as_slice() else { panic!("one task: {later:?}") };
    assert_eq!(title, "Due date of invoice 1001 ($12,000.00) moved to 2026-12-31");
    assert_eq!(assignee.as_deref(), Some("account owner"));
    assert_eq!(*due, Some(day("2026-11-27")));
    assert!(run(&host, &rule, &large, Some(&moved("2026-12-31", "2026-12-01")), "2026-11-25T15:00:00Z").is_empty());
    let small = invoice(json!({"amount": "9000.00", "balance": "9000.00"}), "2026-11-25");
    assert!(run(&host, &rule, &small, Some(&moved("2026-12-01", "2026-12-31")), "2026-11-25T15:00:00Z").is_empty());
}

#[test]
fn bill_due_soon_emails_the_ap_team() {
    let host = host();
    let rule = rule(&host, "bill-due-soon", &example("bill-due-soon"));
    let bill = from_canonical(
        json!({"type": "bill", "id": "77", "number": "B-77", "vendor": "Paper Co", "amount": "6200.00",
            "balance": "6200.00", "currency": "USD", "txn_date": "2026-11-01", "due_date": "2026-11-28",
            "updated_at": "2026-11-01T09:00:00Z"}),
        day("2026-11-25"),
    )
    .unwrap();
    let actions = run(&host, &rule, &bill, None, "2026-11-25T13:00:00Z");
    let [Action::Email { to, subject, .. }] = actions.as_slice() else { panic!("one email: {actions:?}") };
    assert_eq!(to, &["ap@acme.example"], "the named destination is expanded");
    assert_eq!(subject, "Bill B-77 from Paper Co is due on 2026-11-28");
}

fn expression(host: &RuleHost, when: &str, subject: &Subject) -> bool {
    let text = format!("name = \"t\"\non = {{ created = true }}\nwhen = '{when}'\nthen = ''\n");
    let rule = rule(host, "t", &text);
    let input = Input {
        subject,
        change: None,
        now: at("2026-11-25T15:00:00Z"),
        zone: chrono_tz::UTC,
        locale: Locale::En,
        cause: Cause::Manual,
        deal: None,
    };
    host.evaluate(&rule, &input).unwrap().matched
}

#[test]
fn money_compares_exactly_with_numbers_and_text() {
    let host = host();
    let inv = invoice(json!({"amount": "1000.00", "balance": "999.99"}), "2026-11-25");
    for (when, expected) in [
        ("invoice.amount == 1000", true),
        ("invoice.amount >= \"1000.00\"", true),
        ("invoice.amount > 999.99", true),
        ("invoice.balance < 1000", true),
        ("invoice.balance == 999.99", true),
        ("invoice.balance >= \"1000\"", false),
        ("1000 <= invoice.amount", true),
        ("invoice.paid == \"0.01\"", true),
        ("invoice.amount - invoice.balance == 0.01", true),
    ] {
        assert_eq!(expression(&host, when, &inv), expected, "{when}");
    }
}

#[test]
fn dates_have_day_arithmetic() {
    let host = host();
    let inv = invoice(json!({}), "2026-11-25");
    for (when, expected) in [
        ("invoice.due_date + 7 == today", true),
        ("today - invoice.due_date == 7", true),
        ("invoice.due_date < \"2026-11-20\"", true),
        ("invoice.due_date.weekday == \"Wed\"", true),
        ("invoice.days_overdue == 7 && invoice.days_until_due == -7", true),
        ("now.date == today && now.hour == 15", true),
    ] {
        assert_eq!(expression(&host, when, &inv), expected, "{when}");
    }
}

#[test]
fn money_and_dates_format_per_locale() {
    let host = host();
    let inv = invoice(json!({"amount": "1234.50", "currency": "EUR", "balance": "1234.50"}), "2026-11-25");
    assert!(expression(&host, "invoice.amount.format(\"fr\") == \"1\u{202f}234,50\u{a0}€\"", &inv));
    assert!(expression(&host, "invoice.due_date.format(\"fr\") == \"18 novembre 2026\"", &inv));
    assert!(expression(&host, "`${invoice.amount}` == \"€1,234.50\"", &inv));
}

#[test]
fn provenance_names_the_rule_version_cause_and_values_seen() {
    let host = host();
    let rule = rule(&host, "payment-received", &example("payment-received"));
    let paid = invoice(json!({"balance": "0.00"}), "2026-11-25");
    let change = status_change("sent", "paid");
    let cause =
        Cause::Change { event: 42, property: "status".into(), from: Some("sent".into()), to: Some("paid".into()) };
    let input = Input {
        subject: &paid,
        change: Some(&change),
        now: at("2026-11-25T15:00:00Z"),
        zone: chrono_tz::UTC,
        locale: Locale::En,
        cause: cause.clone(),
        deal: None,
    };
    let intents = host.evaluate(&rule, &input).unwrap().intents;
    assert_eq!(intents.len(), 1);
    let intent = &intents[0];
    assert_eq!((intent.rule.as_str(), intent.version.len()), ("payment-received", 12));
    assert_eq!(intent.cause, cause);
    assert_eq!(intent.record.to_string(), paid.key().to_string());
    assert_eq!(intent.seen.get("status"), Some(json!("paid")));
    assert_eq!(intent.seen.get("balance"), Some(json!("0.00")));
}

#[test]
fn deal_properties_reach_scripts() {
    use invoiceflow_rules::deal::DealProperties;
    use invoiceflow_rules::script::types::DealView;
    let host = host();
    let text = "name = \"Deal\"\non = { change = \"status\" }\nwhen = 'deal != () && deal.status == \"overdue\"'\n\
                then = 'task(`Deal ${deal.id}: ${deal.amount} from invoice ${deal.number}, due ${deal.due_date}`)'\n";
    let rule = rule(&host, "deal", text);
    assert!(rule.uses_deal());
    let inv = invoice(json!({"deal_id": "deal-9"}), "2026-11-25");
    let Subject::Invoice(record, _) = &inv else { panic!("an invoice") };
    let deal = DealView {
        id: "deal-9".into(),
        properties: Some(DealProperties {
            amount: record.amount,
            recipient: "ap@acme.example".into(),
            number: Some("1001".into()),
            status: invoiceflow_rules::InvoiceStatus::Overdue,
            due_date: record.due_date,
        }),
    };
    let change = status_change("sent", "overdue");
    let input = |deal| Input {
        subject: &inv,
        change: Some(&change),
        now: at("2026-11-25T15:00:00Z"),
        zone: chrono_tz::UTC,
        locale: Locale::En,
        cause: Cause::Manual,
        deal,
    };
    let actions: Vec<Action> =
        host.evaluate(&rule, &input(Some(&deal))).unwrap().intents.into_iter().map(|i| i.action).collect();
    assert!(
        matches!(&actions[..], [Action::Task { title, .. }] if title == "Deal deal-9: $1,250.00 from invoice 1001, due 2026-11-18"),
        "{actions:?}"
    );
    assert!(!host.evaluate(&rule, &input(None)).unwrap().matched, "no deal: `deal` is ()");
}
