//! A connected QuickBooks company: its time zone and home currency decide "today" and the deal rules.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::ids::AccountName;
use crate::money::Currency;

/// A QuickBooks company as the pure core needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    /// Its name in invoiceflow (`--account NAME`).
    pub name: AccountName,
    /// Its IANA time zone: "today" and "09:00" are read here.
    pub time_zone: Tz,
    /// Its home currency: invoices in another currency never update a deal.
    pub home_currency: Currency,
}

impl Company {
    /// The company's local date at the instant `now`.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.time_zone).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn auckland_is_a_day_ahead_of_utc_in_the_evening() {
        let c = Company {
            name: AccountName::new("nz").unwrap(),
            time_zone: chrono_tz::Pacific::Auckland,
            home_currency: Currency::from_code("NZD").unwrap(),
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 20, 0, 0).unwrap();
        assert_eq!(c.today(now), NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    }
}
