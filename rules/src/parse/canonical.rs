//! Our canonical record format: one flat JSON object per record, snake_case, money as decimal
//! strings. Documented field by field in the README ("Canonical record format").

use serde_json::{Map, Value};

use super::fields::{FieldError, FieldResult, Fields};
use super::{Incoming, Item, ParseContext, Rejection, id_hint, record_key};
use crate::ids::{AccountName, HolderId, HolderKind, RecordId, RecordKind};
use crate::money::Money;
use crate::record::{
    AccountRef, Bill, Delivery, Deposit, EmailStatus, HolderFields, Invoice, Lifecycle, Party, Payment, Record,
};

const COMMON: &[&str] = &["type", "id", "account", "currency", "amount", "txn_date", "updated_at", "deleted", "voided"];
const INVOICE: &[&str] = &[
    "number",
    "customer",
    "customer_id",
    "recipient",
    "cc",
    "bcc",
    "balance",
    "due_date",
    "email_status",
    "delivered_at",
    "delivery_type",
    "created_at",
    "deal_id",
    "contact_id",
    "company_id",
    "status",
    "previous_status",
];
const BILL: &[&str] = &["number", "vendor", "vendor_id", "balance", "due_date", "status", "previous_status"];
const PAYMENT: &[&str] = &["customer", "customer_id", "deposit_account", "invoices", "status"];
const DEPOSIT: &[&str] = &["deposit_account", "payments"];

/// Parses one canonical record.
pub(super) fn parse(obj: &Map<String, Value>, ctx: &ParseContext<'_>, at: Option<String>) -> Item {
    let f = Fields::new(obj, "");
    let entity = |id: Option<&str>| at.clone().or_else(|| id.map(|id| format!("record {id}")));
    let id_hint = id_hint(obj.get("id"));
    match parse_record(f, ctx) {
        Ok(incoming) => Item::Record(incoming),
        Err(FieldError { field, reason }) => {
            Item::Rejected(Rejection { entity: entity(id_hint.as_deref()), field, reason })
        }
    }
}

fn parse_record(f: Fields<'_>, ctx: &ParseContext<'_>) -> FieldResult<Incoming> {
    let kind = match f.opt_str("type")? {
        None => RecordKind::Invoice,
        Some(t) => RecordKind::parse(t)
            .ok_or_else(|| f.error("type", format!("{t:?} is not one of invoice, bill, payment, deposit")))?,
    };
    let specific = match kind {
        RecordKind::Invoice => INVOICE,
        RecordKind::Bill => BILL,
        RecordKind::Payment => PAYMENT,
        RecordKind::Deposit => DEPOSIT,
    };
    if let Some(unknown) = f.keys().find(|k| !COMMON.contains(&k.as_str()) && !specific.contains(&k.as_str())) {
        let known = COMMON.iter().chain(specific).copied();
        let hint =
            crate::suggest::closest(unknown, known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        return Err(f.error(unknown, format!("unknown field for {kind} records{hint}")));
    }
    let account = match f.opt_str("account")? {
        Some(a) => AccountName::new(a).map_err(|e| f.error("account", e.to_string()))?,
        None => ctx.account.clone(),
    };
    let key = record_key(kind, &account, &f.id("id")?, "id")?;
    let updated_at = f.opt_instant("updated_at")?.unwrap_or(ctx.received_at);
    if f.opt_bool("deleted")? == Some(true) {
        return Ok(Incoming::Delete { key, at: updated_at });
    }
    let currency = f.opt_currency("currency")?.unwrap_or_else(|| (ctx.home_currency)(&account));
    let money = |name: &str| f.amount(name).map(|a| Money::new(a, currency));
    let amount = money("amount")?;
    let txn_date = f.date("txn_date")?;
    let lifecycle = if f.opt_bool("voided")? == Some(true) { Lifecycle::Voided } else { Lifecycle::Active };
    let party =
        |name: &str, id: &str| -> FieldResult<Party> { Ok(Party { id: f.opt_id(id)?, name: f.str(name)?.to_owned() }) };
    let record = match kind {
        RecordKind::Invoice => {
            let recipient = f.opt_str("recipient")?;
            if let Some(r) = recipient
                && (!r.contains('@') || r.contains(char::is_whitespace))
            {
                return Err(f.error("recipient", format!("{r:?} is not an email address")));
            }
            let mut holders = HolderFields::default();
            for holder in HolderKind::ALL {
                let id = f
                    .opt_id(holder.field())?
                    .map(|id| HolderId::new(id).map_err(|e| f.error(holder.field(), e.to_string())))
                    .transpose()?;
                holders.set(holder, id);
            }
            let delivered_at = f.opt_instant("delivered_at")?;
            let delivery_type = f.opt_str("delivery_type")?;
            Record::Invoice(Invoice {
                key,
                number: f.opt_id("number")?,
                customer: party("customer", "customer_id")?,
                bill_email: recipient.map(str::to_owned),
                cc: f.string_list("cc")?,
                bcc: f.string_list("bcc")?,
                balance: if f.has("balance") { money("balance")? } else { amount },
                amount,
                txn_date,
                due_date: f.opt_date("due_date")?,
                email_status: f.opt_str("email_status")?.map(EmailStatus::parse).unwrap_or_default(),
                delivery: (delivered_at.is_some() || delivery_type.is_some())
                    .then(|| Delivery { kind: delivery_type.map(str::to_owned), at: delivered_at }),
                lifecycle,
                created_at: f.opt_instant("created_at")?,
                updated_at,
                holders,
            })
        }
        RecordKind::Bill => Record::Bill(Bill {
            key,
            number: f.opt_id("number")?,
            vendor: party("vendor", "vendor_id")?,
            balance: if f.has("balance") { money("balance")? } else { amount },
            amount,
            txn_date,
            due_date: f.opt_date("due_date")?,
            lifecycle,
            updated_at,
        }),
        RecordKind::Payment => Record::Payment(Payment {
            key,
            customer: party("customer", "customer_id")?,
            amount,
            txn_date,
            deposit_to: deposit_account(f)?,
            invoices: ids(f, "invoices")?,
            lifecycle,
            updated_at,
        }),
        RecordKind::Deposit => Record::Deposit(Deposit {
            key,
            amount,
            txn_date,
            deposit_to: deposit_account(f)?,
            payments: ids(f, "payments")?,
            lifecycle,
            updated_at,
        }),
    };
    Ok(Incoming::Upsert(record))
}

fn deposit_account(f: Fields<'_>) -> FieldResult<Option<AccountRef>> {
    Ok(f.opt_str("deposit_account")?.map(|name| AccountRef { id: name.to_owned(), name: Some(name.to_owned()) }))
}

fn ids(f: Fields<'_>, name: &str) -> FieldResult<Vec<RecordId>> {
    f.string_list(name)?.into_iter().map(|id| RecordId::new(id).map_err(|e| f.error(name, e.to_string()))).collect()
}
