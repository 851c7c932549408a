//! Watched properties and the changes between two versions of a record: the history's events.
//!
//! A record's creation is the change of [`Property::Lifecycle`] from nothing to `active`; a void or
//! delete is its change to `voided` or `deleted`. Every other watched property is compared as text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::HolderKind;
use crate::record::{Lifecycle, Record};

/// A property whose changes are recorded (DOMAIN.md §2; issue "History").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    /// `active`, `voided`, `deleted`; none → `active` is the record's creation.
    Lifecycle,
    /// `TotalAmt`.
    Amount,
    /// `Balance`.
    Balance,
    /// The invoice recipient (bill email, else customer name); a bill's vendor.
    Recipient,
    /// `DocNumber`.
    Number,
    /// The derived status.
    Status,
    /// `DueDate`.
    DueDate,
    /// `EmailStatus`.
    EmailStatus,
    /// `CurrencyRef`.
    Currency,
    /// The deal link.
    DealId,
    /// The contact link.
    ContactId,
    /// The company link.
    CompanyId,
}

impl Property {
    /// Every property.
    pub const ALL: [Property; 12] = [
        Self::Lifecycle,
        Self::Amount,
        Self::Balance,
        Self::Recipient,
        Self::Number,
        Self::Status,
        Self::DueDate,
        Self::EmailStatus,
        Self::Currency,
        Self::DealId,
        Self::ContactId,
        Self::CompanyId,
    ];

    /// The snake-case name used in storage, JSON and rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lifecycle => "lifecycle",
            Self::Amount => "amount",
            Self::Balance => "balance",
            Self::Recipient => "recipient",
            Self::Number => "number",
            Self::Status => "status",
            Self::DueDate => "due_date",
            Self::EmailStatus => "email_status",
            Self::Currency => "currency",
            Self::DealId => "deal_id",
            Self::ContactId => "contact_id",
            Self::CompanyId => "company_id",
        }
    }

    /// Parses the snake-case name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The property that records links to one kind of holder.
    pub fn link(kind: HolderKind) -> Self {
        match kind {
            HolderKind::Deal => Self::DealId,
            HolderKind::Contact => Self::ContactId,
            HolderKind::Company => Self::CompanyId,
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One property's change: old → new, as text (`None` = absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Which property.
    pub property: Property,
    /// Value before (`None`: absent, or the record did not exist).
    pub old: Option<String>,
    /// Value after.
    pub new: Option<String>,
}

/// The watched values of one version of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched(Vec<(Property, Option<String>)>);

fn lifecycle_name(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::Active => "active",
        Lifecycle::Voided => "voided",
        Lifecycle::Deleted => "deleted",
    }
}

impl Watched {
    /// The watched values of `record`, whose status (derived or stored) is `status`.
    pub fn of(record: &Record, status: &str) -> Self {
        let s = |v: &str| Some(v.to_owned());
        let status = s(status);
        let values = match record {
            Record::Invoice(i) => vec![
                (Property::Lifecycle, s(lifecycle_name(i.lifecycle))),
                (Property::Amount, Some(i.amount.amount_string())),
                (Property::Balance, Some(i.balance.amount_string())),
                (Property::Currency, s(i.amount.currency.code())),
                (Property::Recipient, s(i.recipient())),
                (Property::Number, i.number.clone()),
                (Property::Status, status),
                (Property::DueDate, i.due_date.map(|d| d.to_string())),
                (Property::EmailStatus, s(i.email_status.as_str())),
                (Property::DealId, i.holders.deal.as_ref().map(ToString::to_string)),
                (Property::ContactId, i.holders.contact.as_ref().map(ToString::to_string)),
                (Property::CompanyId, i.holders.company.as_ref().map(ToString::to_string)),
            ],
            Record::Bill(b) => vec![
                (Property::Lifecycle, s(lifecycle_name(b.lifecycle))),
                (Property::Amount, Some(b.amount.amount_string())),
                (Property::Balance, Some(b.balance.amount_string())),
                (Property::Currency, s(b.amount.currency.code())),
                (Property::Recipient, s(&b.vendor.name)),
                (Property::Number, b.number.clone()),
                (Property::Status, status),
                (Property::DueDate, b.due_date.map(|d| d.to_string())),
            ],
            Record::Payment(p) => vec![
                (Property::Lifecycle, s(lifecycle_name(p.lifecycle))),
                (Property::Amount, Some(p.amount.amount_string())),
                (Property::Currency, s(p.amount.currency.code())),
                (Property::Status, status),
            ],
            Record::Deposit(d) => vec![
                (Property::Lifecycle, s(lifecycle_name(d.lifecycle))),
                (Property::Amount, Some(d.amount.amount_string())),
                (Property::Currency, s(d.amount.currency.code())),
            ],
        };
        Self(values)
    }

    /// One watched value.
    pub fn get(&self, property: Property) -> Option<&str> {
        self.0.iter().find(|(p, _)| *p == property).and_then(|(_, v)| v.as_deref())
    }
}

/// The changes from `old` to `new`. With no `old`, the record is new: one lifecycle change
/// (none → `active`, or straight to `voided`/`deleted`) stands for its creation.
pub fn diff(old: Option<&Watched>, new: &Watched) -> Vec<Change> {
    let Some(old) = old else {
        return vec![Change {
            property: Property::Lifecycle,
            old: None,
            new: new.get(Property::Lifecycle).map(str::to_owned),
        }];
    };
    new.0
        .iter()
        .filter_map(|(property, value)| {
            let before = old.get(*property);
            (before != value.as_deref()).then(|| Change {
                property: *property,
                old: before.map(str::to_owned),
                new: value.clone(),
            })
        })
        .collect()
}
