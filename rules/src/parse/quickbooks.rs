//! QuickBooks Online API JSON: `Invoice`, `Bill`, `Payment` and `Deposit` entities.

use serde_json::{Map, Value};

use super::fields::{FieldError, FieldResult, Fields, split_list};
use super::{Incoming, Item, ParseContext, Rejection, id_hint, record_key};
use crate::ids::{RecordId, RecordKind};
use crate::money::Money;
use crate::record::{
    AccountRef, Bill, Delivery, Deposit, EmailStatus, HolderFields, Invoice, Lifecycle, Party, Payment, Record,
};

/// Parses one entity of a known kind.
pub(super) fn parse(kind: RecordKind, obj: &Map<String, Value>, ctx: &ParseContext<'_>, at: Option<String>) -> Item {
    let entity = at.or_else(|| id_hint(obj.get("Id")).map(|id| format!("{} {id}", kind.quickbooks_name())));
    match parse_entity(kind, Fields::new(obj, ""), ctx) {
        Ok(incoming) => Item::Record(incoming),
        Err(FieldError { field, reason }) => Item::Rejected(Rejection { entity, field, reason }),
    }
}

/// Tells a bare entity's type from the fields only that type has.
pub(super) fn guess_kind(obj: &Map<String, Value>) -> Option<RecordKind> {
    let has = |k: &str| obj.contains_key(k);
    let lines_have = |detail: &str| {
        obj.get("Line").and_then(Value::as_array).is_some_and(|lines| lines.iter().any(|l| l.get(detail).is_some()))
    };
    if has("VendorRef") {
        Some(RecordKind::Bill)
    } else if has("CustomerRef")
        && (has("DueDate") || has("EmailStatus") || has("BillEmail") || lines_have("SalesItemLineDetail"))
    {
        Some(RecordKind::Invoice)
    } else if has("CustomerRef") && (has("UnappliedAmt") || has("PaymentMethodRef") || has("PaymentRefNum")) {
        Some(RecordKind::Payment)
    } else if !has("CustomerRef") && lines_have("DepositLineDetail") {
        Some(RecordKind::Deposit)
    } else {
        None
    }
}

/// A human sentence for a `Fault` object.
pub(super) fn describe_fault(fault: &Value) -> String {
    let kind = fault.get("type").and_then(Value::as_str).unwrap_or("Fault");
    let errors: Vec<String> = fault
        .get("Error")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
                    let code = e.get("code").map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned));
                    let mut s = text("Message").to_owned();
                    if !text("Detail").is_empty() {
                        s.push_str(": ");
                        s.push_str(text("Detail"));
                    }
                    if let Some(code) = code {
                        s.push_str(&format!(" (code {code})"));
                    }
                    s
                })
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        format!("QuickBooks returned a {kind} instead of records")
    } else {
        format!("QuickBooks returned a {kind} instead of records: {}", errors.join("; "))
    }
}

