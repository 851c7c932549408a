//! Typed reads of JSON object fields, each failure naming the field and saying why.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::money::{Currency, parse_decimal, parse_json_number};

/// A field that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) reason: String,
}

pub(crate) type FieldResult<T> = Result<T, FieldError>;

/// A JSON object with the path that leads to it (`MetaData.`), for error messages.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: &'a str,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Fields<'a> {
    pub(crate) fn new(obj: &'a Map<String, Value>, prefix: &'a str) -> Self {
        Self { obj, prefix }
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.obj.keys()
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.obj.get(name).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn error(&self, name: &str, reason: impl Into<String>) -> FieldError {
        FieldError { field: format!("{}{name}", self.prefix), reason: reason.into() }
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    pub(crate) fn opt_str(&self, name: &str) -> FieldResult<Option<&'a str>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.error(name, format!("must be a string, found {}", kind_of(v)))),
        }
    }

    pub(crate) fn str(&self, name: &str) -> FieldResult<&'a str> {
        self.opt_str(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    /// An identifier: a string, or a whole number (some exports write ids as numbers).
    pub(crate) fn opt_id(&self, name: &str) -> FieldResult<Option<String>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
            Some(_) => Ok(self.opt_str(name)?.map(str::to_owned)),
        }
    }

    pub(crate) fn id(&self, name: &str) -> FieldResult<String> {
        self.opt_id(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    pub(crate) fn opt_bool(&self, name: &str) -> FieldResult<Option<bool>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.error(name, format!("must be true or false, found {}", kind_of(v)))),
        }
    }

    /// An exact decimal: a decimal string (`"1250.00"`) or a JSON number kept digit for digit.
    pub(crate) fn opt_decimal(&self, name: &str) -> FieldResult<Option<Decimal>> {
        let parsed = match self.present(name) {
            None => return Ok(None),
            Some(Value::String(s)) => parse_decimal(s),
            Some(Value::Number(n)) => parse_json_number(&n.to_string()),
            Some(v) => {
                return Err(self.error(name, format!("must be a decimal number, found {}", kind_of(v))));
            }
        };
        parsed.map(Some).map_err(|e| self.error(name, e.to_string()))
    }

    pub(crate) fn decimal(&self, name: &str) -> FieldResult<Decimal> {
        self.opt_decimal(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    /// A non-negative amount.
    pub(crate) fn amount(&self, name: &str) -> FieldResult<Decimal> {
        let d = self.decimal(name)?;
        if d.is_sign_negative() && !d.is_zero() {
            return Err(self.error(name, format!("{d} is negative")));
        }
        Ok(d)
    }

    pub(crate) fn opt_currency(&self, name: &str) -> FieldResult<Option<Currency>> {
        self.opt_str(name)?.map(|c| Currency::from_code(c).map_err(|e| self.error(name, e.to_string()))).transpose()
    }

    pub(crate) fn opt_date(&self, name: &str) -> FieldResult<Option<NaiveDate>> {
        let Some(text) = self.opt_str(name)? else {
            return Ok(None);
        };
        let well_formed = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        if !well_formed {
            return Err(self.error(name, format!("{text:?} is not a date (expected YYYY-MM-DD)")));
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| self.error(name, format!("{text} is not a valid calendar date")))
    }

    pub(crate) fn date(&self, name: &str) -> FieldResult<NaiveDate> {
        self.opt_date(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    /// An RFC 3339 instant with its offset (`2015-07-24T10:35:08-07:00`, `…Z`).
    pub(crate) fn opt_instant(&self, name: &str) -> FieldResult<Option<DateTime<Utc>>> {
        let Some(text) = self.opt_str(name)? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| self.error(name, format!("{text:?} is not an RFC 3339 time with offset ({e})")))
    }

    pub(crate) fn opt_obj(&self, name: &'a str) -> FieldResult<Option<Map<String, Value>>> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o.clone())),
            Some(v) => Err(self.error(name, format!("must be an object, found {}", kind_of(v)))),
        }
    }

    pub(crate) fn opt_array(&self, name: &str) -> FieldResult<&'a [Value]> {
        match self.present(name) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.error(name, format!("must be an array, found {}", kind_of(v)))),
        }
    }

    /// A list of strings given as an array or one comma-separated string.
    pub(crate) fn string_list(&self, name: &str) -> FieldResult<Vec<String>> {
        match self.present(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(split_list(s)),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(self.error(name, format!("must hold strings, found {}", kind_of(other)))),
                })
                .collect(),
            Some(v) => Err(self.error(name, format!("must be a list, found {}", kind_of(v)))),
        }
    }
}

pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}
