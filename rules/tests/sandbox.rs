//! The sandbox against hostile rule scripts: endless loops, runaway strings, arrays and maps,
//! deep recursion, deeply nested expressions, imports in a loop, `eval`, and floods of actions.
//! Each must stop with a clear message naming the limit it hit, quickly (the wall time is
//! printed; only a generous bound is asserted), and leave nothing behind: a well-behaved rule
//! evaluated right after it on the same host and thread gives exactly its usual result.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly on purpose")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::check::check_rule;
use invoiceflow_rules::script::subject::from_canonical;
use invoiceflow_rules::script::{
    Action, Cause, CompiledRule, Destinations, EvalError, Evaluation, HostConfig, Input, Limits, RuleHost, RuleId,
    Severity, Subject, parse_rule,
};
use invoiceflow_rules::{Change, Property};
use serde_json::json;

/// The most any hostile evaluation may take here. The sandbox aims at 100 ms (a 50 ms deadline
/// checked every 512 operations); that figure is printed, not asserted, because timed assertions
/// are flaky on shared machines.
const GENEROUS: Duration = Duration::from_secs(1);

fn host() -> RuleHost {
    let destinations = Destinations {
        slack: BTreeSet::from(["finance".to_owned()]),
        webhook: BTreeSet::from(["erp".to_owned()]),
        email: BTreeMap::from([("ap-team".to_owned(), vec!["ap@acme.example".to_owned()])]),
    };
    let library = vec![("util".to_owned(), "fn twice(x) { x * 2 }".to_owned())];
    let config = HostConfig { destinations, library, limits: Limits::default(), stopwatch: Instant::now };
    RuleHost::new(config).map_err(|e| format!("{e:?}")).unwrap()
}

/// A rule file about invoices whose `then` is `code`.
fn rule_file(code: &str) -> String {
    format!("name = \"Hostile\"\non = {{ change = \"status\" }}\n\nthen = '''\n{code}\n'''\n")
}

/// Compiles a rule without `check`'s dry run. The engine loads rules through `check_rule`, whose
/// dry run on a sample record flags (or refuses) most of these scripts; but a script can behave on
/// the sample and misbehave on real records, so the sandbox must hold for every compiled rule.
fn compiled(host: &RuleHost, text: &str) -> CompiledRule {
    let def = parse_rule(RuleId::new("hostile"), text).unwrap_or_else(|d| panic!("not a rule file: {d:?}"));
    host.compile(def).unwrap_or_else(|d| panic!("does not compile: {d:?}"))
}

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../examples/rules/{name}.toml", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A paid invoice (balance 0) and its status change sent → paid.
struct Paid {
    subject: Subject,
    change: Change,
}

impl Paid {
    fn new() -> Self {
        let today: NaiveDate = "2026-11-25".parse().unwrap();
        let subject = from_canonical(
            json!({"type": "invoice", "id": "1001", "number": "1001", "customer": "Acme Corp",
                "recipient": "ap@acme.example", "amount": "1250.00", "balance": "0.00", "currency": "USD",
                "txn_date": "2026-10-01", "due_date": "2026-11-18", "email_status": "EmailSent",
                "updated_at": "2026-10-02T09:00:00Z"}),
            today,
        )
        .unwrap();
        let change = Change { property: Property::Status, old: Some("sent".to_owned()), new: Some("paid".to_owned()) };
        Self { subject, change }
    }

    fn input(&self) -> Input<'_> {
        Input {
            subject: &self.subject,
            change: Some(&self.change),
            now: at("2026-11-25T15:00:00Z"),
            zone: chrono_tz::America::New_York,
            locale: Locale::En,
            cause: Cause::Change {
                event: 7,
                property: "status".to_owned(),
                from: Some("sent".to_owned()),
                to: Some("paid".to_owned()),
            },
            deal: None,
        }
    }
}

/// Well-behaved rules and what they give on a fresh thread, to compare with after a hostile one.
struct Good {
    paid: Paid,
    /// `examples/rules/payment-received.toml`.
    payment_received: CompiledRule,
    payment_received_normally: Evaluation,
    /// A rule doing a few thousand operations: the deadline is checked several times while it
    /// runs, so a deadline left behind by an earlier evaluation would stop it.
    busy: CompiledRule,
    busy_normally: Evaluation,
}

