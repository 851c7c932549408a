//! Realistic entities in QuickBooks' own shape, modelled on `samples/qbo-invoice-239.json`:
//! money as JSON numbers written exactly as given (`"150.00"` stays `150.00`), dates as
//! `YYYY-MM-DD`, references as `{value, name}`. Parameter structs with documented defaults, so a
//! test names only what it cares about:
//!
//! ```ignore
//! let id = fake.put(REALM, Kind::Invoice, InvoiceSpec { amount: "90.00", balance: "0", ..Default::default() }.json());
//! ```
//!
//! `Id`, `SyncToken` and `MetaData` are the fake's business (`put` sets them); give `id` to
//! choose the id.

use std::str::FromStr as _;

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

/// A money amount as QuickBooks writes it: a JSON number, exact.
fn money(amount: &str) -> Value {
    Value::Number(amount.parse().unwrap_or_else(|_| panic!("test data: {amount:?} is not an amount")))
}

fn sum<'a>(amounts: impl Iterator<Item = &'a str>) -> Decimal {
    amounts.map(|a| Decimal::from_str(a).unwrap_or_else(|_| panic!("test data: {a:?} is not an amount"))).sum()
}

fn currency(code: &str) -> Value {
    let name = match code {
        "USD" => "United States Dollar",
        "EUR" => "Euro",
        "CAD" => "Canadian Dollar",
        "GBP" => "British Pound Sterling",
        other => other,
    };
    json!({"value": code, "name": name})
}

/// Adds `Id` when chosen, then the rest.
fn object(id: Option<&str>, fields: Value) -> Value {
    let mut map = Map::new();
    if let Some(id) = id {
        map.insert("Id".into(), json!(id));
    }
    if let Value::Object(fields) = fields {
        map.extend(fields);
    }
    Value::Object(map)
}

/// A receivable. Defaults: sample 239's customer and amount (150.00 USD, unpaid, `NotSet`),
/// dated 2026-11-01, due 2026-12-01, billed to `birds@intuit.com`; the id is assigned by `put`.
#[derive(Clone, Debug)]
pub struct InvoiceSpec<'a> {
    /// `Id`; `None` lets `put` assign one.
    pub id: Option<&'a str>,
    /// `DocNumber` (may be absent in QuickBooks).
    pub number: Option<&'a str>,
    /// `CustomerRef.name`.
    pub customer: &'a str,
    /// `CustomerRef.value`.
    pub customer_id: &'a str,
    /// `BillEmail.Address`.
    pub email: Option<&'a str>,
    /// `TotalAmt`, a decimal.
    pub amount: &'a str,
    /// `Balance`, a decimal (0 = paid).
    pub balance: &'a str,
    /// `CurrencyRef.value`.
    pub currency: &'a str,
    /// `TxnDate`.
    pub txn_date: &'a str,
    /// `DueDate`.
    pub due_date: &'a str,
    /// `EmailStatus`: `NotSet`, `NeedToSend` or `EmailSent` (which adds `DeliveryInfo`).
    pub email_status: &'a str,
}

impl Default for InvoiceSpec<'_> {
    fn default() -> Self {
        InvoiceSpec {
            id: None,
            number: Some("1070"),
            customer: "Amy's Bird Sanctuary",
            customer_id: "1",
            email: Some("birds@intuit.com"),
            amount: "150.00",
            balance: "150.00",
            currency: "USD",
            txn_date: "2026-11-01",
            due_date: "2026-12-01",
            email_status: "NotSet",
        }
    }
}

