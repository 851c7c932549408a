//! Parser tests: canonical records, QuickBooks entities and documents, and what bad input says.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::*;
use crate::ids::HolderId;
use crate::record::{
    AccountRef, Bill, Delivery, Deposit, EmailStatus, HolderFields, Invoice, Lifecycle, Party, Payment,
};
use crate::status::{InvoiceStatus, PaymentStatus, invoice_status, payment_status};
use crate::test_support::{currency, date, instant};

/// The real QuickBooks invoice from Intuit's public samples (DOMAIN.md §1).
const QBO_INVOICE_239: &str = include_str!("../../testdata/qbo-invoice-239.json");

const RECEIVED_AT: &str = "2026-11-25T08:00:00Z";

/// Home currencies: EUR for the account `paris`, USD for every other.
fn home_currency(account: &AccountName) -> Currency {
    currency(if account.as_str() == "paris" { "EUR" } else { "USD" })
}

/// Parses `value` as received by the account `account` at [`RECEIVED_AT`].
fn parse_as(account: &str, value: Value) -> Vec<Item> {
    let account = AccountName::new(account).unwrap();
    let ctx = ParseContext { account: &account, home_currency: &home_currency, received_at: instant(RECEIVED_AT) };
    parse_value(value, &ctx)
}

/// Parses `value` for the account `default`.
fn parse(value: Value) -> Vec<Item> {
    parse_as("default", value)
}

fn one(items: Vec<Item>) -> Item {
    assert_eq!(items.len(), 1, "expected one item, got {items:#?}");
    items.into_iter().next().unwrap()
}

fn record(items: Vec<Item>) -> Record {
    match one(items) {
        Item::Record(Incoming::Upsert(r)) => r,
        other => panic!("expected a record, got {other:#?}"),
    }
}

fn invoice(items: Vec<Item>) -> Invoice {
    match record(items) {
        Record::Invoice(i) => i,
        other => panic!("expected an invoice, got {other:#?}"),
    }
}

fn bill(items: Vec<Item>) -> Bill {
    match record(items) {
        Record::Bill(b) => b,
        other => panic!("expected a bill, got {other:#?}"),
    }
}

fn payment(items: Vec<Item>) -> Payment {
    match record(items) {
        Record::Payment(p) => p,
        other => panic!("expected a payment, got {other:#?}"),
    }
}

fn deposit(items: Vec<Item>) -> Deposit {
    match record(items) {
        Record::Deposit(d) => d,
        other => panic!("expected a deposit, got {other:#?}"),
    }
}

fn rejection(items: Vec<Item>) -> Rejection {
    match one(items) {
        Item::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:#?}"),
    }
}

/// Asserts a single rejection of `field` whose reason contains every one of `words`.
fn assert_rejected(items: Vec<Item>, field: &str, words: &[&str]) -> Rejection {
    let r = rejection(items);
    assert_eq!(r.field, field, "{r}");
    for word in words {
        assert!(r.reason.contains(word), "reason should mention {word:?}: {r}");
    }
    r
}

fn id(text: &str) -> RecordId {
    RecordId::new(text).unwrap()
}