impl Good {
    /// Must be called before any hostile evaluation on this thread.
    fn new(host: &RuleHost) -> Self {
        let paid = Paid::new();
        let text = example("payment-received");
        let checked = check_rule(host, RuleId::new("payment-received"), &text);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let payment_received = checked.rule.unwrap();
        let payment_received_normally = host.evaluate(&payment_received, &paid.input()).unwrap();
        let actions: Vec<&Action> = payment_received_normally.intents.iter().map(|i| &i.action).collect();
        assert!(payment_received_normally.matched);
        assert_eq!(
            actions,
            [&Action::Slack {
                destination: "finance".into(),
                text: "💰 Acme Corp paid invoice #1001 ($1,250.00)".into(),
                blocks: None
            }]
        );
        let busy_text =
            rule_file("let n = 0;\nfor i in 0..2000 { n += i; }\nif n == 1999000 { slack(\"finance\", `busy ${n}`) }");
        let busy = compiled(host, &busy_text);
        let busy_normally = host.evaluate(&busy, &paid.input()).unwrap();
        assert_eq!(busy_normally.intents.len(), 1, "{busy_normally:?}");
        Self { paid, payment_received, payment_received_normally, busy, busy_normally }
    }

    /// The well-behaved rules give exactly their usual results on this thread now.
    fn assert_unaffected(&self, host: &RuleHost, after: &str) {
        // Past any deadline the hostile evaluation could have left set.
        std::thread::sleep(Limits::default().deadline + Duration::from_millis(10));
        let now = host.evaluate(&self.payment_received, &self.paid.input());
        assert_eq!(now.as_ref(), Ok(&self.payment_received_normally), "payment-received after {after}");
        let busy = host.evaluate(&self.busy, &self.paid.input());
        assert_eq!(busy.as_ref(), Ok(&self.busy_normally), "the busy rule after {after}");
    }
}

/// Evaluates `rule` on the paid invoice, printing how long it took.
fn timed(host: &RuleHost, rule: &CompiledRule, paid: &Paid, name: &str) -> (Result<Evaluation, EvalError>, Duration) {
    let start = Instant::now();
    let result = host.evaluate(rule, &paid.input());
    let elapsed = start.elapsed();
    eprintln!("{name}: {:.1} ms: {result:?}", elapsed.as_secs_f64() * 1000.0);
    (result, elapsed)
}

/// The messages of the limits that stop a script on time: which one comes first depends on how
/// fast the machine runs rhai (1,000,000 cheap operations take about 40 ms unoptimised here and
/// 3 ms optimised, against a 50 ms deadline).
const DEADLINE: &str = "took longer than the 50 ms limit";
const OPERATIONS: &str = "exceeded the limit of 1000000 operations";

/// `code` as `then` stops with a limit error whose message contains one of `expected` (more than
/// one when which limit comes first depends on the machine's speed), within the generous bound,
/// and the well-behaved rules are unaffected afterwards.
fn assert_stopped(name: &str, code: &str, expected: &[&str]) {
    let host = host();
    let good = Good::new(&host);
    let rule = compiled(&host, &rule_file(code));
    let (result, elapsed) = timed(&host, &rule, &good.paid, name);
    let error = result.expect_err("a hostile rule must fail");
    assert!(error.limit, "{name}: must be reported as a limit, got {error:?}");
    assert!(
        expected.iter().any(|e| error.message.contains(e)),
        "{name}: expected one of {expected:?} in {:?}",
        error.message
    );
    assert!(elapsed < GENEROUS, "{name} took {elapsed:?}");
    good.assert_unaffected(&host, name);
}