impl InvoiceSpec<'_> {
    /// The invoice as QuickBooks answers it (without `SyncToken` and `MetaData`).
    pub fn json(&self) -> Value {
        let mut invoice = object(
            self.id,
            json!({
                "domain": "QBO",
                "sparse": false,
                "TxnDate": self.txn_date,
                "DueDate": self.due_date,
                "CurrencyRef": currency(self.currency),
                "CustomerRef": {"value": self.customer_id, "name": self.customer},
                "TotalAmt": money(self.amount),
                "Balance": money(self.balance),
                "Deposit": 0,
                "ApplyTaxAfterDiscount": false,
                "PrintStatus": "NotSet",
                "EmailStatus": self.email_status,
                "TxnTaxDetail": {"TotalTax": 0},
                "LinkedTxn": [],
                "CustomField": [{"DefinitionId": "1", "Type": "StringType", "Name": "Crew #"}],
                "Line": [
                    {
                        "Id": "1",
                        "LineNum": 1,
                        "Amount": money(self.amount),
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}, "TaxCodeRef": {"value": "NON"}},
                    },
                    {"Amount": money(self.amount), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
                ],
            }),
        );
        if let Some(number) = self.number {
            invoice["DocNumber"] = json!(number);
        }
        if let Some(email) = self.email {
            invoice["BillEmail"] = json!({"Address": email});
        }
        if self.email_status.eq_ignore_ascii_case("EmailSent") || self.email_status == "EMAIL_SENT" {
            invoice["DeliveryInfo"] =
                json!({"DeliveryType": "Email", "DeliveryTime": format!("{}T09:00:00-08:00", self.txn_date)});
        }
        invoice
    }
}

/// A payable. Defaults: 480.00 USD from vendor "Books by Bessie" (id 30), unpaid, dated
/// 2026-11-01, due 2026-12-01; the id is assigned by `put`.
#[derive(Clone, Debug)]
pub struct BillSpec<'a> {
    /// `Id`; `None` lets `put` assign one.
    pub id: Option<&'a str>,
    /// `DocNumber`.
    pub number: Option<&'a str>,
    /// `VendorRef.name`.
    pub vendor: &'a str,
    /// `VendorRef.value`.
    pub vendor_id: &'a str,
    /// `TotalAmt`, a decimal.
    pub amount: &'a str,
    /// `Balance`, a decimal (0 = paid).
    pub balance: &'a str,
    /// `CurrencyRef.value`.
    pub currency: &'a str,
    /// `TxnDate`.
    pub txn_date: &'a str,
    /// `DueDate`.
    pub due_date: &'a str,
}

impl Default for BillSpec<'_> {
    fn default() -> Self {
        BillSpec {
            id: None,
            number: Some("B-5710"),
            vendor: "Books by Bessie",
            vendor_id: "30",
            amount: "480.00",
            balance: "480.00",
            currency: "USD",
            txn_date: "2026-11-01",
            due_date: "2026-12-01",
        }
    }
}

impl BillSpec<'_> {
    /// The bill as QuickBooks answers it (without `SyncToken` and `MetaData`).
    pub fn json(&self) -> Value {
        let mut bill = object(
            self.id,
            json!({
                "domain": "QBO",
                "sparse": false,
                "TxnDate": self.txn_date,
                "DueDate": self.due_date,
                "CurrencyRef": currency(self.currency),
                "VendorRef": {"value": self.vendor_id, "name": self.vendor},
                "APAccountRef": {"value": "33", "name": "Accounts Payable (A/P)"},
                "TotalAmt": money(self.amount),
                "Balance": money(self.balance),
                "LinkedTxn": [],
                "Line": [{
                    "Id": "1",
                    "LineNum": 1,
                    "Amount": money(self.amount),
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {
                        "AccountRef": {"value": "7", "name": "Advertising"},
                        "BillableStatus": "NotBillable",
                        "TaxCodeRef": {"value": "NON"},
                    },
                }],
            }),
        );
        if let Some(number) = self.number {
            bill["DocNumber"] = json!(number);
        }
        bill
    }
}

