//! Identifiers: QuickBooks companies, records, and the CRM objects that hold invoices.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty or blank.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("is {0} characters long; at most {1} are allowed")]
    TooLong(usize, usize),
    /// Contains a character that cannot appear in it.
    #[error("must not contain {0:?}")]
    BadChar(char),
}

fn check(text: &str, max: usize, forbidden: &[char]) -> Result<(), IdError> {
    if text.trim().is_empty() {
        return Err(IdError::Empty);
    }
    let len = text.chars().count();
    if len > max {
        return Err(IdError::TooLong(len, max));
    }
    match text.chars().find(|c| c.is_control() || forbidden.contains(c)) {
        Some(c) => Err(IdError::BadChar(c)),
        None => Ok(()),
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $forbidden:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            ///
            /// # Errors
            /// [`IdError`] when it is empty, too long or holds a forbidden character.
            pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                check(&text, $max, $forbidden)?;
                Ok(Self(text))
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The name of a connected QuickBooks company (`--account NAME`, `[quickbooks.NAME]`).
    AccountName, 64, &['/', ' ']
);
string_id!(
    /// A record's identifier inside its company (QuickBooks `Id`, canonical `id`).
    ///
    /// Ordered numerically when both sides are all digits (QuickBooks ids), else as text.
    RecordId, 128, &['/']
);
string_id!(
    /// The identifier of a CRM object that holds invoices (a deal, contact or company).
    HolderId, 128, &[]
);

impl AccountName {
    /// The account used when neither the record nor `--account` names one.
    pub fn default_account() -> Self {
        Self("default".to_owned())
    }
}

impl Ord for RecordId {
    fn cmp(&self, other: &Self) -> Ordering {
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if numeric(&self.0) && numeric(&other.0) {
            let a = self.0.trim_start_matches('0');
            let b = other.0.trim_start_matches('0');
            // Equal numbers with different leading zeros fall back to the text, so that `cmp`
            // agrees with `==`.
            a.len().cmp(&b.len()).then_with(|| a.cmp(b)).then_with(|| self.0.cmp(&other.0))
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl PartialOrd for RecordId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The kinds of records invoiceflow watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A receivable (QuickBooks `Invoice`).
    Invoice,
    /// A payable (QuickBooks `Bill`).
    Bill,
    /// A payment received (QuickBooks `Payment`).
    Payment,
    /// A bank deposit (QuickBooks `Deposit`).
    Deposit,
}

impl RecordKind {
    /// Every kind, in a fixed order.
    pub const ALL: [RecordKind; 4] = [Self::Invoice, Self::Bill, Self::Payment, Self::Deposit];

    /// The snake-case name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::Bill => "bill",
            Self::Payment => "payment",
            Self::Deposit => "deposit",
        }
    }

    /// The QuickBooks entity name (`Invoice`, …).
    pub fn quickbooks_name(self) -> &'static str {
        match self {
            Self::Invoice => "Invoice",
            Self::Bill => "Bill",
            Self::Payment => "Payment",
            Self::Deposit => "Deposit",
        }
    }

    /// Parses the snake-case name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record's identity across every connected company: kind, company and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    /// What kind of record.
    pub kind: RecordKind,
    /// The QuickBooks company it belongs to.
    pub account: AccountName,
    /// Its id inside that company.
    pub id: RecordId,
}

impl RecordKey {
    /// Builds a key.
    pub fn new(kind: RecordKind, account: AccountName, id: RecordId) -> Self {
        Self { kind, account, id }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.account, self.id)
    }
}

macro_rules! text_order {
    ($($name:ident),*) => {$(
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                self.0.cmp(&other.0)
            }
        }
    )*};
}

text_order!(AccountName, HolderId);

/// The CRM objects that can hold invoices (the seed's deal, plus contacts and companies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    /// A deal (the seed's case).
    Deal,
    /// A contact.
    Contact,
    /// A company (the CRM's, not a QuickBooks company).
    Company,
}

impl HolderKind {
    /// Every kind, in a fixed order.
    pub const ALL: [HolderKind; 3] = [Self::Deal, Self::Contact, Self::Company];

    /// The snake-case name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deal => "deal",
            Self::Contact => "contact",
            Self::Company => "company",
        }
    }

    /// The canonical record field that links an invoice to this kind of holder (`deal_id`, …).
    pub fn field(self) -> &'static str {
        match self {
            Self::Deal => "deal_id",
            Self::Contact => "contact_id",
            Self::Company => "company_id",
        }
    }

    /// Parses the snake-case name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for HolderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CRM object that holds invoices: `deal 42`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Holder {
    /// Deal, contact or company.
    pub kind: HolderKind,
    /// Its CRM id.
    pub id: HolderId,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickbooks_ids_order_numerically() {
        let id = |s: &str| RecordId::new(s).unwrap();
        assert!(id("239") > id("45"));
        assert!(id("0100") > id("99"));
        assert!(id("inv-000002") > id("inv-000001"));
    }

    #[test]
    fn record_id_order_agrees_with_equality() {
        // Regression: "0239" and "239" are different ids, so they must not compare Equal (a
        // BTreeMap keyed by RecordKey would otherwise merge two records).
        let id = |s: &str| RecordId::new(s).unwrap();
        assert_ne!(id("0239").cmp(&id("239")), Ordering::Equal);
        assert_eq!(id("0239").cmp(&id("239")), id("0239").0.cmp(&id("239").0));
        assert!(id("0239") < id("240"), "still numeric first");
        let keys: std::collections::BTreeSet<_> = ["239", "0239", "00239"].into_iter().map(id).collect();
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn ids_refuse_blank_and_control_characters() {
        assert_eq!(RecordId::new(" "), Err(IdError::Empty));
        assert_eq!(RecordId::new("a\nb"), Err(IdError::BadChar('\n')));
        assert_eq!(AccountName::new("a b"), Err(IdError::BadChar(' ')));
        assert!(matches!(RecordId::new("x".repeat(200)), Err(IdError::TooLong(200, 128))));
    }
}
