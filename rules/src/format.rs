//! Money and dates formatted for people, per locale, as CLDR and JavaScript's `Intl` do.
//!
//! The data (separators, currency symbols and patterns, month names) is a small hand-written subset
//! of CLDR 48 for the locales in [`Locale`], checked against ICU 78 (`Intl.NumberFormat` and
//! `Intl.DateTimeFormat` in Node). The exact CLDR characters are kept: French groups digits with a
//! narrow no-break space (U+202F), and the space between amount and currency symbol is a no-break
//! space (U+00A0), so a formatted amount never wraps across lines.

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::Money;

/// A locale for formatting: language (and optionally region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    /// English, United States conventions (`en`, `en-US`).
    #[default]
    En,
    /// English, United Kingdom conventions (`en-GB`).
    EnGb,
    /// French (`fr`, `fr-FR`; `fr-CA` is read as `fr`).
    Fr,
    /// German (`de`, `de-DE`).
    De,
    /// Spanish, Spain (`es`, `es-ES`).
    Es,
    /// Italian (`it`, `it-IT`).
    It,
    /// Dutch, Netherlands (`nl`, `nl-NL`).
    Nl,
}

impl Locale {
    /// The tags accepted (for error messages): ["en", "en-GB", "fr", "de", "es", "it", "nl"].
    pub const TAGS: &'static [&'static str] = &["en", "en-GB", "fr", "de", "es", "it", "nl"];

    /// Parses "en", "en-US", "en_US", "en-GB", "fr", "fr-FR", "fr-CA" (→ Fr), "de", "de-DE", "es",
    /// "es-ES", "it", "it-IT", "nl", "nl-NL" (case-insensitive, `-` or `_`); None when unknown.
    ///
    /// Other regions (`de-AT`, `es-MX`, `en-AU`, …) are refused rather than read as their language,
    /// because their CLDR separators or symbols differ from the ones formatted here.
    pub fn parse(tag: &str) -> Option<Self> {
        let tag = tag.trim().replace('_', "-").to_ascii_lowercase();
        let locale = match tag.as_str() {
            "en" | "en-us" => Self::En,
            "en-gb" => Self::EnGb,
            "fr" | "fr-fr" | "fr-ca" => Self::Fr,
            "de" | "de-de" => Self::De,
            "es" | "es-es" => Self::Es,
            "it" | "it-it" => Self::It,
            "nl" | "nl-nl" => Self::Nl,
            _ => return None,
        };
        Some(locale)
    }

    /// Number symbols: decimal separator, grouping separator, CLDR `minimumGroupingDigits`.
    fn numbers(self) -> (char, &'static str, usize) {
        match self {
            Self::En | Self::EnGb => ('.', ",", 1),
            Self::Fr => (',', "\u{202f}", 1),
            Self::De | Self::Nl => (',', ".", 1),
            Self::Es | Self::It => (',', ".", 2),
        }
    }

    /// The currency's symbol in this locale, or its ISO code when CLDR has none (or it is not listed).
    fn currency_symbol(self, code: &'static str) -> &'static str {
        match (self, code) {
            (_, "EUR") => "€",
            (Self::En | Self::De, "USD") => "$",
            (Self::EnGb | Self::Es | Self::Nl, "USD") => "US$",
            (Self::Fr, "USD") => "$US",
            (Self::Fr, "GBP") => "£GB",
            (Self::Es, "GBP") => "GBP",
            (_, "GBP") => "£",
            (Self::Fr, "CAD") => "$CA",
            (Self::Es, "CAD") => "CAD",
            (Self::Nl, "CAD") => "C$",
            (_, "CAD") => "CA$",
            (Self::En | Self::EnGb | Self::It, "AUD") => "A$",
            (Self::Fr, "AUD") => "$AU",
            (Self::De | Self::Nl, "AUD") => "AU$",
            (Self::En | Self::De, "JPY") => "¥",
            (Self::EnGb | Self::Nl, "JPY") => "JP¥",
            _ => code,
        }
    }

    /// The month names, January first, capitalised as the language writes them.
    #[rustfmt::skip]
    fn months(self) -> &'static [&'static str; 12] {
        match self {
            Self::En | Self::EnGb => &["January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December"],
            Self::Fr => &["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                "octobre", "novembre", "décembre"],
            Self::De => &["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
                "Oktober", "November", "Dezember"],
            Self::Es => &["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
                "octubre", "noviembre", "diciembre"],
            Self::It => &["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
                "settembre", "ottobre", "novembre", "dicembre"],
            Self::Nl => &["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
                "oktober", "november", "december"],
        }
    }
}

