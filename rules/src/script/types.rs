//! The typed values rules see: records (read-only views, cheap to clone), money, dates, the
//! change, and the properties each one offers (which `check` uses to catch typos).

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use rhai::{Dynamic, ImmutableString};

use crate::format::{self, Locale};
use crate::money::Money;
use crate::record::{Bill, Deposit, Invoice, Payment};
use crate::status::{BillStatus, InvoiceStatus, PaymentStatus};

/// The record a rule evaluates, with what was derived for "today".
#[derive(Debug, Clone)]
pub enum Subject {
    /// An invoice and its status.
    Invoice(Arc<Invoice>, InvoiceStatus),
    /// A bill and its status.
    Bill(Arc<Bill>, BillStatus),
    /// A payment and its status.
    Payment(Arc<Payment>, PaymentStatus),
    /// A deposit.
    Deposit(Arc<Deposit>),
}

impl Subject {
    /// Its key.
    pub fn key(&self) -> &crate::ids::RecordKey {
        match self {
            Self::Invoice(r, _) => &r.key,
            Self::Bill(r, _) => &r.key,
            Self::Payment(r, _) => &r.key,
            Self::Deposit(r) => &r.key,
        }
    }

    /// The record kind.
    pub fn kind(&self) -> crate::ids::RecordKind {
        self.key().kind
    }

    /// The same record on another day: the time-dependent status derived again, the record shared.
    pub fn on_day(&self, today: NaiveDate) -> Subject {
        match self {
            Self::Invoice(r, _) => Self::Invoice(r.clone(), crate::status::invoice_status(r, today)),
            Self::Bill(r, _) => Self::Bill(r.clone(), crate::status::bill_status(r, today)),
            other => other.clone(),
        }
    }

    /// Its status, as rules compare it (`"overdue"`, `"undeposited"`, `"recorded"` for a deposit).
    pub fn status(&self) -> &'static str {
        match self {
            Self::Invoice(_, s) => s.as_str(),
            Self::Bill(_, s) => s.as_str(),
            Self::Payment(_, s) => s.as_str(),
            Self::Deposit(_) => "recorded",
        }
    }
}

/// What rhai sees of an invoice.
#[derive(Debug, Clone)]
pub struct InvoiceView {
    pub(crate) record: Arc<Invoice>,
    pub(crate) status: InvoiceStatus,
    pub(crate) today: NaiveDate,
}

/// What rhai sees of a bill.
#[derive(Debug, Clone)]
pub struct BillView {
    pub(crate) record: Arc<Bill>,
    pub(crate) status: BillStatus,
    pub(crate) today: NaiveDate,
}

/// What rhai sees of a payment.
#[derive(Debug, Clone)]
pub struct PaymentView {
    pub(crate) record: Arc<Payment>,
    pub(crate) status: PaymentStatus,
}

/// What rhai sees of a deposit.
#[derive(Debug, Clone)]
pub struct DepositView {
    pub(crate) record: Arc<Deposit>,
}

/// A deal and its five invoice properties (`deal` in scripts), projected from its invoices.
#[derive(Debug, Clone)]
pub struct DealView {
    /// The deal's CRM id.
    pub id: String,
    /// Its properties; `None` when no invoice of it is eligible (all in another currency, …).
    pub properties: Option<crate::deal::DealProperties>,
}

/// What rhai sees of the change that triggered the rule.
#[derive(Debug, Clone)]
pub struct ChangeView {
    /// The property.
    pub property: ImmutableString,
    /// Its value before (unit when absent).
    pub from: Dynamic,
    /// Its value after (unit when absent).
    pub to: Dynamic,
}

/// A moment in the company's time zone (`now`).
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// The instant.
    pub at: DateTime<Utc>,
    /// The company's zone.
    pub zone: Tz,
}