/// A payment received. Defaults: 150.00 USD from sample 239's customer on 2026-11-20, applied
/// to nothing (all unapplied), in Undeposited Funds; the id is assigned by `put`.
#[derive(Clone, Debug)]
pub struct PaymentSpec<'a> {
    /// `Id`; `None` lets `put` assign one.
    pub id: Option<&'a str>,
    /// `CustomerRef.name`.
    pub customer: &'a str,
    /// `CustomerRef.value`.
    pub customer_id: &'a str,
    /// `TotalAmt`, a decimal; what the lines do not apply is `UnappliedAmt`.
    pub amount: &'a str,
    /// `CurrencyRef.value`.
    pub currency: &'a str,
    /// `TxnDate`.
    pub txn_date: &'a str,
    /// The invoices it pays, `(invoice id, amount applied)`: one `Line` with a `LinkedTxn` each.
    pub invoices: &'a [(&'a str, &'a str)],
    /// `DepositToAccountRef.value`; `None` (absent) means Undeposited Funds.
    pub deposit_to: Option<&'a str>,
}

impl Default for PaymentSpec<'_> {
    fn default() -> Self {
        PaymentSpec {
            id: None,
            customer: "Amy's Bird Sanctuary",
            customer_id: "1",
            amount: "150.00",
            currency: "USD",
            txn_date: "2026-11-20",
            invoices: &[],
            deposit_to: None,
        }
    }
}

impl PaymentSpec<'_> {
    /// The payment as QuickBooks answers it (without `SyncToken` and `MetaData`).
    pub fn json(&self) -> Value {
        let applied = sum(self.invoices.iter().map(|(_, a)| *a));
        let unapplied = sum(std::iter::once(self.amount)) - applied;
        let lines: Vec<Value> = self
            .invoices
            .iter()
            .map(|(invoice, amount)| {
                json!({"Amount": money(amount), "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]})
            })
            .collect();
        let mut payment = object(
            self.id,
            json!({
                "domain": "QBO",
                "sparse": false,
                "TxnDate": self.txn_date,
                "CurrencyRef": currency(self.currency),
                "CustomerRef": {"value": self.customer_id, "name": self.customer},
                "TotalAmt": money(self.amount),
                "UnappliedAmt": money(&unapplied.to_string()),
                "ProcessPayment": false,
                "Line": lines,
            }),
        );
        if let Some(account) = self.deposit_to {
            payment["DepositToAccountRef"] = json!({"value": account});
        }
        payment
    }
}

/// A bank deposit. Defaults: into Checking (account 35) on 2026-11-21, in USD, of no payment;
/// `TotalAmt` is the sum of the lines; the id is assigned by `put`.
#[derive(Clone, Debug)]
pub struct DepositSpec<'a> {
    /// `Id`; `None` lets `put` assign one.
    pub id: Option<&'a str>,
    /// `DepositToAccountRef.value`.
    pub deposit_to: &'a str,
    /// `CurrencyRef.value`.
    pub currency: &'a str,
    /// `TxnDate`.
    pub txn_date: &'a str,
    /// The payments it moves out of Undeposited Funds, `(payment id, amount)`: one `Line` with a
    /// `LinkedTxn` each.
    pub payments: &'a [(&'a str, &'a str)],
}

impl Default for DepositSpec<'_> {
    fn default() -> Self {
        DepositSpec { id: None, deposit_to: "35", currency: "USD", txn_date: "2026-11-21", payments: &[] }
    }
}

impl DepositSpec<'_> {
    /// The deposit as QuickBooks answers it (without `SyncToken` and `MetaData`).
    pub fn json(&self) -> Value {
        let total = sum(self.payments.iter().map(|(_, a)| *a));
        let lines: Vec<Value> = self
            .payments
            .iter()
            .enumerate()
            .map(|(n, (payment, amount))| {
                json!({
                    "Id": (n + 1).to_string(),
                    "LineNum": n + 1,
                    "Amount": money(amount),
                    "LinkedTxn": [{"TxnId": payment, "TxnType": "Payment", "TxnLineId": "0"}],
                })
            })
            .collect();
        let account = match self.deposit_to {
            "35" => json!({"value": "35", "name": "Checking"}),
            other => json!({"value": other}),
        };
        object(
            self.id,
            json!({
                "domain": "QBO",
                "sparse": false,
                "TxnDate": self.txn_date,
                "CurrencyRef": currency(self.currency),
                "DepositToAccountRef": account,
                "TotalAmt": money(&total.to_string()),
                "Line": lines,
            }),
        )
    }
}