/// The rule file `text` is refused at compile time with an error whose message contains
/// `expected`, and the well-behaved rules are unaffected afterwards.
fn assert_refused(name: &str, text: &str, expected: &str) {
    let host = host();
    let good = Good::new(&host);
    let start = Instant::now();
    let checked = check_rule(&host, RuleId::new("hostile"), text);
    let elapsed = start.elapsed();
    let rendered: Vec<String> = checked.diagnostics.iter().map(|d| d.render("hostile.toml", text)).collect();
    eprintln!("{name}: check took {:.1} ms:\n{}", elapsed.as_secs_f64() * 1000.0, rendered.join("\n"));
    assert!(checked.rule.is_none(), "{name}: must not compile");
    let error = checked.diagnostics.iter().find(|d| d.severity == Severity::Error);
    let error = error.unwrap_or_else(|| panic!("{name}: no error diagnostic: {:?}", checked.diagnostics));
    assert!(error.message.contains(expected), "{name}: expected {expected:?} in {:?}", error.message);
    assert!(elapsed < GENEROUS, "{name}: check took {elapsed:?}");
    good.assert_unaffected(&host, name);
}

#[test]
fn an_endless_loop_stops_at_the_operations_limit_or_the_deadline() {
    // A race: 1,000,000 empty iterations take about as long as the deadline unoptimised.
    assert_stopped("loop {}", "loop {}", &[OPERATIONS, DEADLINE]);
}

#[test]
fn a_loop_of_slow_operations_stops_at_the_deadline() {
    // Each iteration copies 60 KB: the deadline comes long before 1,000,000 operations.
    assert_stopped("slow loop", "let s = \"x\";\ns.pad(60000, 'y');\nloop { let t = s.to_upper(); }", &[DEADLINE]);
}

#[test]
fn a_string_doubled_in_a_loop_stops_at_the_string_size_limit() {
    assert_stopped(
        "string doubling",
        "let s = \"x\";\nloop { s += s; }",
        &["a string grew past the limit of 65536 bytes"],
    );
}

#[test]
fn pushing_a_million_items_stops_at_the_array_size_limit_or_the_deadline() {
    // rhai measures the whole array after each push, so reaching the 10,000-item limit takes
    // quadratic time: about 30 ms optimised, more than the 50 ms deadline unoptimised.
    assert_stopped(
        "push 1,000,000",
        "let a = [];\nfor i in 0..1000000 { a.push(i); }",
        &["an array grew past the limit of 10000 items", DEADLINE],
    );
}

#[test]
fn padding_an_array_to_a_million_items_stops_at_the_array_size_limit() {
    assert_stopped(
        "pad 1,000,000",
        "let a = [];\na.pad(1000000, 0);",
        &["an array grew past the limit of 10000 items"],
    );
}

#[test]
fn recursion_100000_deep_stops_at_the_call_depth_limit() {
    assert_stopped(
        "recursion 100,000",
        "fn f(n) { if n == 0 { 0 } else { f(n - 1) + 1 } }\nf(100000)",
        &["calls nested deeper than the limit of 32"],
    );
}

#[test]
fn an_unused_import_in_a_loop_is_an_endless_loop() {
    // rhai's optimiser drops an import whose alias is never used: the module limit is never
    // reached and this is `loop {}`.
    assert_stopped("import in a loop (unused)", "loop { import \"util\" as u; }", &[OPERATIONS, DEADLINE]);
}

#[test]
fn importing_in_a_loop_stops_at_the_module_limit() {
    assert_stopped(
        "import in a loop (used)",
        "loop { import \"util\" as u; u::twice(1); }",
        &["imported more than the limit of 8 modules"],
    );
}

#[test]
fn the_library_is_importable_by_a_well_behaved_rule() {
    // The control for the tests above: one import of "util" works.
    let host = host();
    let paid = Paid::new();
    let rule = compiled(&host, &rule_file("import \"util\" as u;\nslack(\"finance\", `${u::twice(21)}`)"));
    let actions: Vec<Action> =
        host.evaluate(&rule, &paid.input()).unwrap().intents.into_iter().map(|i| i.action).collect();
    assert_eq!(actions, [Action::Slack { destination: "finance".into(), text: "42".into(), blocks: None }]);
}

#[test]
fn a_map_of_100000_entries_stops_at_the_deadline() {
    // Not at the 1,000-entry map limit: rhai does not measure a map on `m[key] = value`.
    assert_stopped("map 100,000", "let m = #{};\nfor i in 0..100000 { m[`k${i}`] = i; }", &[DEADLINE]);
}

