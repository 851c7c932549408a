//! `check_rule`'s diagnostics for the typical authoring mistakes, as the author reads them:
//! `file:line:col: error|warning: message`, the source line and a caret, located in the TOML file
//! even though the rhai sits inside a TOML string. Each rendered diagnostic is printed too, for
//! the rule-authoring guide.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly on purpose")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use invoiceflow_rules::RecordKind;
use invoiceflow_rules::script::check::{Checked, check_rule};
use invoiceflow_rules::script::{Destinations, HostConfig, Limits, RuleHost, RuleId};

fn host() -> RuleHost {
    let destinations = Destinations {
        slack: BTreeSet::from(["finance".to_owned()]),
        webhook: BTreeSet::from(["erp".to_owned()]),
        email: BTreeMap::from([("ap-team".to_owned(), vec!["ap@acme.example".to_owned()])]),
    };
    let config = HostConfig { destinations, library: Vec::new(), limits: Limits::default(), stopwatch: Instant::now };
    RuleHost::new(config).map_err(|e| format!("{e:?}")).unwrap()
}

const FILE: &str = "rule.toml";

/// Checks `text` as `rule.toml`; returns what check found and every diagnostic rendered, printed.
fn check(text: &str) -> (Checked, String) {
    let checked = check_rule(&host(), RuleId::new("rule"), text);
    let rendered: String = checked.diagnostics.iter().map(|d| d.render(FILE, text)).collect();
    eprintln!("--- {FILE}\n{text}--- check says:\n{rendered}");
    (checked, rendered)
}

/// `text` is refused with exactly `expected`.
fn assert_refused(text: &str, expected: &str) {
    let (checked, rendered) = check(text);
    assert_eq!(rendered, expected);
    assert!(checked.rule.is_none(), "a rule with errors must not compile");
}

/// `text` compiles, with exactly `expected` as warnings.
fn assert_warned(text: &str, expected: &str) {
    let (checked, rendered) = check(text);
    assert_eq!(rendered, expected);
    assert!(checked.rule.is_some(), "warnings alone must not refuse the rule");
}

/// Every diagnostic's message is one line: `file:line:col: error: message` is what editors and
/// CI logs parse, and the source line and caret are the renderer's.
fn assert_one_line_messages(text: &str) {
    let (checked, _) = check(text);
    for d in &checked.diagnostics {
        assert!(!d.message.contains('\n'), "a diagnostic message spans several lines: {:?}", d.message);
    }
}

// (a) A typo in a property. An error, not a warning, since commit 475fcdc ("such a script fails
// on every record").

#[test]
fn a_property_typo_in_a_one_line_when_points_at_the_property() {
    let text = r#"name = "Large invoices"
on = { created = true }
when = 'invoice.amout > 10000'
then = '''
slack("finance", "large")
'''
"#;
    assert_refused(
        text,
        r"rule.toml:3:17: error: `invoice` has no property `amout`: did you mean `amount`?
  |
3 | when = 'invoice.amout > 10000'
  |                 ^
",
    );
}

#[test]
fn a_property_typo_in_a_multi_line_then_points_at_the_property() {
    let text = r#"name = "Large invoices"
on = { created = true }

then = '''
let big = invoice.amount > 10000;
if big { slack("finance", `${invoice.number}: ${invoice.amout}`) }
'''
"#;
    assert_refused(
        text,
        r#"rule.toml:6:57: error: `invoice` has no property `amout`: did you mean `amount`?
  |
6 | if big { slack("finance", `${invoice.number}: ${invoice.amout}`) }
  |                                                         ^
"#,
    );
}

#[test]
fn a_property_typo_on_the_first_line_of_a_then_block_points_at_the_property() {
    let text = r#"name = "Large invoices"
on = { created = true }
then = '''
  if invoice.amout > 10000 { slack("finance", "large") }
'''
"#;
    assert_refused(
        text,
        r#"rule.toml:4:14: error: `invoice` has no property `amout`: did you mean `amount`?
  |
4 |   if invoice.amout > 10000 { slack("finance", "large") }
  |              ^
"#,
    );
}

#[test]
fn a_property_typo_in_a_then_on_the_line_of_its_quotes_points_at_the_property() {
    let text = r#"name = "Large invoices"
on = { created = true }
then = '''slack("finance", invoice.amout)'''
"#;
    assert_refused(
        text,
        r#"rule.toml:3:36: error: `invoice` has no property `amout`: did you mean `amount`?
  |
3 | then = '''slack("finance", invoice.amout)'''
  |                                    ^
"#,
    );
}

#[test]
fn a_property_typo_in_a_double_quoted_when_with_escapes_points_at_the_property() {
    // In a basic TOML string `\"` is two characters of the file but one of the code.
    let text = r#"name = "Sent"
on = { created = true }
when = "invoice.status == \"sent\" && invoice.amout > 1"
then = 'task("x")'
"#;
    assert_refused(
        text,
        r#"rule.toml:3:47: error: `invoice` has no property `amout`: did you mean `amount`?
  |
3 | when = "invoice.status == \"sent\" && invoice.amout > 1"
  |                                               ^
"#,
    );
}

// (b) A missing closing brace.