/// An amount with its currency symbol placed by the locale's CLDR currency pattern.
///
/// Rounds to [`minor_digits`](crate::money::Currency::minor_digits) half away from zero (as `Intl` does): `1234.5 EUR` is
/// "€1,234.50" in `en`, "1\u{202f}234,50\u{a0}€" in `fr`, "€\u{a0}1.234,50" in `nl`; `1234.5 JPY` is
/// "¥1,235" in `en`. Negative amounts: "-$1,234.50" (en), "-1\u{202f}234,50\u{a0}€" (fr),
/// "€\u{a0}-1.234,50" (nl). A currency without a symbol in the locale shows its ISO code
/// ("CHF\u{a0}1,234.50" in `en`). An amount that rounds to zero is shown without a minus sign.
pub fn money(m: &Money, locale: Locale) -> String {
    let (negative, digits) = unsigned(m.amount, m.currency.minor_digits(), locale);
    let sign = if negative { "-" } else { "" };
    let symbol = locale.currency_symbol(m.currency.code());
    match locale {
        Locale::En | Locale::EnGb => {
            // CLDR currencySpacing: a symbol ending in a letter ("CHF") is kept apart from the digits.
            let gap = if symbol.ends_with(char::is_alphanumeric) { "\u{a0}" } else { "" };
            format!("{sign}{symbol}{gap}{digits}")
        }
        Locale::Nl => format!("{symbol}\u{a0}{sign}{digits}"),
        Locale::Fr | Locale::De | Locale::Es | Locale::It => format!("{sign}{digits}\u{a0}{symbol}"),
    }
}

/// A plain number with the locale's separators and exactly `digits` decimals ("1\u{202f}234,50" in fr).
///
/// Rounds half away from zero; a value that rounds to zero is shown without a minus sign.
pub fn number(d: Decimal, digits: u32, locale: Locale) -> String {
    let (negative, text) = unsigned(d, digits, locale);
    if negative { format!("-{text}") } else { text }
}

/// Long date: en "November 25, 2026", en-GB "25 November 2026", fr "25 novembre 2026", de "25. November
/// 2026", es "25 de noviembre de 2026", it "25 novembre 2026", nl "25 november 2026".
pub fn date_long(d: NaiveDate, locale: Locale) -> String {
    let (day, year) = (d.day(), d.year());
    let month = locale.months()[d.month0() as usize];
    match locale {
        Locale::En => format!("{month} {day}, {year}"),
        Locale::EnGb | Locale::Fr | Locale::It | Locale::Nl => format!("{day} {month} {year}"),
        Locale::De => format!("{day}. {month} {year}"),
        Locale::Es => format!("{day} de {month} de {year}"),
    }
}

/// Short numeric date with two-digit day and month: en "11/25/2026", en-GB "25/11/2026", fr
/// "25/11/2026", de "25.11.2026", es "25/11/2026", it "25/11/2026", nl "25-11-2026".
pub fn date_short(d: NaiveDate, locale: Locale) -> String {
    let (day, month, year) = (d.day(), d.month(), d.year());
    match locale {
        Locale::En => format!("{month:02}/{day:02}/{year}"),
        Locale::EnGb | Locale::Fr | Locale::Es | Locale::It => format!("{day:02}/{month:02}/{year}"),
        Locale::De => format!("{day:02}.{month:02}.{year}"),
        Locale::Nl => format!("{day:02}-{month:02}-{year}"),
    }
}