#[test]
fn a_map_grown_past_1000_entries_stops_at_the_map_size_limit_when_used() {
    // rhai measures a map when it is passed on, not at each index assignment: growing one by
    // assignment alone is bounded by the operations limit and the deadline instead (above). On a
    // loaded machine the deadline can come first: either stops it.
    assert_stopped(
        "map 1,200",
        "let m = #{};\nfor i in 0..1200 { m[`k${i}`] = i; }\nm.len()",
        &["a map grew past the limit of 1000 entries", DEADLINE],
    );
}

#[test]
fn a_thousand_actions_stop_at_the_action_limit() {
    assert_stopped(
        "1,000 actions",
        "for i in 0..1000 { slack(\"finance\", `message ${i}`); }",
        &["more than 20 actions in one evaluation"],
    );
}

#[test]
fn a_thousand_actions_stop_at_the_action_limit_even_when_the_script_catches_the_error() {
    assert_stopped(
        "1,000 actions, caught",
        "for i in 0..1000 { try { slack(\"finance\", `message ${i}`); } catch { } }",
        &["more than 20 actions in one evaluation"],
    );
}

fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn a_1000_deep_parenthesised_when_is_refused_at_compile_time() {
    let text = format!(
        "name = \"Hostile\"\non = {{ change = \"status\" }}\nwhen = '{} == 1'\nthen = ''\n",
        nested(1000, "(", ")")
    );
    assert_refused("((((1)))) 1,000 deep in when", &text, "nested too deeply");
}

#[test]
fn a_1000_deep_parenthesised_then_is_refused_at_compile_time() {
    assert_refused("((((1)))) 1,000 deep in then", &rule_file(&nested(1000, "(", ")")), "nested too deeply");
}

#[test]
fn a_1000_deep_sum_is_refused_at_compile_time() {
    // 1+(1+(…1…)): 1,000 ones.
    assert_refused("1+(1+(…)) 1,000 deep", &rule_file(&nested(999, "1+(", ")")), "nested too deeply");
}

#[test]
fn eval_is_refused_at_compile_time() {
    assert_refused("eval", &rule_file("eval(\"1\")"), "reserved keyword 'eval' is disabled");
}

#[test]
fn two_threads_sharing_a_host_each_stop_their_own_endless_loop() {
    let host = host();
    let rule = compiled(&host, &rule_file("loop {}"));
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|n| {
                let (host, rule, barrier) = (&host, &rule, &barrier);
                scope.spawn(move || {
                    let good = Good::new(host);
                    barrier.wait();
                    let (result, elapsed) = timed(host, rule, &good.paid, &format!("loop {{}} on thread {n}"));
                    let error = result.expect_err("an endless loop must fail");
                    assert!(error.limit, "{error:?}");
                    assert!([OPERATIONS, DEADLINE].iter().any(|e| error.message.contains(e)), "{error:?}");
                    assert!(elapsed < GENEROUS, "thread {n} took {elapsed:?}");
                    good.assert_unaffected(host, &format!("loop {{}} on thread {n}"));
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

#[test]
fn check_warns_when_its_dry_run_hits_a_limit_and_keeps_the_rule() {
    // A limit hit on the sample record is a warning: the rule may behave on real records.
    let host = host();
    for (code, expected) in [
        ("loop {}", &[OPERATIONS, DEADLINE][..]),
        ("let s = \"x\";\nloop { s += s; }", &["a string grew past the limit of 65536 bytes"][..]),
        ("fn f(n) { if n == 0 { 0 } else { f(n - 1) + 1 } }\nf(100000)", &["calls nested deeper"][..]),
    ] {
        let text = rule_file(code);
        let checked = check_rule(&host, RuleId::new("hostile"), &text);
        let rendered: Vec<String> = checked.diagnostics.iter().map(|d| d.render("hostile.toml", &text)).collect();
        eprintln!("check of {code:?}:\n{}", rendered.join("\n"));
        let [warning] = checked.diagnostics.as_slice() else { panic!("{code:?}: one warning: {rendered:?}") };
        assert_eq!(warning.severity, Severity::Warning, "{code:?}");
        assert!(warning.message.starts_with("on a sample invoice: "), "{code:?}: {}", warning.message);
        assert!(expected.iter().any(|e| warning.message.contains(e)), "{code:?}: {}", warning.message);
        assert!(checked.rule.is_some(), "{code:?}: a limit on the sample must not refuse the rule");
    }
}