#[test]
fn a_missing_closing_brace_in_then_is_a_syntax_error() {
    let text = r#"name = "Large invoices"
on = { created = true }

then = '''
if invoice.amount > 10000 {
    slack("finance", "large");
'''
"#;
    assert_refused(
        text,
        r"rule.toml:7:1: error: Expecting '}' to terminate this block
  |
7 | '''
  | ^
",
    );
}

#[test]
fn a_missing_closing_brace_after_a_last_statement_without_semicolon_names_the_brace() {
    // The example rules end a block's last statement without `;`: the brace is what is missing.
    let text = r#"name = "Large invoices"
on = { created = true }

then = '''
if invoice.amount > 10000 {
    slack("finance", "large")
'''
"#;
    assert_refused(
        text,
        r"rule.toml:7:1: error: Expecting '}' to terminate this block
  |
7 | '''
  | ^
",
    );
}

// (c) A wrong argument type, found by the dry run.

#[test]
fn a_number_as_a_slack_text_is_an_error_from_the_dry_run() {
    let text = r#"name = "Large invoices"
on = { created = true }

then = '''
slack("finance", 42)
'''
"#;
    assert_refused(
        text,
        r#"rule.toml:5:1: error: on a sample invoice: slack(destination, text): `text` must be text, not a number
  |
5 | slack("finance", 42)
  | ^
"#,
    );
}

// (d) An unknown destination.

#[test]
fn an_unknown_destination_suggests_the_configured_one() {
    let text = r#"name = "Large invoices"
on = { created = true }

then = '''
slack("finnace", `Invoice ${invoice.number}`)
'''
"#;
    assert_refused(
        text,
        r#"rule.toml:5:7: error: unknown slack destination "finnace" (did you mean "finance"?); known: finance (see [destinations] in invoiceflow.toml)
  |
5 | slack("finnace", `Invoice ${invoice.number}`)
  |       ^
"#,
    );
}

// (e) A bad cron expression. The expected texts are the current ones without the cron crate's
// echo of the expression and its caret, which break the diagnostic over several lines.

#[test]
fn a_five_field_cron_expression_is_refused_with_the_field_order() {
    let text = r#"name = "Weekdays"
on = { schedule = "0 9 * * Mon-Fri" }
then = 'task("x")'
"#;
    assert_one_line_messages(text);
    assert_refused(
        text,
        r#"rule.toml:2:20: error: trigger 1: cron expression "0 9 * * Mon-Fri" has 5 fields, but this syntax starts with seconds (second minute hour day-of-month month day-of-week [year]): did you mean "0 0 9 * * Mon-Fri"?
  |
2 | on = { schedule = "0 9 * * Mon-Fri" }
  |                    ^
"#,
    );
}

#[test]
fn a_cron_second_out_of_range_is_refused() {
    let text = r#"name = "Hourly"
on = { schedule = "61 * * * * *" }
then = 'task("x")'
"#;
    assert_one_line_messages(text);
    assert_refused(
        text,
        r#"rule.toml:2:20: error: trigger 1: invalid cron expression "61 * * * * *": Seconds must be less than 59. ('61' specified.) (fields: second minute hour day-of-month month day-of-week [year], e.g. "0 0 9 * * Mon-Fri" for weekdays at 09:00)
  |
2 | on = { schedule = "61 * * * * *" }
  |                    ^
"#,
    );
}

// Triggers and records.

#[test]
fn when_after_an_on_header_is_explained() {
    let text = r#"name = "Large invoices"
then = 'task("x")'

[[on]]
change = "status"
when = 'invoice.amount > 10000'
"#;
    assert_refused(
        text,
        r#"rule.toml:4:1: error: trigger 1: `when` belongs to the rule, not to a trigger: in TOML, keys after an `[[on]]` header go into that table. Move `when` above the first `[[on]]`, or write the trigger inline: on = { change = "status" }
  |
4 | [[on]]
  | ^
"#,
    );
}

#[test]
fn then_and_name_after_an_on_header_are_explained() {
    // The usual layout mistake: the rule's required keys below the trigger table. TOML then reads
    // a rule without `then` (or without `name`).
    let mut unexplained = Vec::new();
    for (key, text) in [
        (
            "then",
            r#"name = "Payment received"

[[on]]
change = "status"
to = "paid"

then = 'task("x")'
"#,
        ),
        (
            "name",
            r#"then = 'task("x")'

[[on]]
change = "status"
name = "Status changed"
"#,
        ),
    ] {
        let (checked, rendered) = check(text);
        assert!(checked.rule.is_none(), "{key}");
        if !rendered.contains(&format!("`{key}` belongs to the rule, not to a trigger")) {
            unexplained.push(rendered);
        }
    }
    assert!(unexplained.is_empty(), "not explained:\n{}", unexplained.join("\n"));
}

#[test]
fn an_unknown_trigger_property_suggests_the_right_one() {
    let text = r#"name = "Amount changed"
on = { change = "amout" }
then = 'task("x")'
"#;
    assert_refused(
        text,
        r#"rule.toml:2:6: error: trigger 1: unknown property "amout" (did you mean amount?); known: lifecycle, amount, balance, recipient, number, status, due_date, email_status, currency, deal_id, contact_id, company_id
  |
2 | on = { change = "amout" }
  |      ^
"#,
    );
}

#[test]
fn a_status_that_does_not_exist_is_a_warning_that_suggests_the_right_one() {
    let text = r#"name = "Paid"
on = { change = "status", to = "payed" }
then = 'task("x")'
"#;
    assert_warned(
        text,
        r#"rule.toml:2:32: warning: invoice status "payed" does not exist (did you mean paid?); known: awaiting_send, sent, partially_paid, paid, overdue, voided
  |
2 | on = { change = "status", to = "payed" }
  |                                ^
"#,
    );
}

#[test]
fn records_may_be_singular_or_plural() {
    for (records, kind) in [("invoice", RecordKind::Invoice), ("bills", RecordKind::Bill)] {
        let text =
            format!("name = \"Any\"\nrecords = \"{records}\"\non = {{ created = true }}\nthen = 'task(\"x\")'\n");
        let (checked, rendered) = check(&text);
        assert_eq!(rendered, "", "records = {records:?}");
        assert_eq!(checked.rule.expect("compiles").def.records, kind, "records = {records:?}");
    }
}
