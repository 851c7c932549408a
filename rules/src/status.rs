//! Status derivation: the seed's five invoice phases (plus `voided`), and the bill and payment
//! equivalents, as pure functions of a record and "today" in the company's time zone.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::record::{Bill, Invoice, Lifecycle, Payment};

/// The phase of an invoice (DOMAIN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Not yet sent to the customer.
    AwaitingSend,
    /// Sent (`EmailStatus = EmailSent` or `DeliveryInfo` present).
    Sent,
    /// Some but not all of it paid, not yet overdue.
    PartiallyPaid,
    /// Balance 0.
    Paid,
    /// Balance left after the due date.
    Overdue,
    /// Voided or deleted in QuickBooks: nothing fires for it.
    Voided,
}

/// The phase of a bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    /// Balance left, not yet past due.
    Open,
    /// Balance left after the due date.
    Overdue,
    /// Balance 0.
    Paid,
    /// Voided or deleted in QuickBooks.
    Deleted,
}

/// Where a payment's money is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// In Undeposited Funds, waiting for a bank deposit.
    Undeposited,
    /// In a bank account (deposited directly or by a bank deposit).
    Deposited,
    /// Deleted in QuickBooks.
    Deleted,
}

macro_rules! status_names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),*];

            /// The snake-case name used in storage, JSON and the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),* }
            }

            /// Parses the snake-case name.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|s| s.as_str() == text)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_names!(InvoiceStatus {
    AwaitingSend => "awaiting_send",
    Sent => "sent",
    PartiallyPaid => "partially_paid",
    Paid => "paid",
    Overdue => "overdue",
    Voided => "voided",
});
status_names!(BillStatus { Open => "open", Overdue => "overdue", Paid => "paid", Deleted => "deleted" });
status_names!(PaymentStatus { Undeposited => "undeposited", Deposited => "deposited", Deleted => "deleted" });

/// Derives an invoice's status on `today` (the company's local date). First match wins:
///
/// 0. voided or deleted → `voided`
/// 1. balance ≤ 0 → `paid` (an overpaid invoice is paid too)
/// 2. balance > 0 and due date before today → `overdue`
/// 3. 0 < balance < total → `partially_paid`
/// 4. `EmailStatus = EmailSent` or `DeliveryInfo` present → `sent`
/// 5. otherwise → `awaiting_send`
pub fn invoice_status(invoice: &Invoice, today: NaiveDate) -> InvoiceStatus {
    let balance = invoice.balance.amount;
    if invoice.lifecycle != Lifecycle::Active {
        InvoiceStatus::Voided
    } else if balance.is_sign_negative() || balance.is_zero() {
        InvoiceStatus::Paid
    } else if invoice.due_date.is_some_and(|due| due < today) {
        InvoiceStatus::Overdue
    } else if balance < invoice.amount.amount {
        InvoiceStatus::PartiallyPaid
    } else if invoice.email_status == crate::record::EmailStatus::EmailSent || invoice.delivery.is_some() {
        InvoiceStatus::Sent
    } else {
        InvoiceStatus::AwaitingSend
    }
}

/// Derives a bill's status on `today`: deleted, paid (balance ≤ 0), overdue, else open.
pub fn bill_status(bill: &Bill, today: NaiveDate) -> BillStatus {
    let balance = bill.balance.amount;
    if bill.lifecycle != Lifecycle::Active {
        BillStatus::Deleted
    } else if balance.is_sign_negative() || balance.is_zero() {
        BillStatus::Paid
    } else if bill.due_date.is_some_and(|due| due < today) {
        BillStatus::Overdue
    } else {
        BillStatus::Open
    }
}