/// The properties of each type rules see, for `check` (typos) and docs.
pub const INVOICE_PROPERTIES: &[&str] = &[
    "id",
    "account",
    "number",
    "customer",
    "recipient",
    "email",
    "cc",
    "amount",
    "balance",
    "paid",
    "currency",
    "txn_date",
    "due_date",
    "status",
    "days_overdue",
    "days_until_due",
    "email_status",
    "deal_id",
    "contact_id",
    "company_id",
    "updated_at",
];
/// See [`INVOICE_PROPERTIES`].
pub const BILL_PROPERTIES: &[&str] = &[
    "id",
    "account",
    "number",
    "vendor",
    "amount",
    "balance",
    "paid",
    "currency",
    "txn_date",
    "due_date",
    "status",
    "days_overdue",
    "days_until_due",
    "updated_at",
];
/// See [`INVOICE_PROPERTIES`].
pub const PAYMENT_PROPERTIES: &[&str] =
    &["id", "account", "customer", "amount", "currency", "txn_date", "status", "invoices", "updated_at"];
/// See [`INVOICE_PROPERTIES`].
pub const DEPOSIT_PROPERTIES: &[&str] = &["id", "account", "amount", "currency", "txn_date", "payments", "updated_at"];
/// See [`INVOICE_PROPERTIES`].
pub const DEAL_PROPERTIES: &[&str] = &["id", "amount", "recipient", "number", "status", "due_date"];
/// See [`INVOICE_PROPERTIES`].
pub const CHANGE_PROPERTIES: &[&str] = &["property", "from", "to"];
/// See [`INVOICE_PROPERTIES`].
pub const MONEY_PROPERTIES: &[&str] = &["currency", "cents", "is_zero"];
/// See [`INVOICE_PROPERTIES`].
pub const DATE_PROPERTIES: &[&str] = &["year", "month", "day", "weekday"];
/// See [`INVOICE_PROPERTIES`].
pub const MOMENT_PROPERTIES: &[&str] = &["date", "hour", "minute", "weekday"];

/// A changed value as rules compare it: due dates as dates, amounts as money in the record's
/// currency, everything else as text; unit when absent.
pub(crate) fn change_value(property: crate::change::Property, text: Option<&str>, subject: &Subject) -> Dynamic {
    use crate::change::Property as P;
    let Some(text) = text else { return Dynamic::UNIT };
    let currency = match subject {
        Subject::Invoice(r, _) => r.amount.currency,
        Subject::Bill(r, _) => r.amount.currency,
        Subject::Payment(r, _) => r.amount.currency,
        Subject::Deposit(r) => r.amount.currency,
    };
    match property {
        P::DueDate => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => Dynamic::from(d),
            Err(_) => Dynamic::from(ImmutableString::from(text)),
        },
        P::Amount | P::Balance => match crate::money::parse_decimal(text) {
            Ok(amount) => Dynamic::from(Money::new(amount, currency)),
            Err(_) => Dynamic::from(ImmutableString::from(text)),
        },
        _ => Dynamic::from(ImmutableString::from(text)),
    }
}

fn opt_str(s: Option<&str>) -> Dynamic {
    s.map_or(Dynamic::UNIT, |s| Dynamic::from(ImmutableString::from(s)))
}

fn opt_date(d: Option<NaiveDate>) -> Dynamic {
    d.map_or(Dynamic::UNIT, Dynamic::from)
}

fn days_between(from: NaiveDate, to: Option<NaiveDate>) -> Dynamic {
    to.map_or(Dynamic::UNIT, |to| Dynamic::from((to - from).num_days()))
}

fn ids(ids: &[crate::ids::RecordId]) -> rhai::Array {
    ids.iter().map(|i| Dynamic::from(ImmutableString::from(i.as_str()))).collect()
}

fn paid(amount: &Money, balance: &Money) -> Money {
    Money::new(amount.amount - balance.amount, amount.currency)
}

/// Weekday as rules compare it: `"Mon"` … `"Sun"`.
pub fn weekday_name(d: NaiveDate) -> &'static str {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][d.weekday().num_days_from_monday() as usize]
}