/// Rounds `d` to `digits` decimals and formats its magnitude with the locale's separators.
/// Returns whether the rounded value is below zero, and the digits without any sign.
fn unsigned(d: Decimal, digits: u32, locale: Locale) -> (bool, String) {
    let rounded = d.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let plain = rounded.abs().to_string();
    let (int, frac) = plain.split_once('.').unwrap_or((plain.as_str(), ""));
    let (decimal, group, min_grouping) = locale.numbers();

    let mut out = String::with_capacity(plain.len() + plain.len() / 3 * group.len() + 1);
    let grouped = int.len() >= 3 + min_grouping;
    for (i, c) in int.chars().enumerate() {
        if grouped && i > 0 && (int.len() - i) % 3 == 0 {
            out.push_str(group);
        }
        out.push(c);
    }
    if digits > 0 {
        out.push(decimal);
        out.push_str(frac);
        // Rounding never adds decimals (and `Decimal` holds at most 28): pad to exactly `digits`.
        out.extend(std::iter::repeat_n('0', (digits as usize).saturating_sub(frac.len())));
    }
    (negative, out)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::money::Currency;

    fn m(amount: &str, code: &str) -> Money {
        Money::new(Decimal::from_str(amount).unwrap(), Currency::from_code(code).unwrap())
    }

    fn date(y: i32, mo: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap()
    }

    #[test]
    fn english_puts_the_symbol_first() {
        assert_eq!(money(&m("1234.5", "EUR"), Locale::En), "€1,234.50");
        assert_eq!(money(&m("1234.5", "USD"), Locale::En), "$1,234.50");
        assert_eq!(money(&m("1234.5", "CAD"), Locale::En), "CA$1,234.50");
        assert_eq!(money(&m("1234.5", "GBP"), Locale::En), "£1,234.50");
        assert_eq!(money(&m("1234.5", "AUD"), Locale::En), "A$1,234.50");
    }

    #[test]
    fn british_english_marks_foreign_dollars_and_yen() {
        assert_eq!(money(&m("1234.5", "GBP"), Locale::EnGb), "£1,234.50");
        assert_eq!(money(&m("1234.5", "USD"), Locale::EnGb), "US$1,234.50");
        assert_eq!(money(&m("1234.5", "JPY"), Locale::EnGb), "JP¥1,235");
    }

    #[test]
    fn french_groups_with_narrow_no_break_spaces() {
        assert_eq!(money(&m("1234.5", "EUR"), Locale::Fr), "1\u{202f}234,50\u{a0}€");
        assert_eq!(money(&m("1234.5", "USD"), Locale::Fr), "1\u{202f}234,50\u{a0}$US");
        assert_eq!(money(&m("1234.5", "CAD"), Locale::Fr), "1\u{202f}234,50\u{a0}$CA");
        assert_eq!(money(&m("1234.5", "GBP"), Locale::Fr), "1\u{202f}234,50\u{a0}£GB");
        assert_eq!(number(Decimal::from_str("1234.5").unwrap(), 2, Locale::Fr), "1\u{202f}234,50");
    }

    #[test]
    fn german_italian_and_spanish_put_the_symbol_after_a_no_break_space() {
        assert_eq!(money(&m("1234.5", "EUR"), Locale::De), "1.234,50\u{a0}€");
        assert_eq!(money(&m("1234.5", "USD"), Locale::De), "1.234,50\u{a0}$");
        assert_eq!(money(&m("12345.5", "EUR"), Locale::Es), "12.345,50\u{a0}€");
        assert_eq!(money(&m("1234.5", "USD"), Locale::Es), "1234,50\u{a0}US$");
        assert_eq!(money(&m("12345.5", "EUR"), Locale::It), "12.345,50\u{a0}€");
        assert_eq!(money(&m("1234.5", "USD"), Locale::It), "1234,50\u{a0}USD");
    }

    #[test]
    fn dutch_puts_the_symbol_first_with_a_no_break_space() {
        assert_eq!(money(&m("1234.5", "EUR"), Locale::Nl), "€\u{a0}1.234,50");
        assert_eq!(money(&m("1234.5", "USD"), Locale::Nl), "US$\u{a0}1.234,50");
        assert_eq!(money(&m("1234.5", "CAD"), Locale::Nl), "C$\u{a0}1.234,50");
    }

    #[test]
    fn spanish_and_italian_do_not_group_four_digit_numbers() {
        // CLDR minimumGroupingDigits = 2 for es and it: no separator below 10 000.
        assert_eq!(money(&m("1234.5", "EUR"), Locale::Es), "1234,50\u{a0}€");
        assert_eq!(money(&m("1234.5", "EUR"), Locale::It), "1234,50\u{a0}€");
        assert_eq!(number(Decimal::from(9999), 0, Locale::Es), "9999");
        assert_eq!(number(Decimal::from(10000), 0, Locale::Es), "10.000");
        assert_eq!(number(Decimal::from(1234), 0, Locale::De), "1.234");
    }

    #[test]
    fn negative_amounts_carry_a_leading_minus() {
        assert_eq!(money(&m("-1234.5", "USD"), Locale::En), "-$1,234.50");
        assert_eq!(money(&m("-1234.5", "EUR"), Locale::Fr), "-1\u{202f}234,50\u{a0}€");
        assert_eq!(money(&m("-1234.5", "EUR"), Locale::De), "-1.234,50\u{a0}€");
        assert_eq!(money(&m("-1234.5", "EUR"), Locale::Es), "-1234,50\u{a0}€");
        assert_eq!(money(&m("-1234.5", "CHF"), Locale::En), "-CHF\u{a0}1,234.50");
        assert_eq!(number(Decimal::from_str("-1234.5").unwrap(), 2, Locale::En), "-1,234.50");
    }

    #[test]
    fn dutch_puts_the_minus_between_symbol_and_digits() {
        assert_eq!(money(&m("-1234.5", "EUR"), Locale::Nl), "€\u{a0}-1.234,50");
    }

    #[test]
    fn zero_decimal_currencies_round_to_whole_units() {
        assert_eq!(money(&m("1234.5", "JPY"), Locale::En), "¥1,235");
        assert_eq!(money(&m("1234.5", "JPY"), Locale::De), "1.235\u{a0}¥");
        assert_eq!(money(&m("1234.5", "JPY"), Locale::Fr), "1\u{202f}235\u{a0}JPY");
        assert_eq!(money(&m("-2.5", "JPY"), Locale::En), "-¥3");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(money(&m("2.675", "USD"), Locale::En), "$2.68");
        assert_eq!(money(&m("2.665", "USD"), Locale::En), "$2.67");
        assert_eq!(money(&m("-0.125", "USD"), Locale::En), "-$0.13");
        assert_eq!(number(Decimal::from_str("0.5").unwrap(), 0, Locale::En), "1");
    }

    #[test]
    fn pads_to_exactly_the_requested_decimals() {
        assert_eq!(money(&m("150", "USD"), Locale::En), "$150.00");
        assert_eq!(number(Decimal::from(7), 3, Locale::De), "7,000");
        assert_eq!(number(Decimal::from_str("1.23456").unwrap(), 0, Locale::Fr), "1");
        assert_eq!(number(Decimal::from(1), 30, Locale::En), format!("1.{}", "0".repeat(30)));
    }

    #[test]
    fn amounts_that_round_to_zero_have_no_sign() {
        assert_eq!(money(&m("-0.001", "USD"), Locale::En), "$0.00");
        assert_eq!(money(&m("-0.4", "JPY"), Locale::Nl), "JP¥\u{a0}0");
        assert_eq!(number(Decimal::from_str("-0.00").unwrap(), 2, Locale::Fr), "0,00");
    }

    #[test]
    fn groups_large_numbers_every_three_digits() {
        let big = m("1234567.89", "EUR");
        assert_eq!(money(&big, Locale::En), "€1,234,567.89");
        assert_eq!(money(&big, Locale::EnGb), "€1,234,567.89");
        assert_eq!(money(&big, Locale::Fr), "1\u{202f}234\u{202f}567,89\u{a0}€");
        assert_eq!(money(&big, Locale::De), "1.234.567,89\u{a0}€");
        assert_eq!(money(&big, Locale::Es), "1.234.567,89\u{a0}€");
        assert_eq!(money(&big, Locale::It), "1.234.567,89\u{a0}€");
        assert_eq!(money(&big, Locale::Nl), "€\u{a0}1.234.567,89");
        assert_eq!(number(Decimal::from(123456), 0, Locale::En), "123,456");
    }

    #[test]
    fn unknown_symbols_fall_back_to_the_iso_code() {
        assert_eq!(money(&m("1234.5", "CHF"), Locale::En), "CHF\u{a0}1,234.50");
        assert_eq!(money(&m("1234.5", "CHF"), Locale::Fr), "1\u{202f}234,50\u{a0}CHF");
        assert_eq!(money(&m("1234.5", "SEK"), Locale::Nl), "SEK\u{a0}1.234,50");
        assert_eq!(money(&m("1234.5", "GBP"), Locale::Es), "1234,50\u{a0}GBP");
    }

    #[test]
    fn long_dates_follow_each_locale() {
        let d = date(2026, 11, 25);
        assert_eq!(date_long(d, Locale::En), "November 25, 2026");
        assert_eq!(date_long(d, Locale::EnGb), "25 November 2026");
        assert_eq!(date_long(d, Locale::Fr), "25 novembre 2026");
        assert_eq!(date_long(d, Locale::De), "25. November 2026");
        assert_eq!(date_long(d, Locale::Es), "25 de noviembre de 2026");
        assert_eq!(date_long(d, Locale::It), "25 novembre 2026");
        assert_eq!(date_long(d, Locale::Nl), "25 november 2026");
    }

    #[test]
    fn long_dates_do_not_pad_the_day() {
        let d = date(2026, 3, 5);
        assert_eq!(date_long(d, Locale::En), "March 5, 2026");
        assert_eq!(date_long(d, Locale::De), "5. März 2026");
        assert_eq!(date_long(date(2026, 8, 1), Locale::Fr), "1 août 2026");
        assert_eq!(date_long(date(2026, 12, 31), Locale::Nl), "31 december 2026");
    }

    #[test]
    fn short_dates_follow_each_locale() {
        let d = date(2026, 11, 25);
        assert_eq!(date_short(d, Locale::En), "11/25/2026");
        assert_eq!(date_short(d, Locale::EnGb), "25/11/2026");
        assert_eq!(date_short(d, Locale::Fr), "25/11/2026");
        assert_eq!(date_short(d, Locale::De), "25.11.2026");
        assert_eq!(date_short(d, Locale::Es), "25/11/2026");
        assert_eq!(date_short(d, Locale::It), "25/11/2026");
        assert_eq!(date_short(d, Locale::Nl), "25-11-2026");
    }

    #[test]
    fn short_dates_pad_day_and_month_to_two_digits() {
        let d = date(2026, 1, 5);
        assert_eq!(date_short(d, Locale::En), "01/05/2026");
        assert_eq!(date_short(d, Locale::De), "05.01.2026");
        assert_eq!(date_short(d, Locale::Nl), "05-01-2026");
    }

    #[test]
    fn parses_language_tags_case_insensitively() {
        assert_eq!(Locale::parse("en"), Some(Locale::En));
        assert_eq!(Locale::parse("en-US"), Some(Locale::En));
        assert_eq!(Locale::parse("en_us"), Some(Locale::En));
        assert_eq!(Locale::parse("EN-gb"), Some(Locale::EnGb));
        assert_eq!(Locale::parse("fr-FR"), Some(Locale::Fr));
        assert_eq!(Locale::parse("fr-CA"), Some(Locale::Fr));
        assert_eq!(Locale::parse("de-DE"), Some(Locale::De));
        assert_eq!(Locale::parse("es"), Some(Locale::Es));
        assert_eq!(Locale::parse("it"), Some(Locale::It));
        assert_eq!(Locale::parse("nl"), Some(Locale::Nl));
        for bad in ["", "pt", "english", "de-AT", "en-", "fr-CA-x"] {
            assert_eq!(Locale::parse(bad), None, "{bad} accepted");
        }
    }

    #[test]
    fn every_advertised_tag_parses() {
        for tag in Locale::TAGS {
            assert!(Locale::parse(tag).is_some(), "{tag} refused");
        }
        assert_eq!(Locale::default(), Locale::En);
    }
}