/// Derives a payment's status; `linked_by_deposit` says whether a bank deposit includes it.
pub fn payment_status(payment: &Payment, linked_by_deposit: bool) -> PaymentStatus {
    if payment.lifecycle != Lifecycle::Active {
        PaymentStatus::Deleted
    } else if linked_by_deposit || !payment.lands_in_undeposited_funds() {
        PaymentStatus::Deposited
    } else {
        PaymentStatus::Undeposited
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::company::Company;
    use crate::ids::{AccountName, RecordKind};
    use crate::record::{AccountRef, Delivery, EmailStatus, Party};
    use crate::test_support::{currency, date, instant, invoice, key, usd};

    /// The day every row of the invoice table is evaluated on.
    const TODAY: &str = "2026-11-25";

    struct Case {
        label: &'static str,
        invoice: Invoice,
        expected: InvoiceStatus,
    }

    /// A 100.00 invoice with `balance` left, due on `due`, built on [`invoice`].
    fn inv(balance: &str, due: Option<&str>) -> Invoice {
        Invoice { balance: usd(balance), due_date: due.map(date), ..invoice("1") }
    }

    fn sent(mut i: Invoice) -> Invoice {
        i.email_status = EmailStatus::EmailSent;
        i
    }

    fn with_lifecycle(mut i: Invoice, lifecycle: Lifecycle) -> Invoice {
        i.lifecycle = lifecycle;
        i
    }

    fn delivered(mut i: Invoice, email_status: EmailStatus) -> Invoice {
        i.email_status = email_status;
        i.delivery = Some(Delivery { kind: Some("Email".to_owned()), at: Some(instant("2026-11-02T10:00:00Z")) });
        i
    }

    fn with_email_status(mut i: Invoice, email_status: EmailStatus) -> Invoice {
        i.email_status = email_status;
        i
    }

    fn check_table(cases: Vec<Case>, today: NaiveDate) {
        let mut failures = Vec::new();
        for case in &cases {
            let got = invoice_status(&case.invoice, today);
            if got != case.expected {
                failures.push(format!("{}: expected {}, got {got}", case.label, case.expected));
            }
        }
        assert!(failures.is_empty(), "on {today}:\n{}", failures.join("\n"));
    }

    #[test]
    fn invoice_status_follows_the_domain_precedence() {
        use InvoiceStatus::*;
        let past = Some("2026-11-01");
        let yesterday = Some("2026-11-24");
        let today = Some(TODAY);
        let future = Some("2026-12-01");
        let cases = vec![
            // 1. balance 0 → paid, unless voided or deleted
            Case { label: "balance 0 is paid", invoice: inv("0", future), expected: Paid },
            Case { label: "balance 0 is paid even past due", invoice: sent(inv("0.00", past)), expected: Paid },
            Case { label: "balance 0 and never sent is paid", invoice: inv("0", None), expected: Paid },
            Case { label: "negative balance (overpaid) is paid", invoice: inv("-5.00", future), expected: Paid },
            Case {
                label: "negative balance past due is paid, not overdue",
                invoice: inv("-5.00", past),
                expected: Paid,
            },
            // 0. voided or deleted beat everything
            Case {
                label: "balance 0 but voided is voided",
                invoice: with_lifecycle(inv("0", past), Lifecycle::Voided),
                expected: Voided,
            },
            Case {
                label: "voided with a balance past due is voided, not overdue",
                invoice: with_lifecycle(sent(inv("100.00", past)), Lifecycle::Voided),
                expected: Voided,
            },
            Case {
                label: "deleted with a balance is voided",
                invoice: with_lifecycle(inv("100.00", future), Lifecycle::Deleted),
                expected: Voided,
            },
            Case {
                label: "deleted and paid is voided",
                invoice: with_lifecycle(inv("0", future), Lifecycle::Deleted),
                expected: Voided,
            },
            // 2. balance > 0 and due < today → overdue
            Case {
                label: "unpaid, due yesterday, never sent is overdue",
                invoice: inv("100.00", yesterday),
                expected: Overdue,
            },
            Case { label: "overdue beats sent (EmailSent)", invoice: sent(inv("100.00", past)), expected: Overdue },
            Case {
                label: "overdue beats sent (DeliveryInfo)",
                invoice: delivered(inv("100.00", past), EmailStatus::NotSet),
                expected: Overdue,
            },
            Case { label: "overdue beats partially paid", invoice: inv("40.00", past), expected: Overdue },
            Case {
                label: "overdue beats partially paid and sent",
                invoice: sent(inv("0.01", yesterday)),
                expected: Overdue,
            },
            // due == today is not overdue yet
            Case {
                label: "due today, sent, is sent, not overdue",
                invoice: sent(inv("100.00", today)),
                expected: Sent,
            },
            Case {
                label: "due today, unsent, is awaiting send",
                invoice: inv("100.00", today),
                expected: AwaitingSend,
            },
            Case {
                label: "due today, partially paid, is partially paid",
                invoice: inv("40.00", today),
                expected: PartiallyPaid,
            },
            // no due date → never overdue
            Case { label: "no due date, sent, is never overdue", invoice: sent(inv("100.00", None)), expected: Sent },
            Case {
                label: "no due date, unsent, is awaiting send",
                invoice: inv("100.00", None),
                expected: AwaitingSend,
            },
            Case {
                label: "no due date, partially paid, is partially paid",
                invoice: inv("40.00", None),
                expected: PartiallyPaid,
            },
            // 3. 0 < balance < total → partially paid
            Case { label: "partially paid even if not sent", invoice: inv("40.00", future), expected: PartiallyPaid },
            Case { label: "partially paid beats sent", invoice: sent(inv("40.00", future)), expected: PartiallyPaid },
            Case {
                label: "partially paid beats DeliveryInfo",
                invoice: delivered(inv("99.99", future), EmailStatus::EmailSent),
                expected: PartiallyPaid,
            },
            Case { label: "one cent paid is partially paid", invoice: inv("99.99", future), expected: PartiallyPaid },
            Case {
                label: "full balance written with another scale is not partial",
                invoice: inv("100", future),
                expected: AwaitingSend,
            },
            // 4. EmailSent or DeliveryInfo → sent
            Case { label: "EmailSent is sent", invoice: sent(inv("100.00", future)), expected: Sent },
            Case {
                label: "DeliveryInfo without EmailSent (NotSet) is sent",
                invoice: delivered(inv("100.00", future), EmailStatus::NotSet),
                expected: Sent,
            },
            Case {
                label: "DeliveryInfo without EmailSent (NeedToSend) is sent",
                invoice: delivered(inv("100.00", future), EmailStatus::NeedToSend),
                expected: Sent,
            },
            // 5. otherwise → awaiting send
            Case {
                label: "NeedToSend is awaiting send",
                invoice: with_email_status(inv("100.00", future), EmailStatus::NeedToSend),
                expected: AwaitingSend,
            },
            Case { label: "NotSet is awaiting send", invoice: inv("100.00", future), expected: AwaitingSend },
            Case {
                label: "an unknown EmailStatus is awaiting send",
                invoice: with_email_status(inv("100.00", future), EmailStatus::Other("Queued".to_owned())),
                expected: AwaitingSend,
            },
        ];
        check_table(cases, date(TODAY));
    }

    fn company(time_zone: chrono_tz::Tz) -> Company {
        Company { name: AccountName::default_account(), time_zone, home_currency: currency("USD") }
    }

    #[test]
    fn overdue_starts_on_the_companys_local_day_in_auckland_evening_utc() {
        // 12:30 UTC on 25 November is 01:30 on 26 November in Auckland (NZDT, UTC+13).
        let now = instant("2026-11-25T12:30:00Z");
        let auckland = company(chrono_tz::Pacific::Auckland);
        let utc = company(chrono_tz::UTC);
        assert_eq!(auckland.today(now), date("2026-11-26"));
        assert_eq!(utc.today(now), date("2026-11-25"));

        let due_25th = sent(inv("100.00", Some("2026-11-25")));
        assert_eq!(invoice_status(&due_25th, auckland.today(now)), InvoiceStatus::Overdue, "Auckland");
        assert_eq!(invoice_status(&due_25th, utc.today(now)), InvoiceStatus::Sent, "UTC");
    }

    #[test]
    fn overdue_starts_on_the_companys_local_day_the_day_before() {
        // 12:30 UTC on 24 November is already 25 November in Auckland.
        let now = instant("2026-11-24T12:30:00Z");
        let auckland = company(chrono_tz::Pacific::Auckland);
        let utc = company(chrono_tz::UTC);
        assert_eq!(auckland.today(now), date("2026-11-25"));
        assert_eq!(utc.today(now), date("2026-11-24"));

        let due_24th = sent(inv("100.00", Some("2026-11-24")));
        assert_eq!(invoice_status(&due_24th, auckland.today(now)), InvoiceStatus::Overdue, "Auckland");
        assert_eq!(invoice_status(&due_24th, utc.today(now)), InvoiceStatus::Sent, "UTC");
    }

    fn bill(balance: &str, due: Option<&str>, lifecycle: Lifecycle) -> Bill {
        Bill {
            key: key(RecordKind::Bill, "b1"),
            number: None,
            vendor: Party { id: None, name: "Paper Co".to_owned() },
            amount: usd("300.00"),
            balance: usd(balance),
            txn_date: date("2026-11-01"),
            due_date: due.map(date),
            lifecycle,
            updated_at: instant("2026-11-01T09:00:00Z"),
        }
    }

    #[test]
    fn bill_status_follows_deleted_paid_overdue_open() {
        use BillStatus::*;
        use Lifecycle::{Active, Deleted as Gone, Voided as Void};
        let today = date(TODAY);
        let cases = [
            ("deleted with a balance is deleted", bill("300.00", Some("2026-11-01"), Gone), Deleted),
            ("voided is deleted", bill("0", Some("2026-11-01"), Void), Deleted),
            ("balance 0 is paid even past due", bill("0", Some("2026-11-01"), Active), Paid),
            ("negative balance is paid", bill("-1.00", Some("2026-12-01"), Active), Paid),
            ("balance left after the due date is overdue", bill("300.00", Some("2026-11-24"), Active), Overdue),
            ("partly paid after the due date is overdue", bill("10.00", Some("2026-11-01"), Active), Overdue),
            ("due today is still open", bill("300.00", Some(TODAY), Active), Open),
            ("due later is open", bill("300.00", Some("2026-12-01"), Active), Open),
            ("no due date is never overdue", bill("300.00", None, Active), Open),
        ];
        for (label, bill, expected) in cases {
            assert_eq!(bill_status(&bill, today), expected, "{label}");
        }
    }

    fn payment(deposit_to: Option<(&str, Option<&str>)>, lifecycle: Lifecycle) -> Payment {
        Payment {
            key: key(RecordKind::Payment, "p1"),
            customer: Party { id: None, name: "Acme".to_owned() },
            amount: usd("100.00"),
            txn_date: date("2026-11-10"),
            deposit_to: deposit_to.map(|(id, name)| AccountRef { id: id.to_owned(), name: name.map(str::to_owned) }),
            invoices: Vec::new(),
            lifecycle,
            updated_at: instant("2026-11-10T09:00:00Z"),
        }
    }

    #[test]
    fn payment_status_tracks_undeposited_funds() {
        use Lifecycle::Active;
        use PaymentStatus::*;
        let cases = [
            ("no deposit account is undeposited", payment(None, Active), false, Undeposited),
            ("no deposit account but linked by a deposit is deposited", payment(None, Active), true, Deposited),
            (
                "the Undeposited Funds account is undeposited",
                payment(Some(("4", Some("Undeposited Funds"))), Active),
                false,
                Undeposited,
            ),
            (
                "Undeposited Funds matches case-insensitively",
                payment(Some(("4", Some("UNDEPOSITED FUNDS"))), Active),
                false,
                Undeposited,
            ),
            (
                "Undeposited Funds linked by a deposit is deposited",
                payment(Some(("4", Some("Undeposited Funds"))), Active),
                true,
                Deposited,
            ),
            ("a bank account is deposited", payment(Some(("35", Some("Checking"))), Active), false, Deposited),
            ("deleted is deleted", payment(None, Lifecycle::Deleted), false, Deleted),
            ("deleted is deleted even when linked", payment(None, Lifecycle::Deleted), true, Deleted),
            ("voided is deleted", payment(Some(("35", Some("Checking"))), Lifecycle::Voided), false, Deleted),
        ];
        for (label, payment, linked, expected) in cases {
            assert_eq!(payment_status(&payment, linked), expected, "{label}");
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in InvoiceStatus::ALL {
            assert_eq!(InvoiceStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::String(s.as_str().to_owned()));
        }
        for s in BillStatus::ALL {
            assert_eq!(BillStatus::parse(s.as_str()), Some(*s));
        }
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(InvoiceStatus::parse("Paid"), None);
        assert_eq!(InvoiceStatus::PartiallyPaid.to_string(), "partially_paid");
    }
}