/// Registers every type, getter and operator with `engine`.
pub(crate) fn register(engine: &mut rhai::Engine) {
    register_records(engine);
    register_money(engine);
    register_dates(engine);
}

/// The getters invoices and bills share: both have a number, an amount and a balance, a due date
/// and a status for "today".
macro_rules! register_payable {
    ($engine:ident, $view:ty, $name:literal, $kind:literal) => {
        $engine
            .register_type_with_name::<$view>($name)
            .register_get("id", |v: &mut $view| ImmutableString::from(v.record.key.id.as_str()))
            .register_get("account", |v: &mut $view| ImmutableString::from(v.record.key.account.as_str()))
            .register_get("number", |v: &mut $view| opt_str(v.record.number.as_deref()))
            .register_get("amount", |v: &mut $view| v.record.amount)
            .register_get("balance", |v: &mut $view| v.record.balance)
            .register_get("paid", |v: &mut $view| paid(&v.record.amount, &v.record.balance))
            .register_get("currency", |v: &mut $view| ImmutableString::from(v.record.amount.currency.code()))
            .register_get("txn_date", |v: &mut $view| v.record.txn_date)
            .register_get("due_date", |v: &mut $view| opt_date(v.record.due_date))
            .register_get("status", |v: &mut $view| ImmutableString::from(v.status.as_str()))
            .register_get("days_overdue", |v: &mut $view| {
                days_between(v.record.due_date.unwrap_or(v.today), Some(v.today))
            })
            .register_get("days_until_due", |v: &mut $view| days_between(v.today, v.record.due_date))
            .register_get("updated_at", |v: &mut $view| v.record.updated_at.to_rfc3339())
            .register_fn("to_string", |v: &mut $view| format!(concat!($kind, " {}"), v.record.key));
    };
}

