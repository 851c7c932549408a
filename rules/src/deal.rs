//! The five invoice properties of a deal (or contact, or company), projected from its invoices by
//! the seed's rules:
//!
//! - the invoice most recently updated in QuickBooks wins (`MetaData.LastUpdatedTime`; a tie goes
//!   to the larger `Id`);
//! - an invoice whose currency differs from its company's home currency never updates the deal;
//! - **decision**: an invoice deleted in QuickBooks no longer counts (a voided one still does, and
//!   shows `voided`).
//!
//! Every invoice that was not used gets a [`Verdict`] saying why, so the choice can be explained.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::ids::RecordKey;
use crate::money::{Currency, Money};
use crate::record::{Invoice, Lifecycle};
use crate::status::InvoiceStatus;

/// One invoice linked to the deal, with what the projection needs to know about it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The invoice.
    pub invoice: &'a Invoice,
    /// Its status today.
    pub status: InvoiceStatus,
    /// Its company's home currency.
    pub home_currency: Currency,
}

/// The deal's five invoice properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DealProperties {
    /// Invoice amount (`TotalAmt`).
    pub amount: Money,
    /// Invoice recipient (`BillEmail.Address`, else the customer's name).
    pub recipient: String,
    /// Invoice number (`DocNumber`).
    pub number: Option<String>,
    /// Invoice status.
    pub status: InvoiceStatus,
    /// Invoice due date.
    pub due_date: Option<NaiveDate>,
}

/// Why an invoice was or was not the deal's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// It is the source of the deal's properties.
    Used,
    /// Its currency is not its company's home currency.
    OtherCurrency {
        /// The invoice's currency.
        currency: Currency,
        /// The company's home currency.
        home_currency: Currency,
    },
    /// Deleted in QuickBooks.
    Deleted,
    /// Another invoice was updated more recently.
    Older {
        /// This invoice's `LastUpdatedTime`.
        updated_at: DateTime<Utc>,
        /// The source's `LastUpdatedTime`.
        source_updated_at: DateTime<Utc>,
    },
    /// Updated at the same instant as the source, whose id is larger.
    TieSmallerId,
}

impl Verdict {
    /// A sentence for people.
    pub fn explain(&self) -> String {
        match self {
            Self::Used => "most recently updated eligible invoice".to_owned(),
            Self::OtherCurrency { currency, home_currency } => format!(
                "currency {currency} differs from the company's home currency {home_currency}: never updates the deal"
            ),
            Self::Deleted => "deleted in QuickBooks".to_owned(),
            Self::Older { updated_at, source_updated_at } => format!(
                "updated {} before the source invoice ({})",
                updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                source_updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Self::TieSmallerId => "updated at the same time as the source invoice, whose id is larger".to_owned(),
        }
    }
}

/// The outcome of a projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Projection {
    /// The properties, when at least one invoice is eligible.
    pub properties: Option<DealProperties>,
    /// The invoice they come from.
    pub source: Option<RecordKey>,
    /// Every linked invoice with its verdict, source first, then most recent first.
    pub invoices: Vec<(RecordKey, Verdict)>,
}

/// Projects the deal's properties from its linked invoices.
pub fn project(candidates: &[Candidate<'_>]) -> Projection {
    let eligible = |c: &&Candidate<'_>| {
        c.invoice.lifecycle != Lifecycle::Deleted && c.invoice.amount.currency == c.home_currency
    };
    let source = candidates
        .iter()
        .filter(eligible)
        .max_by(|a, b| {
            (a.invoice.updated_at, &a.invoice.key.id).cmp(&(b.invoice.updated_at, &b.invoice.key.id))
        });
    let mut ordered: Vec<&Candidate<'_>> = candidates.iter().collect();
    ordered.sort_by(|a, b| {
        (b.invoice.updated_at, &b.invoice.key.id).cmp(&(a.invoice.updated_at, &a.invoice.key.id))
    });
    let invoices = ordered
        .into_iter()
        .map(|c| {
            let verdict = if c.invoice.lifecycle == Lifecycle::Deleted {
                Verdict::Deleted
            } else if c.invoice.amount.currency != c.home_currency {
                Verdict::OtherCurrency { currency: c.invoice.amount.currency, home_currency: c.home_currency }
            } else {
                match source {
                    Some(s) if s.invoice.key == c.invoice.key => Verdict::Used,
                    Some(s) if s.invoice.updated_at == c.invoice.updated_at => Verdict::TieSmallerId,
                    Some(s) => Verdict::Older {
                        updated_at: c.invoice.updated_at,
                        source_updated_at: s.invoice.updated_at,
                    },
                    None => Verdict::Used,
                }
            };
            (c.invoice.key.clone(), verdict)
        })
        .collect::<Vec<_>>();
    let mut invoices = invoices;
    invoices.sort_by_key(|(_, v)| *v != Verdict::Used);
    Projection {
        properties: source.map(|s| DealProperties {
            amount: s.invoice.amount,
            recipient: s.invoice.recipient().to_owned(),
            number: s.invoice.number.clone(),
            status: s.status,
            due_date: s.invoice.due_date,
        }),
        source: source.map(|s| s.invoice.key.clone()),
        invoices,
    }
}
