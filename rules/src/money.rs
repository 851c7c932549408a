//! Exact money: a decimal amount with its ISO 4217 currency, never a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency, validated against the standard's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

/// Why a currency code or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not in ISO 4217.
    #[error("`{0}` is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    /// The text is not a plain decimal number.
    #[error("{0}")]
    NotADecimal(String),
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

impl Currency {
    /// The US dollar.
    pub const USD: Currency = Currency(iso_currency::Currency::USD);

    /// Looks up an ISO 4217 code (`"USD"`, `"eur"`; case-insensitive).
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] when the code is not in ISO 4217.
    pub fn from_code(code: &str) -> Result<Self, MoneyError> {
        iso_currency::Currency::from_code(&code.trim().to_ascii_uppercase())
            .map(Currency)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// The three-letter code.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in ordinary use (2 for USD, 0 for JPY).
    pub fn minor_digits(self) -> u32 {
        self.0.exponent().map_or(2, u32::from)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// An exact amount of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount, exact (serialized as a decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Builds an amount of `currency`.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// True for exactly zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// The amount as a decimal string with at least the currency's minor digits (`"150.00"`).
    pub fn amount_string(&self) -> String {
        let digits = self.currency.minor_digits();
        let mut a = self.amount.normalize();
        if a.scale() < digits {
            a.rescale(digits);
        }
        a.to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

/// Parses a plain decimal number: optional `-`, digits, optional `.` and digits.
///
/// Stricter than [`Decimal::from_str`]: no exponents, no `_`, no thousands separators, no comma as
/// the decimal separator, so that `"12,5"` is refused instead of misread.
///
/// # Errors
/// [`MoneyError::NotADecimal`] with a message that says what is wrong.
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let t = text.trim();
    let bad = |why: &str| MoneyError::NotADecimal(format!("{text:?} is not a decimal number{why}"));
    let digits = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if t.contains(',') && !t.contains('.') {
        return Err(bad(" (use a dot as the decimal separator: 12.5)"));
    }
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(bad(""));
    }
    Decimal::from_str(t).map_err(|e| bad(&format!(" ({e})")))
}

/// Parses a JSON number's exact text (`150.0`, `1.5E2`) as a decimal.
///
/// # Errors
/// [`MoneyError::NotADecimal`] when the number is out of range.
pub fn parse_json_number(text: &str) -> Result<Decimal, MoneyError> {
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).map_err(|e| MoneyError::NotADecimal(format!("{text} is out of range ({e})")))
    } else {
        parse_decimal(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals_exactly() {
        assert_eq!(parse_decimal("1250.00").unwrap().to_string(), "1250.00");
        assert_eq!(parse_decimal("-3.5").unwrap().to_string(), "-3.5");
        assert_eq!(parse_decimal("0.1").unwrap() + parse_decimal("0.2").unwrap(), parse_decimal("0.3").unwrap());
    }

    #[test]
    fn refuses_comma_decimal_and_words() {
        let e = parse_decimal("12,5").unwrap_err().to_string();
        assert!(e.contains("use a dot"), "{e}");
        for bad in ["abc", "", "1e5", "1_000", ".5", "5.", "1.2.3", "--1"] {
            assert!(parse_decimal(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn json_numbers_keep_their_digits() {
        assert_eq!(parse_json_number("150.0").unwrap().to_string(), "150.0");
        assert_eq!(parse_json_number("1.5E2").unwrap(), Decimal::from(150));
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(Currency::from_code("eur").unwrap().code(), "EUR");
        assert_eq!(Currency::from_code("JPY").unwrap().minor_digits(), 0);
        assert!(Currency::from_code("XYZ").is_err());
    }

    #[test]
    fn amount_string_pads_to_minor_digits() {
        let usd = Currency::from_code("USD").unwrap();
        assert_eq!(Money::new(Decimal::from(150), usd).amount_string(), "150.00");
        assert_eq!(Money::new(parse_decimal("150.0").unwrap(), usd).amount_string(), "150.00");
        assert_eq!(Money::new(parse_decimal("1.125").unwrap(), usd).amount_string(), "1.125");
    }
}
