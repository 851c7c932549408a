//! "Now": the system clock, or the instant or day given by `--now`.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use invoiceflow_rules::AccountName;

use crate::config::Companies;
use crate::store::{Calendar, Moment};

/// The moment every command works at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// An exact instant (the system clock, or `--now 2026-11-25T09:00:00Z`).
    At(DateTime<Utc>),
    /// A calendar day (`--now 2026-11-25`): "today" is that date in every company's zone, and
    /// the instant is 12:00 on that day in the zone asked about.
    Day(NaiveDate),
}

impl Now {
    /// Parses `--now`: RFC 3339 (`2026-11-25T09:00:00+01:00`) or a date (`2026-11-25`).
    ///
    /// # Errors
    /// A message saying which forms are accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Self::Day(day));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|t| Self::At(t.with_timezone(&Utc)))
            .map_err(|_| format!("{text:?} is neither an RFC 3339 time (2026-11-25T09:00:00Z) nor a date (2026-11-25)"))
    }

    /// The system clock. Only the binary's edge calls this.
    pub fn system() -> Self {
        Self::At(Utc::now())
    }

    /// The local date in `tz`.
    pub fn today(&self, tz: Tz) -> NaiveDate {
        match self {
            Self::At(t) => t.with_timezone(&tz).date_naive(),
            Self::Day(d) => *d,
        }
    }

    /// The instant, read in `tz` for a [`Now::Day`].
    pub fn instant_in(&self, tz: Tz) -> DateTime<Utc> {
        match self {
            Self::At(t) => *t,
            Self::Day(d) => {
                let noon = d.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default());
                tz.from_local_datetime(&noon).earliest().map_or_else(|| noon.and_utc(), |t| t.with_timezone(&Utc))
            }
        }
    }

    /// The instant, read in UTC for a [`Now::Day`]: what ingest times record.
    pub fn instant(&self) -> DateTime<Utc> {
        self.instant_in(chrono_tz::UTC)
    }
}

/// "Now" and the companies' zones: what every command reads time from.
#[derive(Debug, Clone)]
pub struct Clock {
    /// The moment.
    pub now: Now,
    /// Zones per company.
    pub companies: Companies,
}

impl Clock {
    /// The write moment: ingest time now, "today" per company.
    pub fn moment(&self) -> Moment<'_> {
        Moment { now: self.now.instant(), calendar: self }
    }

    /// The local date of company `account`.
    pub fn today_of(&self, account: &AccountName) -> NaiveDate {
        self.now.today(self.companies.get(account).time_zone)
    }
}

/// The clock of a long-running command (`invoiceflow run` and its HTTP API): the system clock, or
/// one that starts at `--now` and advances with real time, so that every reader agrees on "now".
#[derive(Debug, Clone)]
pub struct RunningClock {
    /// Where it started, and when that was in real time; `None`: the system clock.
    start: Option<(DateTime<Utc>, std::time::Instant)>,
    companies: Companies,
}

impl RunningClock {
    /// The system clock.
    pub fn system(companies: Companies) -> Self {
        Self { start: None, companies }
    }

    /// A clock at `at` now, advancing with real time from there.
    pub fn starting_at(at: DateTime<Utc>, companies: Companies) -> Self {
        Self { start: Some((at, std::time::Instant::now())), companies }
    }

    /// The clock as it reads now.
    pub fn clock(&self) -> Clock {
        let now = match self.start {
            None => Now::system(),
            Some((at, since)) => {
                let elapsed = chrono::Duration::from_std(since.elapsed()).unwrap_or_else(|_| chrono::Duration::zero());
                Now::At(at + elapsed)
            }
        };
        Clock { now, companies: self.companies.clone() }
    }
}

impl Calendar for Clock {
    fn today(&self, account: &AccountName) -> NaiveDate {
        self.today_of(account)
    }

    fn day_start(&self, account: &AccountName, day: NaiveDate) -> DateTime<Utc> {
        let tz = self.companies.get(account).time_zone;
        let midnight = day.and_time(NaiveTime::MIN);
        // A zone may skip midnight (DST at 00:00): the day then starts at the first valid instant.
        (0..=3)
            .find_map(|h| tz.from_local_datetime(&(midnight + chrono::Duration::hours(h))).earliest())
            .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_today_everywhere() {
        let now = Now::parse("2015-08-01").unwrap();
        assert_eq!(now.today(chrono_tz::Pacific::Auckland), NaiveDate::from_ymd_opt(2015, 8, 1).unwrap());
        assert_eq!(now.today(chrono_tz::Pacific::Honolulu), NaiveDate::from_ymd_opt(2015, 8, 1).unwrap());
    }

    #[test]
    fn an_instant_is_read_in_each_zone() {
        let now = Now::parse("2026-11-25T12:30:00Z").unwrap();
        assert_eq!(now.today(chrono_tz::Pacific::Auckland), NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        assert_eq!(now.today(chrono_tz::UTC), NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    }

    #[test]
    fn garbage_is_refused_with_the_accepted_forms() {
        let e = Now::parse("tomorrow").unwrap_err();
        assert!(e.contains("RFC 3339") && e.contains("2026-11-25"), "{e}");
    }
}
