//! The records invoiceflow watches: invoices, bills, payments and bank deposits.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{HolderId, HolderKind, RecordKey};
use crate::money::Money;

/// A party on a record: the customer of an invoice or payment, the vendor of a bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// QuickBooks id (`CustomerRef.value`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name (`CustomerRef.name`).
    pub name: String,
}

/// QuickBooks `EmailStatus`; unknown spellings are kept, not refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// `NotSet`.
    #[default]
    NotSet,
    /// `NeedToSend`.
    NeedToSend,
    /// `EmailSent`.
    EmailSent,
    /// A value QuickBooks may add later, kept as received.
    Other(String),
}

impl EmailStatus {
    /// Reads QuickBooks' spellings: `NotSet`/`NOT_SET`, `NeedToSend`/`NEED_TO_SEND`,
    /// `EmailSent`/`EMAIL_SENT`; anything else is kept as [`EmailStatus::Other`].
    pub fn parse(text: &str) -> Self {
        let folded: String = text.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
        match folded.as_str() {
            "notset" => Self::NotSet,
            "needtosend" => Self::NeedToSend,
            "emailsent" => Self::EmailSent,
            _ => Self::Other(text.to_owned()),
        }
    }

    /// QuickBooks' spelling (`EmailSent`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::NotSet => "NotSet",
            Self::NeedToSend => "NeedToSend",
            Self::EmailSent => "EmailSent",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for EmailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// QuickBooks `DeliveryInfo`: the invoice was delivered (by email or otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `DeliveryType` (`Email`, …), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `DeliveryTime`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// Whether a record is alive, voided or deleted in QuickBooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// An ordinary record.
    #[default]
    Active,
    /// Voided (QuickBooks keeps it, zeroed, with a note starting "Voided").
    Voided,
    /// Deleted in QuickBooks.
    Deleted,
}

/// The CRM objects an invoice's own fields link it to (`deal_id`, `contact_id`, `company_id`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HolderFields {
    /// `deal_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal: Option<HolderId>,
    /// `contact_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<HolderId>,
    /// `company_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<HolderId>,
}

impl HolderFields {
    /// The field for one kind of holder.
    pub fn get(&self, kind: HolderKind) -> Option<&HolderId> {
        match kind {
            HolderKind::Deal => self.deal.as_ref(),
            HolderKind::Contact => self.contact.as_ref(),
            HolderKind::Company => self.company.as_ref(),
        }
    }

    /// Sets the field for one kind of holder.
    pub fn set(&mut self, kind: HolderKind, id: Option<HolderId>) {
        match kind {
            HolderKind::Deal => self.deal = id,
            HolderKind::Contact => self.contact = id,
            HolderKind::Company => self.company = id,
        }
    }
}

/// A receivable: a QuickBooks `Invoice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Its identity.
    pub key: RecordKey,
    /// `DocNumber` (may be absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// `CustomerRef`.
    pub customer: Party,
    /// `BillEmail.Address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_email: Option<String>,
    /// `BillEmailCc.Address`, split on commas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// `BillEmailBcc.Address`, split on commas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    /// `TotalAmt` with `CurrencyRef`.
    pub amount: Money,
    /// `Balance` (0 = fully paid), same currency.
    pub balance: Money,
    /// `TxnDate`.
    pub txn_date: NaiveDate,
    /// `DueDate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    /// `EmailStatus`.
    #[serde(default)]
    pub email_status: EmailStatus,
    /// `DeliveryInfo`, present once QuickBooks delivered the invoice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Active, voided or deleted.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// `MetaData.CreateTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// `MetaData.LastUpdatedTime`: orders updates and picks a deal's invoice.
    pub updated_at: DateTime<Utc>,
    /// CRM objects named by the record itself.
    #[serde(default)]
    pub holders: HolderFields,
}

impl Invoice {
    /// The deal property "invoice recipient": `BillEmail.Address`, else the customer's name.
    pub fn recipient(&self) -> &str {
        self.bill_email.as_deref().unwrap_or(&self.customer.name)
    }
}

/// A payable: a QuickBooks `Bill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    /// Its identity.
    pub key: RecordKey,
    /// `DocNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// `VendorRef`.
    pub vendor: Party,
    /// `TotalAmt`.
    pub amount: Money,
    /// `Balance` (0 = paid).
    pub balance: Money,
    /// `TxnDate`.
    pub txn_date: NaiveDate,
    /// `DueDate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    /// Active or deleted.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// `MetaData.LastUpdatedTime`.
    pub updated_at: DateTime<Utc>,
}

/// An account a payment or deposit lands in (`DepositToAccountRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRef {
    /// `value`.
    pub id: String,
    /// `name`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A payment received: a QuickBooks `Payment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its identity.
    pub key: RecordKey,
    /// `CustomerRef`.
    pub customer: Party,
    /// `TotalAmt`.
    pub amount: Money,
    /// `TxnDate`.
    pub txn_date: NaiveDate,
    /// `DepositToAccountRef`; absent ⇒ Undeposited Funds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_to: Option<AccountRef>,
    /// Ids of the invoices it pays (`Line[].LinkedTxn` of type Invoice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoices: Vec<crate::ids::RecordId>,
    /// Active or deleted.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// `MetaData.LastUpdatedTime`.
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// True when the payment sits in Undeposited Funds by its own fields (no deposit account, or
    /// the account named "Undeposited Funds"). A bank deposit linking it moves it out.
    pub fn lands_in_undeposited_funds(&self) -> bool {
        self.deposit_to
            .as_ref()
            .is_none_or(|a| a.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("Undeposited Funds")))
    }
}

/// A bank deposit: a QuickBooks `Deposit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// Its identity.
    pub key: RecordKey,
    /// `TotalAmt`.
    pub amount: Money,
    /// `TxnDate`.
    pub txn_date: NaiveDate,
    /// `DepositToAccountRef`: the bank account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_to: Option<AccountRef>,
    /// Ids of the payments it deposits (`Line[].LinkedTxn` of type Payment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<crate::ids::RecordId>,
    /// Active or deleted.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// `MetaData.LastUpdatedTime`.
    pub updated_at: DateTime<Utc>,
}

/// Any watched record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// An invoice.
    Invoice(Invoice),
    /// A bill.
    Bill(Bill),
    /// A payment.
    Payment(Payment),
    /// A deposit.
    Deposit(Deposit),
}

impl Record {
    /// Its identity.
    pub fn key(&self) -> &RecordKey {
        match self {
            Self::Invoice(r) => &r.key,
            Self::Bill(r) => &r.key,
            Self::Payment(r) => &r.key,
            Self::Deposit(r) => &r.key,
        }
    }

    /// When QuickBooks last changed it.
    pub fn updated_at(&self) -> DateTime<Utc> {
        match self {
            Self::Invoice(r) => r.updated_at,
            Self::Bill(r) => r.updated_at,
            Self::Payment(r) => r.updated_at,
            Self::Deposit(r) => r.updated_at,
        }
    }

    /// Marks it deleted in QuickBooks at `at` (a CDC `"status":"Deleted"` or a webhook Delete).
    pub fn mark_deleted(&mut self, at: DateTime<Utc>) {
        let (lifecycle, updated_at) = match self {
            Self::Invoice(r) => (&mut r.lifecycle, &mut r.updated_at),
            Self::Bill(r) => (&mut r.lifecycle, &mut r.updated_at),
            Self::Payment(r) => (&mut r.lifecycle, &mut r.updated_at),
            Self::Deposit(r) => (&mut r.lifecycle, &mut r.updated_at),
        };
        *lifecycle = Lifecycle::Deleted;
        *updated_at = at;
    }
}
