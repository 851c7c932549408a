//! How records look on screen and in `--json` lines.

use invoiceflow::store::Stored;
use invoiceflow_rules::{Holder, HolderKind, Invoice, InvoiceStatus, Record};
use serde_json::json;

/// One invoice as a `--json` line: amounts as decimal strings.
pub(crate) fn invoice_json(inv: &Invoice, status: InvoiceStatus, holders: &[Holder]) -> serde_json::Value {
    let ids =
        |kind: HolderKind| -> Vec<&str> { holders.iter().filter(|h| h.kind == kind).map(|h| h.id.as_str()).collect() };
    let deals = ids(HolderKind::Deal);
    json!({
        "id": inv.key.id.as_str(),
        "account": inv.key.account.as_str(),
        "number": inv.number,
        "status": status.as_str(),
        "amount": inv.amount.amount_string(),
        "balance": inv.balance.amount_string(),
        "currency": inv.amount.currency.code(),
        "due_date": inv.due_date.map(|d| d.to_string()),
        "txn_date": inv.txn_date.to_string(),
        "recipient": inv.recipient(),
        "customer": inv.customer.name,
        "email_status": inv.email_status.as_str(),
        "deal_id": deals.first(),
        "deal_ids": deals,
        "contact_ids": ids(HolderKind::Contact),
        "company_ids": ids(HolderKind::Company),
        "updated_at": inv.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// The invoice inside a stored record, if it is one.
pub(crate) fn as_invoice(stored: &Stored) -> Option<&Invoice> {
    match &stored.record {
        Record::Invoice(i) => Some(i),
        _ => None,
    }
}

/// Text cut to `width` characters with an ellipsis.
pub(crate) fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}