fn register_records(engine: &mut rhai::Engine) {
    register_payable!(engine, InvoiceView, "Invoice", "invoice");
    engine
        .register_get("customer", |v: &mut InvoiceView| ImmutableString::from(v.record.customer.name.as_str()))
        .register_get("recipient", |v: &mut InvoiceView| ImmutableString::from(v.record.recipient()))
        .register_get("email", |v: &mut InvoiceView| opt_str(v.record.bill_email.as_deref()))
        .register_get("cc", |v: &mut InvoiceView| -> rhai::Array {
            v.record.cc.iter().map(|c| Dynamic::from(ImmutableString::from(c.as_str()))).collect()
        })
        .register_get("email_status", |v: &mut InvoiceView| ImmutableString::from(v.record.email_status.as_str()))
        .register_get("deal_id", |v: &mut InvoiceView| opt_str(v.record.holders.deal.as_ref().map(|h| h.as_str())))
        .register_get("contact_id", |v: &mut InvoiceView| {
            opt_str(v.record.holders.contact.as_ref().map(|h| h.as_str()))
        })
        .register_get("company_id", |v: &mut InvoiceView| {
            opt_str(v.record.holders.company.as_ref().map(|h| h.as_str()))
        });
    register_payable!(engine, BillView, "Bill", "bill");
    engine.register_get("vendor", |v: &mut BillView| ImmutableString::from(v.record.vendor.name.as_str()));
    engine
        .register_type_with_name::<PaymentView>("Payment")
        .register_get("id", |v: &mut PaymentView| ImmutableString::from(v.record.key.id.as_str()))
        .register_get("account", |v: &mut PaymentView| ImmutableString::from(v.record.key.account.as_str()))
        .register_get("customer", |v: &mut PaymentView| ImmutableString::from(v.record.customer.name.as_str()))
        .register_get("amount", |v: &mut PaymentView| v.record.amount)
        .register_get("currency", |v: &mut PaymentView| ImmutableString::from(v.record.amount.currency.code()))
        .register_get("txn_date", |v: &mut PaymentView| v.record.txn_date)
        .register_get("status", |v: &mut PaymentView| ImmutableString::from(v.status.as_str()))
        .register_get("invoices", |v: &mut PaymentView| ids(&v.record.invoices))
        .register_get("updated_at", |v: &mut PaymentView| v.record.updated_at.to_rfc3339())
        .register_fn("to_string", |v: &mut PaymentView| format!("payment {}", v.record.key));
    engine
        .register_type_with_name::<DepositView>("Deposit")
        .register_get("id", |v: &mut DepositView| ImmutableString::from(v.record.key.id.as_str()))
        .register_get("account", |v: &mut DepositView| ImmutableString::from(v.record.key.account.as_str()))
        .register_get("amount", |v: &mut DepositView| v.record.amount)
        .register_get("currency", |v: &mut DepositView| ImmutableString::from(v.record.amount.currency.code()))
        .register_get("txn_date", |v: &mut DepositView| v.record.txn_date)
        .register_get("payments", |v: &mut DepositView| ids(&v.record.payments))
        .register_get("updated_at", |v: &mut DepositView| v.record.updated_at.to_rfc3339())
        .register_fn("to_string", |v: &mut DepositView| format!("deposit {}", v.record.key));
    engine
        .register_type_with_name::<DealView>("Deal")
        .register_get("id", |d: &mut DealView| ImmutableString::from(d.id.as_str()))
        .register_get("amount", |d: &mut DealView| {
            d.properties.as_ref().map_or(Dynamic::UNIT, |p| Dynamic::from(p.amount))
        })
        .register_get("recipient", |d: &mut DealView| opt_str(d.properties.as_ref().map(|p| p.recipient.as_str())))
        .register_get("number", |d: &mut DealView| opt_str(d.properties.as_ref().and_then(|p| p.number.as_deref())))
        .register_get("status", |d: &mut DealView| opt_str(d.properties.as_ref().map(|p| p.status.as_str())))
        .register_get("due_date", |d: &mut DealView| opt_date(d.properties.as_ref().and_then(|p| p.due_date)))
        .register_fn("to_string", |d: &mut DealView| format!("deal {}", d.id));
    engine
        .register_type_with_name::<ChangeView>("Change")
        .register_get("property", |c: &mut ChangeView| c.property.clone())
        .register_get("from", |c: &mut ChangeView| c.from.clone())
        .register_get("to", |c: &mut ChangeView| c.to.clone());
    engine
        .register_type_with_name::<Moment>("Moment")
        .register_get("date", |m: &mut Moment| m.at.with_timezone(&m.zone).date_naive())
        .register_get("hour", |m: &mut Moment| i64::from(chrono::Timelike::hour(&m.at.with_timezone(&m.zone))))
        .register_get("minute", |m: &mut Moment| i64::from(chrono::Timelike::minute(&m.at.with_timezone(&m.zone))))
        .register_get("weekday", |m: &mut Moment| weekday_name(m.at.with_timezone(&m.zone).date_naive()))
        .register_fn("to_string", |m: &mut Moment| m.at.with_timezone(&m.zone).to_rfc3339());
}

type Fallible<T> = Result<T, Box<rhai::EvalAltResult>>;

fn script_error(message: String) -> Box<rhai::EvalAltResult> {
    message.into()
}

/// A number or text given where money is compared: exact, never through a float's binary value.
fn as_amount(value: &Dynamic) -> Fallible<rust_decimal::Decimal> {
    if let Some(i) = value.clone().try_cast::<i64>() {
        return Ok(rust_decimal::Decimal::from(i));
    }
    if let Some(f) = value.clone().try_cast::<f64>() {
        // The shortest decimal text that reads back as the same float: `1000.1` stays 1000.1.
        return crate::money::parse_decimal(&f.to_string()).map_err(|e| script_error(e.to_string()));
    }
    if let Some(s) = value.clone().try_cast::<ImmutableString>() {
        return crate::money::parse_decimal(s.trim()).map_err(|e| script_error(format!("{s:?} is not an amount: {e}")));
    }
    if let Some(m) = value.clone().try_cast::<Money>() {
        return Ok(m.amount);
    }
    Err(script_error(format!("cannot compare money with {}", value.type_name())))
}

