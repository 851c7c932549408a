//! Local time for schedules: a local date and time of day in an IANA zone becomes one UTC instant,
//! the same way Vixie cron reads it across daylight-saving changes, and a send window moves an
//! instant to the next moment it is open.
//!
//! - A local time skipped by a spring-forward (02:30 when clocks go from 02:00 to 03:00) fires at the
//!   first valid instant after it (03:00).
//! - A local time that happens twice in a fall-back (01:30) fires once, at its first occurrence.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The UTC instant of local `date` at `time` in `zone` (see the module docs for DST).
pub fn local_instant(zone: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let wanted = date.and_time(time);
    match zone.from_local_datetime(&wanted) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        // In a gap: the first local minute after it that exists. Gaps are at most a few hours.
        LocalResult::None => (1..=24 * 60)
            .map(|m| wanted + Duration::minutes(m))
            .find_map(|t| zone.from_local_datetime(&floor_minute(t)).earliest())
            .map_or_else(|| wanted.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

fn floor_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_time(
        NaiveTime::from_hms_opt(chrono::Timelike::hour(&t), chrono::Timelike::minute(&t), 0).unwrap_or(t.time()),
    )
}

/// When deliveries may go out: days of the week and hours, in the company's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    /// Days it is open (`["Mon", "Tue", …]`). Default Monday to Friday.
    #[serde(default = "weekdays", with = "day_names")]
    pub days: Vec<Weekday>,
    /// Opening time (local). Default 09:00.
    #[serde(default = "nine")]
    pub start: NaiveTime,
    /// Closing time (local, exclusive). Default 17:00.
    #[serde(default = "five")]
    pub end: NaiveTime,
}

fn weekdays() -> Vec<Weekday> {
    vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
}

fn nine() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN)
}

fn five() -> NaiveTime {
    NaiveTime::from_hms_opt(17, 0, 0).unwrap_or(NaiveTime::MIN)
}

impl Default for SendWindow {
    /// Monday to Friday, 09:00 to 17:00.
    fn default() -> Self {
        Self { days: weekdays(), start: nine(), end: five() }
    }
}

impl SendWindow {
    /// Whether the window is open on `day` at local `time`.
    pub fn is_open(&self, day: Weekday, time: NaiveTime) -> bool {
        self.days.contains(&day) && time >= self.start && time < self.end
    }

    /// `at` if the window is open then, else the next opening instant. `None` when it never opens
    /// (no day, or `start` not before `end`).
    pub fn next_open(&self, zone: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.days.is_empty() || self.start >= self.end {
            return None;
        }
        let local = at.with_timezone(&zone);
        if self.is_open(local.weekday(), local.time()) {
            return Some(at);
        }
        let today = local.date_naive();
        (0..=7).map(|d| today + Duration::days(d)).find_map(|day| {
            if !self.days.contains(&day.weekday()) {
                return None;
            }
            let opening = local_instant(zone, day, self.start);
            (opening > at).then_some(opening)
        })
    }
}

mod day_names {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(days.iter().map(|d| d.to_string()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        let names: Vec<String> = Vec::deserialize(d)?;
        names
            .iter()
            .map(|n| {
                n.parse::<Weekday>().map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{n:?} is not a day of the week (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Paris;

    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn an_ordinary_local_time_is_one_instant() {
        assert_eq!(local_instant(New_York, day("2026-11-25"), hm(9, 0)), utc("2026-11-25T14:00:00Z"));
        assert_eq!(local_instant(Paris, day("2026-07-01"), hm(9, 0)), utc("2026-07-01T07:00:00Z"));
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_at_the_first_valid_instant_after_it() {
        // New York: 2026-03-08 02:00 EST → 03:00 EDT. Paris: 2026-03-29 02:00 CET → 03:00 CEST.
        assert_eq!(local_instant(New_York, day("2026-03-08"), hm(2, 30)), utc("2026-03-08T07:00:00Z"));
        assert_eq!(local_instant(Paris, day("2026-03-29"), hm(2, 30)), utc("2026-03-29T01:00:00Z"));
        // Either side of the gap is untouched.
        assert_eq!(local_instant(New_York, day("2026-03-08"), hm(1, 59)), utc("2026-03-08T06:59:00Z"));
        assert_eq!(local_instant(New_York, day("2026-03-08"), hm(3, 0)), utc("2026-03-08T07:00:00Z"));
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() {
        // New York: 2026-11-01 02:00 EDT → 01:00 EST. Paris: 2026-10-25 03:00 CEST → 02:00 CET.
        assert_eq!(local_instant(New_York, day("2026-11-01"), hm(1, 30)), utc("2026-11-01T05:30:00Z"));
        assert_eq!(local_instant(Paris, day("2026-10-25"), hm(2, 30)), utc("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn a_send_on_friday_evening_moves_to_monday_nine() {
        let w = SendWindow::default();
        // Friday 2026-11-27 18:30 New York.
        let friday_evening = local_instant(New_York, day("2026-11-27"), hm(18, 30));
        assert_eq!(w.next_open(New_York, friday_evening), Some(local_instant(New_York, day("2026-11-30"), hm(9, 0))));
        // Open: unchanged. Before opening on a weekday: that day's opening.
        let tuesday_ten = local_instant(New_York, day("2026-11-24"), hm(10, 0));
        assert_eq!(w.next_open(New_York, tuesday_ten), Some(tuesday_ten));
        let tuesday_seven = local_instant(New_York, day("2026-11-24"), hm(7, 0));
        assert_eq!(w.next_open(New_York, tuesday_seven), Some(local_instant(New_York, day("2026-11-24"), hm(9, 0))));
        // 17:00 is closed (the end is exclusive).
        let five_pm = local_instant(New_York, day("2026-11-24"), hm(17, 0));
        assert_eq!(w.next_open(New_York, five_pm), Some(local_instant(New_York, day("2026-11-25"), hm(9, 0))));
    }

    #[test]
    fn a_window_that_opens_in_a_spring_forward_gap_opens_after_it() {
        let w = SendWindow { days: vec![Weekday::Sun], start: hm(2, 30), end: hm(4, 0) };
        let saturday = local_instant(Paris, day("2026-03-28"), hm(12, 0));
        assert_eq!(w.next_open(Paris, saturday), Some(utc("2026-03-29T01:00:00Z")));
    }

    #[test]
    fn a_window_that_never_opens_says_so() {
        let closed = SendWindow { days: vec![], ..SendWindow::default() };
        assert_eq!(closed.next_open(Paris, utc("2026-11-25T12:00:00Z")), None);
        let inverted = SendWindow { start: hm(17, 0), end: hm(9, 0), ..SendWindow::default() };
        assert_eq!(inverted.next_open(Paris, utc("2026-11-25T12:00:00Z")), None);
    }

    #[test]
    fn days_are_read_by_name() {
        let w: SendWindow = toml::from_str("days = [\"Sat\", \"Sun\"]\nstart = \"10:00:00\"").unwrap();
        assert_eq!((w.days, w.start, w.end), (vec![Weekday::Sat, Weekday::Sun], hm(10, 0), hm(17, 0)));
        let e = toml::from_str::<SendWindow>("days = [\"Funday\"]").unwrap_err().to_string();
        assert!(e.contains("Funday"), "{e}");
    }
}
