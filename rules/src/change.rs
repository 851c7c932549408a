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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{HolderId, RecordKind};
    use crate::record::{Deposit, Invoice, Party, Payment};
    use crate::test_support::{date, instant, invoice, key, usd};

    fn watched(invoice: &Invoice, status: &str) -> Watched {
        Watched::of(&Record::Invoice(invoice.clone()), status)
    }

    fn change(property: Property, old: Option<&str>, new: Option<&str>) -> Change {
        Change { property, old: old.map(str::to_owned), new: new.map(str::to_owned) }
    }

    #[test]
    fn a_new_record_is_one_lifecycle_change_from_nothing_to_active() {
        let new = watched(&invoice("1"), "awaiting_send");
        assert_eq!(diff(None, &new), vec![change(Property::Lifecycle, None, Some("active"))]);
    }

    #[test]
    fn a_record_first_seen_voided_is_created_as_voided() {
        let mut i = invoice("1");
        i.lifecycle = Lifecycle::Voided;
        assert_eq!(diff(None, &watched(&i, "voided")), vec![change(Property::Lifecycle, None, Some("voided"))]);
    }

    #[test]
    fn identical_versions_have_no_changes() {
        let i = invoice("1");
        let w = watched(&i, "sent");
        assert_eq!(diff(Some(&w), &watched(&i, "sent")), vec![]);
    }

    #[test]
    fn an_update_that_touches_no_watched_property_has_no_changes() {
        let old = invoice("1");
        let mut new = old.clone();
        new.updated_at = instant("2026-11-20T09:00:00Z");
        new.txn_date = date("2026-11-02");
        new.cc = vec!["boss@example.com".to_owned()];
        assert_eq!(diff(Some(&watched(&old, "sent")), &watched(&new, "sent")), vec![]);
    }

    #[test]
    fn the_same_amount_at_another_scale_is_not_a_change() {
        let old = invoice("1");
        let mut new = old.clone();
        new.amount = usd("100");
        new.balance = usd("100.000");
        assert_eq!(diff(Some(&watched(&old, "sent")), &watched(&new, "sent")), vec![]);
    }

    #[test]
    fn paying_in_full_changes_balance_and_status() {
        let old = invoice("1");
        let mut new = old.clone();
        new.balance = usd("0");
        let changes = diff(Some(&watched(&old, "sent")), &watched(&new, "paid"));
        assert_eq!(
            changes,
            vec![
                change(Property::Balance, Some("100.00"), Some("0.00")),
                change(Property::Status, Some("sent"), Some("paid")),
            ]
        );
    }

    #[test]
    fn linking_and_relinking_a_deal_changes_deal_id() {
        let unlinked = invoice("1");
        let mut linked = unlinked.clone();
        linked.holders.deal = Some(HolderId::new("D-1").unwrap());
        let mut relinked = linked.clone();
        relinked.holders.deal = Some(HolderId::new("D-2").unwrap());

        let w = |i: &Invoice| watched(i, "sent");
        assert_eq!(diff(Some(&w(&unlinked)), &w(&linked)), vec![change(Property::DealId, None, Some("D-1"))]);
        assert_eq!(diff(Some(&w(&linked)), &w(&relinked)), vec![change(Property::DealId, Some("D-1"), Some("D-2"))]);
        assert_eq!(diff(Some(&w(&relinked)), &w(&unlinked)), vec![change(Property::DealId, Some("D-2"), None)]);
    }

    #[test]
    fn removing_the_bill_email_falls_back_to_the_customer_name() {
        let mut old = invoice("1");
        old.bill_email = Some("ap@acme.example".to_owned());
        let mut new = old.clone();
        new.bill_email = None;
        let changes = diff(Some(&watched(&old, "sent")), &watched(&new, "sent"));
        assert_eq!(changes, vec![change(Property::Recipient, Some("ap@acme.example"), Some("Acme"))]);
    }

    #[test]
    fn deleting_changes_lifecycle_and_status() {
        let old = Record::Invoice(invoice("1"));
        let mut new = old.clone();
        new.mark_deleted(instant("2026-11-20T09:00:00Z"));
        let changes = diff(Some(&Watched::of(&old, "sent")), &Watched::of(&new, "voided"));
        assert_eq!(
            changes,
            vec![
                change(Property::Lifecycle, Some("active"), Some("deleted")),
                change(Property::Status, Some("sent"), Some("voided")),
            ]
        );
    }

    #[test]
    fn watched_values_of_an_invoice() {
        let mut i = invoice("1");
        i.holders.contact = Some(HolderId::new("C-9").unwrap());
        let w = watched(&i, "awaiting_send");
        assert_eq!(w.get(Property::Lifecycle), Some("active"));
        assert_eq!(w.get(Property::Amount), Some("100.00"));
        assert_eq!(w.get(Property::Balance), Some("100.00"));
        assert_eq!(w.get(Property::Currency), Some("USD"));
        assert_eq!(w.get(Property::Recipient), Some("Acme"));
        assert_eq!(w.get(Property::Number), Some("INV-1"));
        assert_eq!(w.get(Property::Status), Some("awaiting_send"));
        assert_eq!(w.get(Property::DueDate), Some("2026-12-01"));
        assert_eq!(w.get(Property::EmailStatus), Some("NotSet"));
        assert_eq!(w.get(Property::DealId), None);
        assert_eq!(w.get(Property::ContactId), Some("C-9"));
    }

    #[test]
    fn payments_and_deposits_watch_fewer_properties() {
        let payment = Record::Payment(Payment {
            key: key(RecordKind::Payment, "p1"),
            customer: Party { id: None, name: "Acme".to_owned() },
            amount: usd("80"),
            txn_date: date("2026-11-10"),
            deposit_to: None,
            invoices: Vec::new(),
            lifecycle: Lifecycle::Active,
            updated_at: instant("2026-11-10T09:00:00Z"),
        });
        let w = Watched::of(&payment, "undeposited");
        assert_eq!(w.get(Property::Amount), Some("80.00"));
        assert_eq!(w.get(Property::Status), Some("undeposited"));
        assert_eq!(w.get(Property::Balance), None);

        let deposit = Record::Deposit(Deposit {
            key: key(RecordKind::Deposit, "d1"),
            amount: usd("80"),
            txn_date: date("2026-11-12"),
            deposit_to: None,
            payments: Vec::new(),
            lifecycle: Lifecycle::Active,
            updated_at: instant("2026-11-12T09:00:00Z"),
        });
        let w = Watched::of(&deposit, "ignored");
        assert_eq!(w.get(Property::Status), None, "deposits have no status");
        assert_eq!(w.get(Property::Lifecycle), Some("active"));
    }

    #[test]
    fn property_names_round_trip() {
        for p in Property::ALL {
            assert_eq!(Property::parse(p.as_str()), Some(p));
        }
        assert_eq!(Property::link(crate::ids::HolderKind::Contact), Property::ContactId);
    }
}