fn same_currency(a: &Money, b: &Money) -> Fallible<()> {
    if a.currency == b.currency {
        Ok(())
    } else {
        Err(script_error(format!("cannot combine {} and {} amounts", a.currency, b.currency)))
    }
}

macro_rules! money_comparisons {
    ($engine:ident: $($op:literal => $cmp:expr),* $(,)?) => {
        $(
            $engine.register_fn($op, |a: Money, b: Money| -> Fallible<bool> {
                same_currency(&a, &b)?;
                Ok($cmp(a.amount.cmp(&b.amount)))
            });
            $engine.register_fn($op, |a: Money, b: i64| $cmp(a.amount.cmp(&rust_decimal::Decimal::from(b))));
            $engine.register_fn($op, |a: Money, b: f64| -> Fallible<bool> {
                Ok($cmp(a.amount.cmp(&as_amount(&Dynamic::from(b))?)))
            });
            $engine.register_fn($op, |a: Money, b: ImmutableString| -> Fallible<bool> {
                Ok($cmp(a.amount.cmp(&as_amount(&Dynamic::from(b))?)))
            });
            $engine.register_fn($op, |a: i64, b: Money| $cmp(rust_decimal::Decimal::from(a).cmp(&b.amount)));
            $engine.register_fn($op, |a: f64, b: Money| -> Fallible<bool> {
                Ok($cmp(as_amount(&Dynamic::from(a))?.cmp(&b.amount)))
            });
            $engine.register_fn($op, |a: ImmutableString, b: Money| -> Fallible<bool> {
                Ok($cmp(as_amount(&Dynamic::from(a))?.cmp(&b.amount)))
            });
        )*
    };
}

fn register_money(engine: &mut rhai::Engine) {
    use std::cmp::Ordering;
    engine
        .register_type_with_name::<Money>("Money")
        .register_get("currency", |m: &mut Money| ImmutableString::from(m.currency.code()))
        .register_get("cents", |m: &mut Money| -> Fallible<i64> {
            let minor = m.amount * rust_decimal::Decimal::from(10_i64.pow(m.currency.minor_digits()));
            rust_decimal::prelude::ToPrimitive::to_i64(&minor.round())
                .ok_or_else(|| script_error("amount too large".into()))
        })
        .register_get("is_zero", |m: &mut Money| m.is_zero())
        .register_fn("to_string", |m: &mut Money| format::money(m, super::host::current_locale()))
        .register_fn("to_debug", |m: &mut Money| format!("{} {}", m.amount_string(), m.currency))
        .register_fn("format", |m: &mut Money, locale: &str| -> Fallible<String> {
            Ok(format::money(m, parse_locale(locale)?))
        })
        .register_fn("plain", |m: &mut Money| m.amount_string())
        .register_fn("+", |a: Money, b: Money| -> Fallible<Money> {
            same_currency(&a, &b)?;
            Ok(Money::new(a.amount + b.amount, a.currency))
        })
        .register_fn("-", |a: Money, b: Money| -> Fallible<Money> {
            same_currency(&a, &b)?;
            Ok(Money::new(a.amount - b.amount, a.currency))
        })
        .register_fn("*", |a: Money, b: i64| Money::new(a.amount * rust_decimal::Decimal::from(b), a.currency))
        .register_fn("*", |a: Money, b: f64| -> Fallible<Money> {
            Ok(Money::new(a.amount * as_amount(&Dynamic::from(b))?, a.currency))
        });
    money_comparisons!(engine:
        "==" => |o: Ordering| o == Ordering::Equal,
        "!=" => |o: Ordering| o != Ordering::Equal,
        "<" => |o: Ordering| o == Ordering::Less,
        "<=" => |o: Ordering| o != Ordering::Greater,
        ">" => |o: Ordering| o == Ordering::Greater,
        ">=" => |o: Ordering| o != Ordering::Less,
    );
}

