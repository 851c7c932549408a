//! The six-rule benchmark (`RULES.md` here): the six rules written as rule scripts
//! (`six-rules/*.toml`), evaluated over 1,000,000 invoices from `gen_invoices.py` (seed 7,
//! today 2026-11-25), on one core and on all cores. Checks the actions against the reference
//! result before printing any speed: a run that differs is wrong, however fast.
//!
//! `cargo bench -p invoiceflow-rules --bench rules` (needs python3 to generate the data once;
//! `BENCH_INVOICES=N` for another count, which skips the reference check).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::parse::{Incoming, Item, ParseContext, parse_value};
use invoiceflow_rules::script::check::check_rule;
use invoiceflow_rules::script::subject::subject_of;
use invoiceflow_rules::script::testcase::change_triggers;
use invoiceflow_rules::script::{
    Cause, CompiledRule, Destinations, HostConfig, Input, Limits, RuleHost, RuleId, Subject, Trigger,
};
use invoiceflow_rules::{AccountName, Change, Currency, Property};

/// RULES.md's reference for 1,000,000 invoices, seed 7: (actions, sum of the ids' numbers).
const REFERENCE: [(&str, u64, u64); 6] = [
    ("r1-large-overdue", 125_433, 62_823_862_185),
    ("r2-overdue-days", 10_576, 5_303_928_259),
    ("r3-paid", 33_697, 16_815_497_545),
    ("r4-due-in-3-days", 8_168, 4_077_275_605),
    ("r5-unsent", 81_418, 40_738_725_166),
    ("r6-large-partial", 9_488, 4_759_754_710),
];

struct Case {
    subject: Subject,
    change: Option<Change>,
    number: u64,
}

fn data(count: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("invoices-{count}-seed7.jsonl"));
    if !path.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen_invoices.py");
        let status = std::process::Command::new("python3")
            .arg(script)
            .args(["--count", &count.to_string(), "--seed", "7", "--today", "2026-11-25", "--out"])
            .arg(&path)
            .status()
            .expect("python3 runs gen_invoices.py");
        assert!(status.success(), "gen_invoices.py failed");
    }
    path
}

fn load(path: &Path, today: NaiveDate) -> Vec<Case> {
    let account = AccountName::new("realm-1").unwrap();
    let home = |_: &AccountName| Currency::USD;
    let received_at: DateTime<Utc> = today.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let ctx = ParseContext { account: &account, home_currency: &home, received_at };
    let text = std::fs::read_to_string(path).unwrap();
    let mut cases = Vec::new();
    let mut mismatched = 0;
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let status = value["status"].as_str().unwrap().to_owned();
        let previous = value["previous_status"].as_str().map(str::to_owned);
        let number = value["id"].as_str().unwrap().trim_start_matches("inv-").parse().unwrap();
        let Some(Item::Record(Incoming::Upsert(record))) = parse_value(value, &ctx).into_iter().next() else {
            panic!("refused: {line}")
        };
        let subject = subject_of(record, today, false);
        if let Subject::Invoice(_, derived) = &subject
            && derived.as_str() != status
        {
            mismatched += 1;
        }
        let change = previous.filter(|p| *p != status).map(|p| Change {
            property: Property::Status,
            old: Some(p),
            new: Some(status.clone()),
        });
        cases.push(Case { subject, change, number });
    }
    assert_eq!(mismatched, 0, "invoiceflow's status derivation disagrees with the generator's");
    cases
}

fn host() -> RuleHost {
    let destinations =
        Destinations { slack: ["finance".to_owned()].into(), webhook: Default::default(), email: BTreeMap::new() };
    let config = HostConfig { destinations, library: Vec::new(), limits: Limits::default(), stopwatch: Instant::now };
    RuleHost::new(config).map_err(|e| format!("{e:?}")).unwrap()
}

fn rules(host: &RuleHost) -> Vec<CompiledRule> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/six-rules");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let id = p.file_stem().unwrap().to_str().unwrap();
            let checked = check_rule(host, RuleId::new(id), &text);
            let errors: Vec<String> = checked.diagnostics.iter().map(|d| d.render(id, &text)).collect();
            checked.rule.unwrap_or_else(|| panic!("{}", errors.join("\n")))
        })
        .collect()
}

/// (actions, sum of id numbers) per rule, over `cases`.
fn evaluate(host: &RuleHost, rules: &[CompiledRule], cases: &[Case], now: DateTime<Utc>) -> Vec<(u64, u64)> {
    let mut totals = vec![(0, 0); rules.len()];
    let schedule = Cause::Schedule { slot: now };
    for case in cases {
        for (r, rule) in rules.iter().enumerate() {
            let scheduled = rule.def.triggers.iter().any(|t| matches!(t, Trigger::Schedule { .. }));
            let (change, cause) = match (&case.change, scheduled) {
                (_, true) => (None, schedule.clone()),
                (Some(c), false) if change_triggers(rule, c) => (
                    Some(c),
                    Cause::Change {
                        event: 0,
                        property: c.property.to_string(),
                        from: c.old.clone(),
                        to: c.new.clone(),
                    },
                ),
                _ => continue,
            };
            let input = Input {
                subject: &case.subject,
                change,
                now,
                zone: chrono_tz::UTC,
                locale: Locale::En,
                cause,
                deal: None,
            };
            let n = host.evaluate(rule, &input).unwrap().intents.len() as u64;
            totals[r].0 += n;
            totals[r].1 += n * case.number;
        }
    }
    totals
}

fn main() {
    let count: u64 = std::env::var("BENCH_INVOICES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let now = today.and_hms_opt(9, 0, 0).unwrap().and_utc();
    let path = data(count);
    let started = Instant::now();
    let cases = load(&path, today);
    println!(
        "parsed {} invoices in {:.2} s (not part of the figures below)",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    let host = host();
    let rules = rules(&host);

    let started = Instant::now();
    let totals = evaluate(&host, &rules, &cases, now);
    let one = started.elapsed().as_secs_f64();
    for (rule, (actions, ids)) in rules.iter().zip(&totals) {
        let reference = REFERENCE.iter().find(|(id, ..)| *id == rule.def.id.as_str());
        let verdict = match reference {
            Some((_, a, i)) if count == 1_000_000 && (a, i) == (actions, ids) => "= reference",
            Some(_) if count == 1_000_000 => "DIFFERS FROM THE REFERENCE",
            _ => "(no reference for this count)",
        };
        let native = if RuleHost::has_fast_path(rule) { "native when" } else { "rhai when  " };
        println!("{:<18} {native}  {actions:>7} actions  id sum {ids:>12}  {verdict}", rule.def.id.as_str());
    }
    if count == 1_000_000 {
        let expected: Vec<(u64, u64)> = REFERENCE.iter().map(|(_, a, i)| (*a, *i)).collect();
        assert_eq!(totals, expected, "the actions differ from RULES.md's reference");
    }
    println!("one core:   {:>10.0} invoices/s ({one:.2} s)", count as f64 / one);

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let chunk = cases.len().div_ceil(threads);
    let all: Vec<Vec<(u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = cases.chunks(chunk).map(|part| s.spawn(|| evaluate(&host, &rules, part, now))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let many = started.elapsed().as_secs_f64();
    let merged: Vec<(u64, u64)> =
        (0..rules.len()).map(|r| all.iter().fold((0, 0), |acc, t| (acc.0 + t[r].0, acc.1 + t[r].1))).collect();
    assert_eq!(merged, totals, "the threads disagree with the single-core run");
    println!("{threads} cores:    {:>10.0} invoices/s ({many:.2} s)", count as f64 / many);
}
