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

/// The seed's order: most recently updated, then the larger id; then the company name, so that the
/// same id in two companies updated at the same instant still gives one answer whatever the input
/// order.
fn order<'a>(c: &Candidate<'a>) -> (DateTime<Utc>, &'a crate::ids::RecordId, &'a crate::ids::AccountName) {
    (c.invoice.updated_at, &c.invoice.key.id, &c.invoice.key.account)
}

/// Projects the deal's properties from its linked invoices.
pub fn project(candidates: &[Candidate<'_>]) -> Projection {
    let eligible =
        |c: &&Candidate<'_>| c.invoice.lifecycle != Lifecycle::Deleted && c.invoice.amount.currency == c.home_currency;
    let source = candidates.iter().filter(eligible).max_by(|a, b| order(a).cmp(&order(b)));
    let mut ordered: Vec<&Candidate<'_>> = candidates.iter().collect();
    ordered.sort_by(|a, b| order(b).cmp(&order(a)));
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
                    Some(s) => {
                        Verdict::Older { updated_at: c.invoice.updated_at, source_updated_at: s.invoice.updated_at }
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::invoice_status;
    use crate::test_support::{currency, date, instant, invoice, money};

    fn usd_home() -> Currency {
        currency("USD")
    }

    /// A candidate with its status on 2026-11-25, for a USD company.
    fn candidate(invoice: &Invoice) -> Candidate<'_> {
        Candidate { invoice, status: invoice_status(invoice, date("2026-11-25")), home_currency: usd_home() }
    }

    fn updated(id: &str, at: &str) -> Invoice {
        Invoice { updated_at: instant(at), ..invoice(id) }
    }

    fn ids(p: &Projection) -> Vec<(&str, &Verdict)> {
        p.invoices.iter().map(|(k, v)| (k.id.as_str(), v)).collect()
    }

    #[test]
    fn the_most_recently_updated_invoice_wins() {
        let old = updated("900", "2026-11-01T09:00:00Z");
        let mut new = updated("12", "2026-11-03T09:00:00Z");
        new.amount = money("250.00", "USD");
        new.balance = money("250.00", "USD");
        new.number = Some("1071".to_owned());
        new.due_date = Some(date("2026-11-10"));
        let p = project(&[candidate(&old), candidate(&new)]);

        assert_eq!(p.source, Some(new.key.clone()));
        let props = p.properties.clone().unwrap();
        assert_eq!(props.amount, money("250.00", "USD"));
        assert_eq!(props.number.as_deref(), Some("1071"));
        assert_eq!(props.due_date, Some(date("2026-11-10")));
        assert_eq!(props.status, InvoiceStatus::Overdue);
        assert_eq!(
            ids(&p),
            vec![
                ("12", &Verdict::Used),
                (
                    "900",
                    &Verdict::Older {
                        updated_at: instant("2026-11-01T09:00:00Z"),
                        source_updated_at: instant("2026-11-03T09:00:00Z"),
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_tie_on_updated_at_goes_to_the_numerically_larger_id() {
        let at = "2026-11-03T09:00:00Z";
        let (small, large) = (updated("45", at), updated("239", at));
        // "45" > "239" as text; QuickBooks ids compare as numbers. Input order must not matter.
        for candidates in [[candidate(&small), candidate(&large)], [candidate(&large), candidate(&small)]] {
            let p = project(&candidates);
            assert_eq!(p.source, Some(large.key.clone()));
            assert_eq!(ids(&p), vec![("239", &Verdict::Used), ("45", &Verdict::TieSmallerId)]);
        }
    }

    #[test]
    fn the_same_id_in_two_companies_at_the_same_instant_gives_one_answer() {
        let at = "2026-11-03T09:00:00Z";
        let a = updated("239", at);
        let mut b = updated("239", at);
        b.key.account = crate::ids::AccountName::new("zeta").unwrap();
        for candidates in [[candidate(&a), candidate(&b)], [candidate(&b), candidate(&a)]] {
            assert_eq!(project(&candidates).source, Some(b.key.clone()), "regression: input order decided");
        }
    }

    #[test]
    fn another_currency_never_updates_the_deal_even_when_newest() {
        let usd = updated("1", "2026-11-01T09:00:00Z");
        let eur = Invoice {
            amount: money("500.00", "EUR"),
            balance: money("500.00", "EUR"),
            ..updated("2", "2026-11-20T09:00:00Z")
        };
        let p = project(&[candidate(&eur), candidate(&usd)]);
        assert_eq!(p.source, Some(usd.key.clone()));
        assert_eq!(p.properties.as_ref().unwrap().amount, money("100.00", "USD"));
        let other = Verdict::OtherCurrency { currency: currency("EUR"), home_currency: currency("USD") };
        assert_eq!(ids(&p), vec![("1", &Verdict::Used), ("2", &other)]);
        assert!(other.explain().contains("EUR") && other.explain().contains("USD"), "{}", other.explain());
    }

    #[test]
    fn only_other_currency_invoices_leave_the_properties_empty() {
        let eur = Invoice { amount: money("500.00", "EUR"), balance: money("500.00", "EUR"), ..invoice("1") };
        let gbp = Invoice { amount: money("80.00", "GBP"), balance: money("80.00", "GBP"), ..invoice("2") };
        let p = project(&[candidate(&eur), candidate(&gbp)]);
        assert_eq!(p.properties, None);
        assert_eq!(p.source, None);
        assert_eq!(p.invoices.len(), 2);
        assert!(p.invoices.iter().all(|(_, v)| matches!(v, Verdict::OtherCurrency { .. })), "{:?}", p.invoices);
    }

    #[test]
    fn deleted_invoices_are_excluded() {
        let old = updated("1", "2026-11-01T09:00:00Z");
        let deleted = Invoice { lifecycle: Lifecycle::Deleted, ..updated("2", "2026-11-20T09:00:00Z") };
        let p = project(&[candidate(&deleted), candidate(&old)]);
        assert_eq!(p.source, Some(old.key.clone()));
        assert_eq!(ids(&p), vec![("1", &Verdict::Used), ("2", &Verdict::Deleted)]);
    }

    #[test]
    fn a_voided_invoice_still_counts_and_shows_voided() {
        let old = updated("1", "2026-11-01T09:00:00Z");
        let voided = Invoice { lifecycle: Lifecycle::Voided, ..updated("2", "2026-11-20T09:00:00Z") };
        let p = project(&[candidate(&old), candidate(&voided)]);
        assert_eq!(p.source, Some(voided.key.clone()));
        assert_eq!(p.properties.unwrap().status, InvoiceStatus::Voided);
    }

    #[test]
    fn recipient_is_the_bill_email_else_the_customer_name() {
        let no_email = invoice("1");
        let p = project(&[candidate(&no_email)]);
        assert_eq!(p.properties.unwrap().recipient, "Acme");

        let with_email = Invoice { bill_email: Some("ap@acme.example".to_owned()), ..invoice("1") };
        let p = project(&[candidate(&with_email)]);
        assert_eq!(p.properties.unwrap().recipient, "ap@acme.example");
    }

    #[test]
    fn no_invoices_project_nothing() {
        let p = project(&[]);
        assert_eq!(p, Projection { properties: None, source: None, invoices: Vec::new() });
    }

    #[test]
    fn verdicts_list_the_source_first_then_most_recent_first() {
        let a = updated("1", "2026-11-01T09:00:00Z");
        let b = updated("2", "2026-11-05T09:00:00Z");
        let c = Invoice { lifecycle: Lifecycle::Deleted, ..updated("3", "2026-11-09T09:00:00Z") };
        let d = updated("4", "2026-11-07T09:00:00Z");
        let p = project(&[candidate(&a), candidate(&b), candidate(&c), candidate(&d)]);
        let order: Vec<&str> = p.invoices.iter().map(|(k, _)| k.id.as_str()).collect();
        assert_eq!(order, ["4", "3", "2", "1"]);
        assert_eq!(p.invoices[0].1, Verdict::Used);
    }
}
