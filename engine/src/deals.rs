//! A CRM object's invoices, read from the store, and the five properties projected from them
//! (`invoiceflow deals show`, and `deal` in rule scripts).

use invoiceflow_rules::deal::{Candidate, Projection, project};
use invoiceflow_rules::script::types::DealView;
use invoiceflow_rules::status::invoice_status;
use invoiceflow_rules::{Holder, HolderId, HolderKind, Record};

use crate::clock::Clock;
use crate::store::{InvoiceQuery, Store, StoreError, Stored};

/// Invoices read per query.
const PAGE: u32 = 1000;

/// Every invoice `holder` holds, in key order.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn invoices_of<S: Store>(store: &S, holder: &Holder) -> Result<Vec<Stored>, StoreError> {
    let mut stored = Vec::new();
    let mut query = InvoiceQuery { holder: Some(holder.clone()), limit: PAGE, ..Default::default() };
    loop {
        let page = store.invoices(&query).await?;
        let Some(last) = page.last() else { break };
        query.after = Some((last.record.key().account.clone(), last.record.key().id.clone()));
        let full = page.len() == PAGE as usize;
        stored.extend(page);
        if !full {
            break;
        }
    }
    Ok(stored)
}

/// The projection of `stored` invoices for "today" in each one's company.
pub fn projection(stored: &[Stored], clock: &Clock) -> Projection {
    let candidates: Vec<Candidate<'_>> = stored
        .iter()
        .filter_map(|s| match &s.record {
            Record::Invoice(invoice) => Some(Candidate {
                invoice,
                status: invoice_status(invoice, clock.today_of(&invoice.key.account)),
                home_currency: clock.companies.get(&invoice.key.account).home_currency,
            }),
            _ => None,
        })
        .collect();
    project(&candidates)
}

/// Deal `id` as rule scripts see it.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn deal_view<S: Store>(store: &S, id: &HolderId, clock: &Clock) -> Result<DealView, StoreError> {
    let holder = Holder { kind: HolderKind::Deal, id: id.clone() };
    let stored = invoices_of(store, &holder).await?;
    Ok(DealView { id: id.to_string(), properties: projection(&stored, clock).properties })
}
