//! The instants a rule's cron schedule fires at, in a time zone, read the way Vixie cron reads
//! local time across daylight saving: a local time skipped by a spring-forward fires at the first
//! valid instant after it, a repeated one fires once. (The `cron` crate iterated in a zone does
//! neither: it drops the skipped time and fires the repeated one twice.)

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::workflow::time::local_instant;

/// The slots of `schedule` in `zone` after `from`, up to and including `to`.
pub fn slots(schedule: &cron::Schedule, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    // Walk the schedule over local wall-clock times (as if the zone were UTC), then place each
    // local time in the zone: every wall time is produced once, gaps land after the gap.
    let start = from.with_timezone(&zone).naive_local().and_utc() - chrono::Duration::days(1);
    let end = to.with_timezone(&zone).naive_local().and_utc() + chrono::Duration::days(1);
    let mut out: Vec<DateTime<Utc>> = schedule
        .after(&start)
        .take_while(|wall| *wall <= end)
        .map(|wall| local_instant(zone, wall.date_naive(), wall.time()))
        .filter(|t| *t > from && *t <= to)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn weekdays_at_nine_in_new_york() {
        let s = cron::Schedule::from_str("0 0 9 * * Mon-Fri").unwrap();
        let got = slots(&s, chrono_tz::America::New_York, utc("2026-11-27T00:00:00Z"), utc("2026-12-01T23:00:00Z"));
        assert_eq!(got, [utc("2026-11-27T14:00:00Z"), utc("2026-11-30T14:00:00Z"), utc("2026-12-01T14:00:00Z")]);
    }

    #[test]
    fn a_daily_0230_fires_once_on_both_daylight_saving_days() {
        let s = cron::Schedule::from_str("0 30 2 * * *").unwrap();
        let spring = slots(&s, chrono_tz::Europe::Paris, utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"));
        assert_eq!(spring, [utc("2026-03-29T01:00:00Z"), utc("2026-03-30T00:30:00Z")]);
        let fall = slots(&s, chrono_tz::Europe::Paris, utc("2026-10-24T12:00:00Z"), utc("2026-10-25T12:00:00Z"));
        assert_eq!(fall, [utc("2026-10-25T00:30:00Z")]);
    }
}