fn key(kind: RecordKind, account: &str, text: &str) -> RecordKey {
    RecordKey::new(kind, AccountName::new(account).unwrap(), id(text))
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn sample() -> Value {
    serde_json::from_str(QBO_INVOICE_239).unwrap()
}

/// A minimal canonical invoice, to extend or spoil.
fn canonical(extra: Value) -> Value {
    let mut base = json!({"id": "inv-1", "amount": "80.00", "txn_date": "2026-11-01", "customer": "Acme"});
    base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    base
}

/// A minimal QuickBooks invoice, to extend or spoil.
fn qbo_invoice(id: &str, extra: Value) -> Value {
    let mut base = json!({
        "Id": id,
        "SyncToken": "0",
        "TxnDate": "2026-11-01",
        "DueDate": "2026-12-01",
        "TotalAmt": 120.0,
        "Balance": 120.0,
        "CustomerRef": {"value": "1", "name": "Amy's Bird Sanctuary"},
        "EmailStatus": "NotSet",
        "MetaData": {"CreateTime": "2026-11-01T10:00:00-08:00", "LastUpdatedTime": "2026-11-02T10:00:00-08:00"}
    });
    base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    base
}

// ---------------------------------------------------------------------------------------------
// Canonical records

#[test]
fn canonical_invoice_lands_every_field() {
    let i = invoice(parse(json!({
        "type": "invoice",
        "id": "inv-2026-001",
        "account": "paris",
        "number": "F-2026-001",
        "customer": "Société Générale",
        "customer_id": "42",
        "recipient": "compta@societe.example",
        "cc": "a@societe.example, b@societe.example",
        "bcc": ["c@societe.example"],
        "currency": "EUR",
        "amount": "1250.10",
        "balance": "250.05",
        "txn_date": "2026-11-01",
        "due_date": "2026-12-01",
        "email_status": "EmailSent",
        "delivered_at": "2026-11-02T09:00:00+01:00",
        "delivery_type": "Email",
        "created_at": "2026-11-01T08:00:00Z",
        "updated_at": "2026-11-02T10:00:00+01:00",
        "deal_id": "D-1",
        "contact_id": "C-1",
        "company_id": "CO-1"
    })));
    assert_eq!(i.key, key(RecordKind::Invoice, "paris", "inv-2026-001"));
    assert_eq!(i.number.as_deref(), Some("F-2026-001"));
    assert_eq!(i.customer, Party { id: Some("42".to_owned()), name: "Société Générale".to_owned() });
    assert_eq!(i.bill_email.as_deref(), Some("compta@societe.example"));
    assert_eq!(i.recipient(), "compta@societe.example");
    assert_eq!(i.cc, ["a@societe.example", "b@societe.example"]);
    assert_eq!(i.bcc, ["c@societe.example"]);
    assert_eq!(i.amount.amount.to_string(), "1250.10");
    assert_eq!(i.amount.currency, currency("EUR"));
    assert_eq!(i.balance.amount.to_string(), "250.05");
    assert_eq!(i.balance.currency, currency("EUR"));
    assert_eq!(i.txn_date, date("2026-11-01"));
    assert_eq!(i.due_date, Some(date("2026-12-01")));
    assert_eq!(i.email_status, EmailStatus::EmailSent);
    assert_eq!(
        i.delivery,
        Some(Delivery { kind: Some("Email".to_owned()), at: Some(instant("2026-11-02T08:00:00Z")) })
    );
    assert_eq!(i.lifecycle, Lifecycle::Active);
    assert_eq!(i.created_at, Some(instant("2026-11-01T08:00:00Z")));
    assert_eq!(i.updated_at, instant("2026-11-02T09:00:00Z"));
    assert_eq!(i.holders.deal, Some(HolderId::new("D-1").unwrap()));
    assert_eq!(i.holders.contact, Some(HolderId::new("C-1").unwrap()));
    assert_eq!(i.holders.company, Some(HolderId::new("CO-1").unwrap()));
}

#[test]
fn canonical_money_is_exact() {
    let i = invoice(parse(canonical(json!({"amount": "0.30", "balance": "0.1"}))));
    assert_eq!(i.amount.amount, dec("0.1") + dec("0.2"));
    assert_eq!(i.amount.amount_string(), "0.30");
    assert_eq!(i.balance.amount_string(), "0.10");
}

#[test]
fn canonical_defaults_fill_type_balance_currency_and_updated_at() {
    let i = invoice(parse(json!({"id": "7", "amount": "80", "txn_date": "2026-11-01", "customer": "Acme"})));
    assert_eq!(i.key, key(RecordKind::Invoice, "default", "7"), "type defaults to invoice, account to the context's");
    assert_eq!(i.balance, i.amount, "balance defaults to amount");
    assert_eq!(i.amount.currency, currency("USD"), "currency defaults to the home currency");
    assert_eq!(i.updated_at, instant(RECEIVED_AT), "updated_at defaults to received_at");
    assert_eq!(i.email_status, EmailStatus::NotSet);
    assert_eq!(i.lifecycle, Lifecycle::Active);
    assert_eq!((i.due_date, &i.delivery, &i.bill_email, &i.number, i.created_at), (None, &None, &None, &None, None));
    assert_eq!(i.recipient(), "Acme");
    assert_eq!(i.holders, HolderFields::default());
    assert!(i.cc.is_empty() && i.bcc.is_empty());
}

#[test]
fn canonical_default_currency_is_the_named_accounts() {
    let i = invoice(parse(canonical(json!({"account": "paris"}))));
    assert_eq!(i.key.account.as_str(), "paris");
    assert_eq!(i.amount.currency, currency("EUR"));

    let i = invoice(parse_as("paris", canonical(json!({}))));
    assert_eq!(i.key.account.as_str(), "paris");
    assert_eq!(i.amount.currency, currency("EUR"));
}

#[test]
fn canonical_bill() {
    let b = bill(parse(json!({
        "type": "bill",
        "id": "b-1",
        "number": "HP-11",
        "vendor": "Hall Properties",
        "vendor_id": "41",
        "amount": "300.00",
        "balance": "0",
        "txn_date": "2026-11-01",
        "due_date": "2026-11-30",
        "updated_at": "2026-11-03T00:00:00Z"
    })));
    assert_eq!(b.key, key(RecordKind::Bill, "default", "b-1"));
    assert_eq!(b.number.as_deref(), Some("HP-11"));
    assert_eq!(b.vendor, Party { id: Some("41".to_owned()), name: "Hall Properties".to_owned() });
    assert_eq!(b.amount.amount_string(), "300.00");
    assert!(b.balance.is_zero());
    assert_eq!(b.due_date, Some(date("2026-11-30")));
    assert_eq!(b.updated_at, instant("2026-11-03T00:00:00Z"));
}

#[test]
fn canonical_payment_without_deposit_account_is_in_undeposited_funds() {
    let p = payment(parse(json!({
        "type": "payment",
        "id": "p-1",
        "customer": "Acme",
        "amount": "80.00",
        "txn_date": "2026-11-10",
        "invoices": ["7", "8"]
    })));
    assert_eq!(p.key, key(RecordKind::Payment, "default", "p-1"));
    assert_eq!(p.customer.name, "Acme");
    assert_eq!(p.invoices, [id("7"), id("8")]);
    assert_eq!(p.deposit_to, None);
    assert!(p.lands_in_undeposited_funds());

    let p = payment(parse(json!({
        "type": "payment",
        "id": "p-2",
        "customer": "Acme",
        "amount": "80.00",
        "txn_date": "2026-11-10",
        "deposit_account": "Checking"
    })));
    assert_eq!(p.deposit_to, Some(AccountRef { id: "Checking".to_owned(), name: Some("Checking".to_owned()) }));
    assert!(!p.lands_in_undeposited_funds());
}

#[test]
fn canonical_deposit() {
    let d = deposit(parse(json!({
        "type": "deposit",
        "id": "d-1",
        "amount": "160.00",
        "txn_date": "2026-11-12",
        "deposit_account": "Checking",
        "payments": "p-1, p-2"
    })));
    assert_eq!(d.key, key(RecordKind::Deposit, "default", "d-1"));
    assert_eq!(d.payments, [id("p-1"), id("p-2")]);
    assert_eq!(d.deposit_to.unwrap().name.as_deref(), Some("Checking"));
    assert_eq!(d.amount.amount_string(), "160.00");
}

#[test]
fn canonical_deleted_is_a_delete() {
    let item = one(parse(json!({"id": "7", "deleted": true, "updated_at": "2026-11-03T00:00:00Z"})));
    assert_eq!(
        item,
        Item::Record(Incoming::Delete {
            key: key(RecordKind::Invoice, "default", "7"),
            at: instant("2026-11-03T00:00:00Z")
        })
    );

    let item = one(parse(json!({"type": "bill", "id": "b-1", "deleted": true})));
    assert_eq!(
        item,
        Item::Record(Incoming::Delete { key: key(RecordKind::Bill, "default", "b-1"), at: instant(RECEIVED_AT) }),
        "a delete without updated_at happens when received"
    );
}

#[test]
fn canonical_deleted_false_is_an_ordinary_record() {
    let i = invoice(parse(canonical(json!({"deleted": false}))));
    assert_eq!(i.lifecycle, Lifecycle::Active);
}

#[test]
fn canonical_voided_is_voided() {
    let i = invoice(parse(canonical(json!({"voided": true, "balance": "0"}))));
    assert_eq!(i.lifecycle, Lifecycle::Voided);
    assert_eq!(invoice_status(&i, date("2026-11-25")), InvoiceStatus::Voided);
}

#[test]
fn canonical_ids_and_numbers_may_be_json_integers() {
    let i = invoice(parse(canonical(json!({"id": 1070, "number": 1070}))));
    assert_eq!(i.key.id, id("1070"));
    assert_eq!(i.number.as_deref(), Some("1070"));
}

#[test]
fn canonical_accepts_json_number_amounts_exactly() {
    let i = invoice(parse(canonical(json!({"amount": 1234567.89}))));
    assert_eq!(i.amount.amount.to_string(), "1234567.89");
}

// ---------------------------------------------------------------------------------------------
// QuickBooks entities

fn check_sample_239(i: &Invoice) {
    assert_eq!(i.key, key(RecordKind::Invoice, "default", "239"));
    assert_eq!(i.number.as_deref(), Some("1070"));
    assert_eq!(i.amount.amount.to_string(), "150.0", "TotalAmt keeps its digits");
    assert_eq!(i.amount.amount, Decimal::from(150));
    assert_eq!(i.amount.amount_string(), "150.00");
    assert_eq!(i.balance.amount.to_string(), "150.0");
    assert_eq!(i.amount.currency, currency("USD"), "no CurrencyRef: the home currency");
    assert_eq!(i.balance.currency, currency("USD"));
    assert_eq!(i.txn_date, date("2015-07-24"));
    assert_eq!(i.due_date, Some(date("2015-08-23")));
    assert_eq!(i.customer, Party { id: Some("1".to_owned()), name: "Amy's Bird Sanctuary".to_owned() });
    assert_eq!(i.bill_email, None);
    assert_eq!(i.recipient(), "Amy's Bird Sanctuary");
    assert_eq!(i.email_status, EmailStatus::NotSet);
    assert_eq!(i.delivery, None);
    assert_eq!(i.lifecycle, Lifecycle::Active);
    assert_eq!(i.created_at, Some(instant("2015-07-24T17:35:08Z")));
    assert_eq!(i.updated_at, instant("2015-07-24T17:35:08Z"));
    assert_eq!(i.holders, HolderFields::default());
}

#[test]
fn quickbooks_sample_invoice_239_bare() {
    let i = invoice(parse(sample()));
    check_sample_239(&i);
    assert_eq!(invoice_status(&i, date("2015-08-23")), InvoiceStatus::AwaitingSend, "on its due date");
    assert_eq!(invoice_status(&i, date("2015-08-24")), InvoiceStatus::Overdue, "the day after");
}

#[test]
fn quickbooks_sample_invoice_239_wrapped_with_time() {
    let i = invoice(parse(json!({"Invoice": sample(), "time": "2015-07-24T10:48:27.239-07:00"})));
    check_sample_239(&i);
}

#[test]
fn quickbooks_wrapped_rejection_names_the_entity() {
    let r = rejection(parse(
        json!({"Invoice": qbo_invoice("9", json!({"TxnDate": null})), "time": "2026-11-25T00:00:00Z"}),
    ));
    assert_eq!(r.entity.as_deref(), Some("Invoice"));
    assert_eq!(r.field, "TxnDate");
}

#[test]
fn quickbooks_query_response_yields_invoices_and_ignores_customers() {
    let items = parse(json!({
        "QueryResponse": {
            "Invoice": [qbo_invoice("130", json!({})), qbo_invoice("131", json!({}))],
            "Customer": [{"Id": "1", "DisplayName": "Amy's Bird Sanctuary"}],
            "startPosition": 1,
            "maxResults": 3
        },
        "time": "2026-11-25T00:00:00.000-08:00"
    }));
    assert_eq!(items.len(), 3, "{items:#?}");
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Record(Incoming::Upsert(Record::Invoice(i))) => Some(i.key.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["130", "131"]);
    assert_eq!(items.iter().filter(|i| **i == Item::Ignored("Customer".to_owned())).count(), 1);
}

#[test]
fn quickbooks_query_response_keeps_the_good_invoice_beside_a_bad_one() {
    let items = parse(json!({
        "QueryResponse": {
            "Invoice": [qbo_invoice("130", json!({})), qbo_invoice("131", json!({"TotalAmt": "abc"}))],
            "startPosition": 1,
            "maxResults": 2
        }
    }));
    assert_eq!(items.len(), 2, "{items:#?}");
    assert!(matches!(&items[0], Item::Record(Incoming::Upsert(r)) if r.key().id == id("130")), "{items:#?}");
    let Item::Rejected(r) = &items[1] else { panic!("expected a rejection: {items:#?}") };
    assert_eq!(r.entity.as_deref(), Some("QueryResponse.Invoice[1]"));
    assert_eq!(r.field, "TotalAmt");
    assert!(r.reason.contains("abc"), "{r}");
    assert_eq!(r.to_string(), format!("QueryResponse.Invoice[1]: field `TotalAmt`: {}", r.reason));
}

#[test]
fn quickbooks_cdc_response_yields_updates_and_deletes() {
    let items = parse(json!({
        "CDCResponse": [{
            "QueryResponse": [{
                "Invoice": [
                    qbo_invoice("4", json!({"Balance": 0})),
                    {"domain": "QBO", "status": "Deleted", "Id": "5", "MetaData": {"LastUpdatedTime": "2026-11-20T10:00:00-08:00"}}
                ],
                "startPosition": 1,
                "maxResults": 2
            }]
        }],
        "time": "2026-11-25T00:00:00.000-08:00"
    }));
    assert_eq!(items.len(), 2, "{items:#?}");
    match &items[0] {
        Item::Record(Incoming::Upsert(Record::Invoice(i))) => {
            assert_eq!(i.key.id, id("4"));
            assert!(i.balance.is_zero());
        }
        other => panic!("expected the updated invoice, got {other:#?}"),
    }
    assert_eq!(
        items[1],
        Item::Record(Incoming::Delete {
            key: key(RecordKind::Invoice, "default", "5"),
            at: instant("2026-11-20T18:00:00Z")
        })
    );
}

#[test]
fn quickbooks_cdc_rejection_names_its_position() {
    let items =
        parse(json!({"CDCResponse": [{"QueryResponse": [{"Invoice": [qbo_invoice("4", json!({"Balance": -1}))]}]}]}));
    let r = assert_rejected(items, "Balance", &["negative"]);
    assert_eq!(r.entity.as_deref(), Some("CDCResponse[0].QueryResponse.Invoice[0]"));
}

#[test]
fn quickbooks_bill_with_vendor_ref() {
    let value = json!({
        "Id": "25",
        "SyncToken": "0",
        "VendorRef": {"value": "41", "name": "Hall Properties"},
        "DocNumber": "HP-11",
        "TxnDate": "2026-11-01",
        "DueDate": "2026-11-30",
        "TotalAmt": 1000.0,
        "Balance": 250.5,
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "MetaData": {"LastUpdatedTime": "2026-11-02T10:00:00-08:00"}
    });
    let wrapped = bill(parse(json!({"Bill": value.clone()})));
    assert_eq!(wrapped.key, key(RecordKind::Bill, "default", "25"));
    assert_eq!(wrapped.vendor, Party { id: Some("41".to_owned()), name: "Hall Properties".to_owned() });
    assert_eq!(wrapped.number.as_deref(), Some("HP-11"));
    assert_eq!(wrapped.amount.amount_string(), "1000.00");
    assert_eq!(wrapped.balance.amount.to_string(), "250.5");
    assert_eq!(wrapped.due_date, Some(date("2026-11-30")));
    assert_eq!(wrapped.updated_at, instant("2026-11-02T18:00:00Z"));
    assert_eq!(bill(parse(value)), wrapped, "a bare entity with VendorRef is a bill");
}

#[test]
fn quickbooks_payment_without_deposit_account_is_in_undeposited_funds() {
    let p = payment(parse(json!({"Payment": {
        "Id": "120",
        "CustomerRef": {"value": "1", "name": "Amy's Bird Sanctuary"},
        "TotalAmt": 200.0,
        "UnappliedAmt": 0,
        "TxnDate": "2026-11-10",
        "Line": [
            {"Amount": 150.0, "LinkedTxn": [{"TxnId": "239", "TxnType": "Invoice"}]},
            {"Amount": 50.0, "LinkedTxn": [{"TxnId": "240", "TxnType": "Invoice"}, {"TxnId": "239", "TxnType": "Invoice"}]},
            {"Amount": 0.0, "LinkedTxn": [{"TxnId": "77", "TxnType": "CreditMemo"}]}
        ],
        "MetaData": {"LastUpdatedTime": "2026-11-10T10:00:00-08:00"}
    }})));
    assert_eq!(p.key, key(RecordKind::Payment, "default", "120"));
    assert_eq!(p.customer.name, "Amy's Bird Sanctuary");
    assert_eq!(p.amount.amount_string(), "200.00");
    assert_eq!(p.txn_date, date("2026-11-10"));
    assert_eq!(p.invoices, [id("239"), id("240")], "invoices only, each once, in order");
    assert_eq!(p.deposit_to, None);
    assert!(p.lands_in_undeposited_funds());
    assert_eq!(payment_status(&p, false), PaymentStatus::Undeposited);
}

#[test]
fn quickbooks_payment_into_a_bank_account_is_deposited() {
    let p = payment(parse(json!({"Payment": {
        "Id": "121",
        "CustomerRef": {"value": "1"},
        "TotalAmt": 20,
        "TxnDate": "2026-11-10",
        "DepositToAccountRef": {"value": "35", "name": "Checking"}
    }})));
    assert_eq!(p.customer, Party { id: Some("1".to_owned()), name: "1".to_owned() }, "no name: the id stands in");
    assert_eq!(p.deposit_to, Some(AccountRef { id: "35".to_owned(), name: Some("Checking".to_owned()) }));
    assert!(!p.lands_in_undeposited_funds());
    assert_eq!(p.updated_at, instant(RECEIVED_AT), "no MetaData: received_at");
}

#[test]
fn quickbooks_deposit_links_payments() {
    let d = deposit(parse(json!({"Deposit": {
        "Id": "150",
        "TxnDate": "2026-11-12",
        "TotalAmt": 210.0,
        "DepositToAccountRef": {"value": "35", "name": "Checking"},
        "Line": [
            {"Amount": 200.0, "LinkedTxn": [{"TxnId": "120", "TxnType": "Payment", "TxnLineId": "0"}]},
            {"Amount": 10.0, "DetailType": "DepositLineDetail", "DepositLineDetail": {"AccountRef": {"value": "87"}}}
        ],
        "MetaData": {"LastUpdatedTime": "2026-11-12T10:00:00-08:00"}
    }})));
    assert_eq!(d.key, key(RecordKind::Deposit, "default", "150"));
    assert_eq!(d.payments, [id("120")]);
    assert_eq!(d.deposit_to, Some(AccountRef { id: "35".to_owned(), name: Some("Checking".to_owned()) }));
    assert_eq!(d.amount.amount_string(), "210.00");
}

#[test]
fn quickbooks_email_status_spellings() {
    let cases = [
        ("EMAIL_SENT", EmailStatus::EmailSent),
        ("EmailSent", EmailStatus::EmailSent),
        ("NEED_TO_SEND", EmailStatus::NeedToSend),
        ("NeedToSend", EmailStatus::NeedToSend),
        ("NOT_SET", EmailStatus::NotSet),
        ("NotSet", EmailStatus::NotSet),
        ("Queued", EmailStatus::Other("Queued".to_owned())),
    ];
    for (spelling, expected) in cases {
        let i = invoice(parse(qbo_invoice("1", json!({"EmailStatus": spelling}))));
        assert_eq!(i.email_status, expected, "{spelling}");
    }
    assert_eq!(EmailStatus::Other("Queued".to_owned()).as_str(), "Queued", "unknown values are kept as received");
}

#[test]
fn quickbooks_delivery_info_marks_the_invoice_sent() {
    let i = invoice(parse(qbo_invoice(
        "1",
        json!({"DeliveryInfo": {"DeliveryType": "Email", "DeliveryTime": "2026-11-02T10:00:00-08:00"}}),
    )));
    assert_eq!(
        i.delivery,
        Some(Delivery { kind: Some("Email".to_owned()), at: Some(instant("2026-11-02T18:00:00Z")) })
    );
    assert_eq!(invoice_status(&i, date("2026-11-25")), InvoiceStatus::Sent);
}

#[test]
fn quickbooks_bill_email_and_copies() {
    let i = invoice(parse(qbo_invoice(
        "1",
        json!({
            "BillEmail": {"Address": "birds@example.com"},
            "BillEmailCc": {"Address": "a@example.com, b@example.com"},
            "BillEmailBcc": {"Address": "c@example.com"}
        }),
    )));
    assert_eq!(i.recipient(), "birds@example.com");
    assert_eq!(i.cc, ["a@example.com", "b@example.com"]);
    assert_eq!(i.bcc, ["c@example.com"]);
}

#[test]
fn quickbooks_private_note_voided_is_voided() {
    let i = invoice(parse(qbo_invoice("1", json!({"PrivateNote": "Voided", "TotalAmt": 0, "Balance": 0}))));
    assert_eq!(i.lifecycle, Lifecycle::Voided);
    assert_eq!(invoice_status(&i, date("2026-11-25")), InvoiceStatus::Voided);

    let i = invoice(parse(qbo_invoice("2", json!({"PrivateNote": "Voided - customer cancelled"}))));
    assert_eq!(i.lifecycle, Lifecycle::Voided);

    let i = invoice(parse(qbo_invoice("3", json!({"PrivateNote": "Not voided: just a note"}))));
    assert_eq!(i.lifecycle, Lifecycle::Active);
}

#[test]
fn quickbooks_currency_ref_sets_the_currency() {
    let i = invoice(parse(qbo_invoice("1", json!({"CurrencyRef": {"value": "EUR", "name": "Euro"}}))));
    assert_eq!(i.amount.currency, currency("EUR"));
    assert_eq!(i.balance.currency, currency("EUR"));
}

#[test]
fn quickbooks_money_keeps_every_digit() {
    let i = invoice(parse(qbo_invoice("1", json!({"TotalAmt": 1234567.89, "Balance": 0.1}))));
    assert_eq!(i.amount.amount.to_string(), "1234567.89");
    assert_eq!(i.balance.amount, dec("0.1"));
}

#[test]
fn quickbooks_entities_come_from_the_context_account() {
    let i = invoice(parse_as("paris", sample()));
    assert_eq!(i.key, key(RecordKind::Invoice, "paris", "239"));
    assert_eq!(i.amount.currency, currency("EUR"), "no CurrencyRef: paris's home currency");
}

#[test]
fn quickbooks_unwatched_wrapped_entity_is_ignored() {
    assert_eq!(
        one(parse(json!({"Customer": {"Id": "1"}, "time": "2026-11-25T00:00:00Z"}))),
        Item::Ignored("Customer".to_owned())
    );
}

#[test]
fn an_array_parses_each_element_and_names_positions() {
    let items = parse(json!([canonical(json!({"id": "a"})), canonical(json!({"id": "b", "amount": "x"}))]));
    assert_eq!(items.len(), 2);
    assert!(matches!(&items[0], Item::Record(Incoming::Upsert(r)) if r.key().id == id("a")));
    let Item::Rejected(r) = &items[1] else { panic!("{items:#?}") };
    assert_eq!((r.entity.as_deref(), r.field.as_str()), (Some("[1]"), "amount"));
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn rejects_a_record_without_id() {
    let r = assert_rejected(
        parse(json!({"amount": "80.00", "txn_date": "2026-11-01", "customer": "Acme"})),
        "id",
        &["missing"],
    );
    assert_eq!(r.entity, None);
    assert_rejected(parse(canonical(json!({"id": ""}))), "id", &["missing"]);
    assert_rejected(parse(canonical(json!({"id": null}))), "id", &["missing"]);
    assert_rejected(parse(json!({"Invoice": {"TotalAmt": 10}})), "Id", &["missing"]);
}

#[test]
fn rejects_comma_decimal_amount() {
    let r = assert_rejected(parse(canonical(json!({"amount": "12,5"}))), "amount", &["12,5", "dot"]);
    assert_eq!(r.entity.as_deref(), Some("record inv-1"), "a canonical rejection names the record");
}

#[test]
fn rejects_words_as_amount() {
    assert_rejected(parse(canonical(json!({"amount": "abc"}))), "amount", &["abc", "not a decimal number"]);
}

#[test]
fn rejects_amounts_of_the_wrong_json_type() {
    assert_rejected(parse(canonical(json!({"amount": true}))), "amount", &["decimal number", "boolean"]);
}

#[test]
fn rejects_negative_amounts() {
    assert_rejected(parse(canonical(json!({"amount": "-5.00"}))), "amount", &["-5.00", "negative"]);
    assert_rejected(parse(canonical(json!({"balance": "-0.01"}))), "balance", &["negative"]);
    assert_rejected(parse(qbo_invoice("1", json!({"TotalAmt": -5}))), "TotalAmt", &["negative"]);
}

#[test]
fn accepts_negative_zero_as_zero() {
    let i = invoice(parse(canonical(json!({"balance": "-0.00"}))));
    assert!(i.balance.is_zero());
    assert_eq!(i.balance.amount_string(), "0.00");
}

#[test]
fn rejects_unknown_currency() {
    assert_rejected(parse(canonical(json!({"currency": "XYZ"}))), "currency", &["XYZ", "ISO 4217"]);
    assert_rejected(
        parse(qbo_invoice("1", json!({"CurrencyRef": {"value": "XYZ"}}))),
        "CurrencyRef.value",
        &["XYZ", "ISO 4217"],
    );
}

#[test]
fn rejects_impossible_calendar_date() {
    assert_rejected(
        parse(canonical(json!({"due_date": "2026-02-30"}))),
        "due_date",
        &["2026-02-30", "not a valid calendar date"],
    );
}

#[test]
fn rejects_day_first_date() {
    assert_rejected(parse(canonical(json!({"due_date": "25/11/2026"}))), "due_date", &["25/11/2026", "YYYY-MM-DD"]);
    assert_rejected(parse(qbo_invoice("1", json!({"DueDate": "2026-11-1"}))), "DueDate", &["YYYY-MM-DD"]);
}

#[test]
fn rejects_a_time_without_offset() {
    assert_rejected(
        parse(qbo_invoice("1", json!({"MetaData": {"LastUpdatedTime": "2026-11-02T10:00:00"}}))),
        "MetaData.LastUpdatedTime",
        &["RFC 3339"],
    );
    assert_rejected(parse(canonical(json!({"updated_at": "yesterday"}))), "updated_at", &["yesterday"]);
}

#[test]
fn rejects_unknown_canonical_field_and_suggests_the_near_miss() {
    let mut value = canonical(json!({"amout": "80.00"}));
    value.as_object_mut().unwrap().remove("amount");
    assert_rejected(parse(value), "amout", &["unknown field", "`amount`"]);
}

#[test]
fn rejects_fields_of_another_record_type() {
    assert_rejected(
        parse(canonical(json!({"type": "deposit", "customer": "Acme"}))),
        "customer",
        &["unknown field", "deposit"],
    );
}

#[test]
fn rejects_an_unknown_record_type() {
    assert_rejected(
        parse(canonical(json!({"type": "credit_memo"}))),
        "type",
        &["credit_memo", "invoice, bill, payment, deposit"],
    );
}

#[test]
fn rejects_a_recipient_that_is_not_an_email() {
    assert_rejected(parse(canonical(json!({"recipient": "Amy Bird"}))), "recipient", &["not an email address"]);
}

#[test]
fn rejects_a_missing_customer() {
    let mut value = canonical(json!({}));
    value.as_object_mut().unwrap().remove("customer");
    assert_rejected(parse(value), "customer", &["missing"]);
    assert_rejected(parse(qbo_invoice("1", json!({"CustomerRef": null}))), "CustomerRef", &["missing"]);
}

#[test]
fn rejects_a_quickbooks_fault() {
    let r = assert_rejected(
        parse(json!({
            "Fault": {
                "Error": [{
                    "Message": "Object Not Found",
                    "Detail": "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.",
                    "code": "610"
                }],
                "type": "ValidationFault"
            },
            "time": "2015-08-12T11:12:05.125-07:00"
        })),
        "Fault",
        &["610", "Object Not Found", "ValidationFault"],
    );
    assert_eq!(r.entity, None);
}

#[test]
fn rejects_a_json_number_at_top_level() {
    assert_rejected(parse(json!(42)), "(record)", &["expected a JSON object", "a number"]);
    assert_rejected(parse(json!("an invoice")), "(record)", &["a string"]);
    assert_rejected(parse(Value::Null), "(record)", &["null"]);
}

#[test]
fn rejects_a_bare_entity_of_unknown_kind() {
    assert_rejected(parse(json!({"Id": "1", "DisplayName": "Amy"})), "(record)", &["wrap it"]);
}

#[test]
fn rejects_a_malformed_cdc_response() {
    assert_rejected(parse(json!({"CDCResponse": {"QueryResponse": []}})), "CDCResponse", &["array"]);
    let r = assert_rejected(parse(json!({"CDCResponse": [{"time": "x"}]})), "QueryResponse", &["missing"]);
    assert_eq!(r.entity.as_deref(), Some("CDCResponse[0]"));
}

#[test]
fn rejects_a_bill_email_address_that_is_not_a_string() {
    assert_rejected(parse(qbo_invoice("1", json!({"BillEmail": {"Address": 42}}))), "BillEmail.Address", &["string"]);
}

#[test]
fn rejects_a_linked_transaction_without_id() {
    let items = parse(json!({"Payment": {
        "Id": "120",
        "CustomerRef": {"value": "1"},
        "TotalAmt": 20,
        "TxnDate": "2026-11-10",
        "Line": [{"Amount": 20, "LinkedTxn": [{"TxnType": "Invoice"}]}]
    }}));
    assert_rejected(items, "Line[0].LinkedTxn.TxnId", &["missing"]);
}

#[test]
fn rejections_name_records_whose_ids_are_json_numbers() {
    let r = assert_rejected(parse(canonical(json!({"id": 42, "amount": "abc"}))), "amount", &["abc"]);
    assert_eq!(r.entity.as_deref(), Some("record 42"));
    let r = assert_rejected(parse(qbo_invoice("1", json!({"Id": 7, "DueDate": "x"}))), "DueDate", &["YYYY-MM-DD"]);
    assert_eq!(r.entity.as_deref(), Some("Invoice 7"));
}