/// A locale tag from a script.
pub(crate) fn parse_locale(tag: &str) -> Fallible<Locale> {
    Locale::parse(tag)
        .ok_or_else(|| script_error(format!("unknown locale {tag:?}; known: {}", Locale::TAGS.join(", "))))
}

fn as_date(value: &Dynamic) -> Fallible<NaiveDate> {
    if let Some(d) = value.clone().try_cast::<NaiveDate>() {
        return Ok(d);
    }
    if let Some(s) = value.clone().try_cast::<ImmutableString>() {
        return NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| script_error(format!("{s:?} is not a date (YYYY-MM-DD)")));
    }
    Err(script_error(format!("cannot compare a date with {}", value.type_name())))
}

fn add_days(d: NaiveDate, days: i64) -> Fallible<NaiveDate> {
    chrono::Duration::try_days(days)
        .and_then(|delta| d.checked_add_signed(delta))
        .ok_or_else(|| script_error(format!("{d} + {days} days is out of range")))
}

fn register_dates(engine: &mut rhai::Engine) {
    engine
        .register_type_with_name::<NaiveDate>("Date")
        .register_get("year", |d: &mut NaiveDate| i64::from(d.year()))
        .register_get("month", |d: &mut NaiveDate| i64::from(d.month()))
        .register_get("day", |d: &mut NaiveDate| i64::from(d.day()))
        .register_get("weekday", |d: &mut NaiveDate| weekday_name(*d))
        .register_fn("to_string", |d: &mut NaiveDate| d.to_string())
        .register_fn("to_debug", |d: &mut NaiveDate| d.to_string())
        .register_fn("format", |d: &mut NaiveDate, locale: &str| -> Fallible<String> {
            Ok(format::date_long(*d, parse_locale(locale)?))
        })
        .register_fn("long", |d: &mut NaiveDate| format::date_long(*d, super::host::current_locale()))
        .register_fn("short", |d: &mut NaiveDate| format::date_short(*d, super::host::current_locale()))
        .register_fn("date", |s: &str| as_date(&Dynamic::from(ImmutableString::from(s))))
        .register_fn("+", add_days)
        .register_fn("-", |d: NaiveDate, days: i64| add_days(d, -days))
        .register_fn("-", |a: NaiveDate, b: NaiveDate| (a - b).num_days());
    macro_rules! date_comparisons {
        ($($op:literal => $ok:expr, $if_unit:literal),* $(,)?) => {
            $(
                engine.register_fn($op, |a: NaiveDate, b: NaiveDate| $ok(a.cmp(&b)));
                engine.register_fn($op, |a: NaiveDate, b: ImmutableString| compare_date(a, &Dynamic::from(b), $ok, $if_unit));
                engine.register_fn($op, |a: ImmutableString, b: NaiveDate| compare_date(b, &Dynamic::from(a), |o: std::cmp::Ordering| $ok(o.reverse()), $if_unit));
                engine.register_fn($op, |_: NaiveDate, _: ()| $if_unit);
                engine.register_fn($op, |_: (), _: NaiveDate| $if_unit);
            )*
        };
    }
    date_comparisons!(
        "==" => |o: std::cmp::Ordering| o.is_eq(), false,
        "!=" => |o: std::cmp::Ordering| o.is_ne(), true,
        "<" => |o: std::cmp::Ordering| o.is_lt(), false,
        "<=" => |o: std::cmp::Ordering| o.is_le(), false,
        ">" => |o: std::cmp::Ordering| o.is_gt(), false,
        ">=" => |o: std::cmp::Ordering| o.is_ge(), false,
    );
}

/// Compares a date with a date or `"YYYY-MM-DD"`; with unit (no date: a change from nothing, an
/// invoice without due date) the answer is `if_unit`.
fn compare_date(a: NaiveDate, b: &Dynamic, ok: fn(std::cmp::Ordering) -> bool, if_unit: bool) -> Fallible<bool> {
    if b.is_unit() {
        return Ok(if_unit);
    }
    Ok(ok(a.cmp(&as_date(b)?)))
}
