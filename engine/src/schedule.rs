//! Scheduled rules at their slots, from state kept in the database: each rule's cursor says up to
//! when its slots were run, so a restart neither repeats a slot nor silently misses one.
//!
//! - A slot is each instant its cron expression names, in the rule's zone, or in each company's
//!   zone for the companies there (09:00 in Paris for the Paris company, 09:00 in New York for New
//!   York's), placed across daylight saving as Vixie cron does (`script::slots`).
//! - Slots are on time when the previous pass ran less than [`ON_TIME`](crate::reminders::ON_TIME)
//!   before (the engine was up), or when they are that recent. Missed ones (the engine was down)
//!   follow DOMAIN.md §3's default catch-up, once within 24 hours: the latest is run if it is at
//!   most 24 hours old, and each slot not run leaves an audit row saying why.
//! - A rule switched on starts then: its past slots are not run.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use invoiceflow_rules::format::Locale;
use invoiceflow_rules::script::slots::slots;
use invoiceflow_rules::script::{CompiledRule, RuleHost, Trigger};

use crate::clock::Clock;
use crate::evaluate::{self, Evaluated};
use crate::reminders::ON_TIME;
use crate::store::{SlotSkip, Store, StoreError};

/// How old a missed slot may be and still be run when the engine comes back.
pub const GRACE: Duration = Duration::hours(24);

/// What a pass ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slots {
    /// Slots run.
    pub run: u64,
    /// Slots skipped, each with its audit row.
    pub skipped: u64,
    /// What the slots run decided.
    pub evaluated: Evaluated,
}

/// The cursor of scheduled rule `id`.
pub fn cursor_name(id: &str) -> String {
    format!("slots:{id}")
}

/// Runs every enabled scheduled rule's slots due since its previous pass, up to now.
///
/// # Errors
/// [`StoreError`]; what was saved stays, and the rule's cursor stays where it was.
pub async fn pass<S: Store>(
    store: &S,
    host: &RuleHost,
    rules: &[CompiledRule],
    clock: &Clock,
    locale: Locale,
) -> Result<Slots, StoreError> {
    let now = clock.now.instant();
    let mut done = Slots::default();
    for rule in rules.iter().filter(|r| r.def.enabled) {
        let schedules: Vec<_> = rule
            .def
            .triggers
            .iter()
            .filter_map(|t| match t {
                Trigger::Schedule { schedule, zone, .. } => Some((schedule.as_ref(), *zone)),
                _ => None,
            })
            .collect();
        if schedules.is_empty() {
            continue;
        }
        let name = cursor_name(rule.def.id.as_str());
        let last = store.cursor(&name).await?;
        if last != 0 {
            let after = DateTime::from_timestamp_micros(last).unwrap_or_default();
            // (slot, the zone whose companies it is for; None: every company).
            let mut due: Vec<(DateTime<Utc>, Option<Tz>)> = Vec::new();
            for (schedule, zone) in &schedules {
                match zone {
                    Some(z) => due.extend(slots(schedule, *z, after, now).into_iter().map(|s| (s, None))),
                    None => {
                        for z in clock.companies.zones() {
                            due.extend(slots(schedule, z, after, now).into_iter().map(|s| (s, Some(z))));
                        }
                    }
                }
            }
            due.sort_by_key(|(at, zone)| (*at, zone.map(|z| z.name())));
            due.dedup();
            let (run, skipped) = catch_up(due, after, now);
            for (slot, zone) in &run {
                done.evaluated += evaluate::slot(store, host, rule, *slot, *zone, clock, locale).await?;
                done.run += 1;
            }
            let skips: Vec<SlotSkip> = skipped
                .into_iter()
                .map(|((slot, zone), reason)| SlotSkip {
                    rule: rule.def.id.to_string(),
                    slot,
                    zone: zone.map(|z| z.name().to_owned()),
                    reason,
                })
                .collect();
            done.skipped += skips.len() as u64;
            store.save_slot_skips(&skips, now).await?;
        }
        store.save_evaluations(&name, now.timestamp_micros(), &[], &[], now).await?;
    }
    Ok(done)
}

type Slot = (DateTime<Utc>, Option<Tz>);

/// Which of the slots due in `(after, now]` to run, and which to skip with why.
fn catch_up(due: Vec<Slot>, after: DateTime<Utc>, now: DateTime<Utc>) -> (Vec<Slot>, Vec<(Slot, String)>) {
    let engine_up = now - after <= ON_TIME;
    let (mut run, missed): (Vec<Slot>, Vec<Slot>) =
        due.into_iter().partition(|(at, _)| engine_up || now - *at <= ON_TIME);
    let mut skipped = Vec::new();
    // Per zone: the latest missed slot within the grace, unless a slot of that zone is on time.
    let mut latest: Vec<Slot> = Vec::new();
    for slot in missed.iter().rev() {
        let zone_has_later = run.iter().chain(&latest).any(|(_, z)| *z == slot.1);
        if !zone_has_later && now - slot.0 <= GRACE {
            latest.push(*slot);
        } else if zone_has_later {
            skipped
                .push((*slot, "missed while the engine was down; a later slot ran (catch-up once within 24 h)".into()));
        } else {
            skipped.push((*slot, "missed while the engine was down, more than 24 h ago".into()));
        }
    }
    run.extend(latest);
    run.sort_by_key(|(at, zone)| (*at, zone.map(|z| z.name())));
    skipped.sort_by_key(|((at, _), _)| *at);
    (run, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap_or_default().to_utc()
    }

    #[test]
    fn slots_missed_while_down_run_once_within_a_day_and_the_rest_are_audited() {
        let ny = Some(chrono_tz::America::New_York);
        let due =
            vec![(t("2026-11-23T14:00:00Z"), ny), (t("2026-11-24T14:00:00Z"), ny), (t("2026-11-25T14:00:00Z"), ny)];
        // Down since Sunday; back Wednesday 16:00 UTC: Wednesday's slot (2 h old) runs.
        let (run, skipped) = catch_up(due.clone(), t("2026-11-22T12:00:00Z"), t("2026-11-25T16:00:00Z"));
        assert_eq!(run, [due[2]]);
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].1.contains("a later slot ran"), "{skipped:?}");
        // Back Friday: nothing within 24 h.
        let (run, skipped) = catch_up(due.clone(), t("2026-11-22T12:00:00Z"), t("2026-11-27T16:00:00Z"));
        assert!(run.is_empty());
        assert!(skipped.iter().all(|(_, why)| why.contains("more than 24 h")), "{skipped:?}");
        // Up all along (the previous pass a minute ago): everything due runs.
        let (run, skipped) = catch_up(due[2..].to_vec(), t("2026-11-25T13:59:30Z"), t("2026-11-25T14:00:30Z"));
        assert_eq!((run.len(), skipped.len()), (1, 0));
    }
}