fn parse_entity(kind: RecordKind, f: Fields<'_>, ctx: &ParseContext<'_>) -> FieldResult<Incoming> {
    let account = ctx.account;
    let key = record_key(kind, account, &f.id("Id")?, "Id")?;
    let meta = f.opt_obj("MetaData")?.unwrap_or_default();
    let meta = Fields::new(&meta, "MetaData.");
    let updated_at = meta.opt_instant("LastUpdatedTime")?.unwrap_or(ctx.received_at);
    if f.opt_str("status")? == Some("Deleted") {
        return Ok(Incoming::Delete { key, at: updated_at });
    }
    let currency = match f.opt_obj("CurrencyRef")? {
        Some(c) => Fields::new(&c, "CurrencyRef.").opt_currency("value")?,
        None => None,
    }
    .unwrap_or_else(|| (ctx.home_currency)(account));
    let money = |name: &str| f.amount(name).map(|a| Money::new(a, currency));
    let amount = money("TotalAmt")?;
    let txn_date = f.date("TxnDate")?;
    let voided = f.opt_str("PrivateNote")?.is_some_and(|n| n.trim_start().starts_with("Voided"));
    let lifecycle = if voided { Lifecycle::Voided } else { Lifecycle::Active };
    let record = match kind {
        RecordKind::Invoice => {
            let email = |name: &'static str| -> FieldResult<Option<String>> {
                let prefix = format!("{name}.");
                match f.opt_obj(name)? {
                    Some(o) => Ok(Fields::new(&o, &prefix).opt_str("Address")?.map(str::to_owned)),
                    None => Ok(None),
                }
            };
            let delivery = match f.opt_obj("DeliveryInfo")? {
                Some(d) => {
                    let d = Fields::new(&d, "DeliveryInfo.");
                    Some(Delivery {
                        kind: d.opt_str("DeliveryType")?.map(str::to_owned),
                        at: d.opt_instant("DeliveryTime")?,
                    })
                }
                None => None,
            };
            Record::Invoice(Invoice {
                key,
                number: f.opt_str("DocNumber")?.map(str::to_owned),
                customer: party(f, "CustomerRef")?,
                bill_email: email("BillEmail")?,
                cc: email("BillEmailCc")?.map(|s| split_list(&s)).unwrap_or_default(),
                bcc: email("BillEmailBcc")?.map(|s| split_list(&s)).unwrap_or_default(),
                balance: money("Balance")?,
                amount,
                txn_date,
                due_date: f.opt_date("DueDate")?,
                email_status: f.opt_str("EmailStatus")?.map(EmailStatus::parse).unwrap_or_default(),
                delivery,
                lifecycle,
                created_at: meta.opt_instant("CreateTime")?,
                updated_at,
                holders: HolderFields::default(),
            })
        }
        RecordKind::Bill => Record::Bill(Bill {
            key,
            number: f.opt_str("DocNumber")?.map(str::to_owned),
            vendor: party(f, "VendorRef")?,
            balance: money("Balance")?,
            amount,
            txn_date,
            due_date: f.opt_date("DueDate")?,
            lifecycle,
            updated_at,
        }),
        RecordKind::Payment => Record::Payment(Payment {
            key,
            customer: party(f, "CustomerRef")?,
            amount,
            txn_date,
            deposit_to: account_ref(f, "DepositToAccountRef")?,
            invoices: linked(f, "Invoice")?,
            lifecycle,
            updated_at,
        }),
        RecordKind::Deposit => Record::Deposit(Deposit {
            key,
            amount,
            txn_date,
            deposit_to: account_ref(f, "DepositToAccountRef")?,
            payments: linked(f, "Payment")?,
            lifecycle,
            updated_at,
        }),
    };
    Ok(Incoming::Upsert(record))
}

fn party(f: Fields<'_>, name: &'static str) -> FieldResult<Party> {
    let obj = f.opt_obj(name)?.ok_or_else(|| f.error(name, "missing"))?;
    let prefix = format!("{name}.");
    let r = Fields::new(&obj, &prefix);
    let id = r.opt_id("value")?;
    let display = r.opt_str("name")?.map(str::to_owned).or_else(|| id.clone());
    let display = display.ok_or_else(|| r.error("value", "missing"))?;
    Ok(Party { id, name: display })
}

fn account_ref(f: Fields<'_>, name: &'static str) -> FieldResult<Option<AccountRef>> {
    let Some(obj) = f.opt_obj(name)? else {
        return Ok(None);
    };
    let prefix = format!("{name}.");
    let r = Fields::new(&obj, &prefix);
    Ok(Some(AccountRef { id: r.id("value")?, name: r.opt_str("name")?.map(str::to_owned) }))
}

/// Ids of `Line[].LinkedTxn[]` (and deposit lines' `LinkedTxn`) whose `TxnType` is `txn_type`.
fn linked(f: Fields<'_>, txn_type: &str) -> FieldResult<Vec<RecordId>> {
    let mut ids = Vec::new();
    for (i, line) in f.opt_array("Line")?.iter().enumerate() {
        let Some(links) = line.get("LinkedTxn").and_then(Value::as_array) else {
            continue;
        };
        for link in links {
            if link.get("TxnType").and_then(Value::as_str) != Some(txn_type) {
                continue;
            }
            let id = link
                .get("TxnId")
                .and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string())));
            let id = id.ok_or_else(|| f.error(&format!("Line[{i}].LinkedTxn.TxnId"), "missing"))?;
            let id = RecordId::new(id).map_err(|e| f.error(&format!("Line[{i}].LinkedTxn.TxnId"), e.to_string()))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}
