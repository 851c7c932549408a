//! The workflows' messages: merge fields from the record, built-in templates in English and
//! French that a finance team would send as they are (polite first, firmer later, always with the
//! number, the amount due, the due date and the days overdue), and the actions a firing makes.

use std::borrow::Cow;

use chrono::NaiveDate;

use super::config::{Channel, Language, WorkflowConfig, WorkflowKind};
use super::plan::Firing;
use crate::format::{self, Locale};
use crate::script::{Action, Subject};

/// How firm a message is, from its place among the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Before the due date: a courtesy notice.
    Upcoming,
    /// The first reminder after the due date.
    Gentle,
    /// A later reminder.
    Firm,
    /// The last stage, and its repeats.
    Final,
}

/// The tone of stage `stage` (its offset `days`) when the workflow has `count` stages sorted by
/// date, the stage being the `position`-th (from 0).
pub fn tone(days: i32, position: usize, count: usize) -> Tone {
    if days < 0 {
        Tone::Upcoming
    } else if position + 1 >= count && count > 1 {
        Tone::Final
    } else if position == 0 || days <= 7 {
        Tone::Gentle
    } else {
        Tone::Firm
    }
}

/// The merge fields templates may use.
pub const FIELDS: &[&str] = &[
    "customer",
    "vendor",
    "number",
    "amount",
    "amount_due",
    "currency",
    "invoice_date",
    "due_date",
    "days_overdue",
    "days_until_due",
    "payment_amount",
    "payment_date",
];

fn locale(language: Language) -> Locale {
    match language {
        Language::En => Locale::En,
        Language::Fr => Locale::Fr,
    }
}

/// The merge fields of `subject` on `today`, printed in `language`. Each is formatted only when
/// a template asks for it: a headline uses three or four of them.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    subject: &'a Subject,
    today: NaiveDate,
    locale: Locale,
}

/// The merge fields of `subject` on `today`, printed in `language`.
pub fn fields(subject: &Subject, today: NaiveDate, language: Language) -> Fields<'_> {
    Fields { subject, today, locale: locale(language) }
}

impl Fields<'_> {
    /// Field `name`, or `None` when the record has no value for it (or there is no such field).
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let l = self.locale;
        let date = |d: NaiveDate| Cow::Owned(format::date_long(d, l));
        let days = |n: i64| Cow::Owned(n.max(0).to_string());
        let (number, amount, balance, due, party, txn) = match self.subject {
            Subject::Invoice(r, _) => {
                (r.number.as_deref(), &r.amount, Some(&r.balance), r.due_date, &r.customer.name, r.txn_date)
            }
            Subject::Bill(r, _) => {
                (r.number.as_deref(), &r.amount, Some(&r.balance), r.due_date, &r.vendor.name, r.txn_date)
            }
            Subject::Payment(r, _) => (None, &r.amount, None, None, &r.customer.name, r.txn_date),
            Subject::Deposit(_) => return None,
        };
        let is = |kind: &str| match self.subject {
            Subject::Invoice(..) => kind == "invoice",
            Subject::Bill(..) => kind == "bill",
            Subject::Payment(..) => kind == "payment",
            Subject::Deposit(_) => false,
        };
        let payable = !is("payment");
        Some(match name {
            "customer" if !is("bill") => Cow::Borrowed(party.as_str()),
            "vendor" if is("bill") => Cow::Borrowed(party.as_str()),
            "number" if payable => match number {
                Some(n) => Cow::Borrowed(n),
                None => Cow::Owned(self.subject.key().id.to_string()),
            },
            "amount" if payable => Cow::Owned(format::money(amount, l)),
            "amount_due" => Cow::Owned(format::money(balance?, l)),
            "currency" => Cow::Borrowed(amount.currency.code()),
            "invoice_date" if is("invoice") => date(txn),
            "due_date" => date(due?),
            "days_overdue" => days((self.today - due?).num_days()),
            "days_until_due" => days((due? - self.today).num_days()),
            "payment_amount" if !payable => Cow::Owned(format::money(amount, l)),
            "payment_date" if !payable => date(txn),
            _ => return None,
        })
    }
}

/// A template with a merge field that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown merge field {{{field}}}{}; known: {}", hint.as_ref().map(|h| format!(" (did you mean {{{h}}}?)")).unwrap_or_default(), FIELDS.join(", "))]
pub struct UnknownField {
    /// The field as written.
    pub field: String,
    /// The closest known one.
    pub hint: Option<String>,
}

/// Checks that `template` uses only known merge fields.
///
/// # Errors
/// [`UnknownField`] for the first one that is not.
pub fn check(template: &str) -> Result<(), UnknownField> {
    for field in merge_fields_in(template) {
        if !FIELDS.contains(&field) {
            let hint = crate::suggest::closest(field, FIELDS.iter().copied()).map(str::to_owned);
            return Err(UnknownField { field: field.to_owned(), hint });
        }
    }
    Ok(())
}

fn merge_fields_in(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name.trim()))
}

/// `template` with each `{field}` replaced; a field the record has no value for (a bill's due
/// date when it has none) prints as `—`.
pub fn render(template: &str, fields: &Fields<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = after[..close].trim();
                out.push_str(fields.get(name).as_deref().unwrap_or("—"));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The built-in (subject, body) of a customer email.
fn customer_email(tone: Tone, language: Language) -> (&'static str, &'static str) {
    match (language, tone) {
        (Language::En, Tone::Upcoming) => (
            "Invoice {number} is due on {due_date}",
            "Hello {customer},\n\nThis is a friendly reminder that invoice {number} for {amount_due} is due on {due_date}.\n\nIf you have already arranged payment, thank you, and please disregard this message.\n\nKind regards,\nAccounts receivable",
        ),
        (Language::En, Tone::Gentle) => (
            "Reminder: invoice {number} was due on {due_date}",
            "Hello {customer},\n\nOur records show that invoice {number} for {amount_due} was due on {due_date} and is now {days_overdue} days overdue. It may simply have been overlooked: we would be grateful if you could arrange payment at your earliest convenience.\n\nIf you have already paid, thank you, and please disregard this message.\n\nKind regards,\nAccounts receivable",
        ),
        (Language::En, Tone::Firm) => (
            "Second reminder: invoice {number} is {days_overdue} days overdue",
            "Hello {customer},\n\nInvoice {number} for {amount_due} was due on {due_date} and remains unpaid, {days_overdue} days later. Please arrange payment within the next few days, or reply to let us know when we can expect it.\n\nKind regards,\nAccounts receivable",
        ),
        (Language::En, Tone::Final) => (
            "Final reminder: invoice {number} is {days_overdue} days overdue",
            "Hello {customer},\n\nDespite our earlier reminders, invoice {number} for {amount_due}, due on {due_date}, is still unpaid after {days_overdue} days. Please pay it now, or contact us today to agree on a payment date; otherwise we will have to take further steps.\n\nRegards,\nAccounts receivable",
        ),
        (Language::Fr, Tone::Upcoming) => (
            "Échéance de la facture {number} le {due_date}",
            "Bonjour {customer},\n\nNous nous permettons de vous rappeler que la facture {number} d'un montant de {amount_due} arrive à échéance le {due_date}.\n\nSi le règlement est déjà prévu, nous vous en remercions et vous prions de ne pas tenir compte de ce message.\n\nCordialement,\nService comptabilité",
        ),
        (Language::Fr, Tone::Gentle) => (
            "Rappel : facture {number} échue le {due_date}",
            "Bonjour {customer},\n\nSauf erreur de notre part, la facture {number} d'un montant de {amount_due}, échue le {due_date}, reste impayée depuis {days_overdue} jours. Il s'agit sans doute d'un oubli : nous vous remercions de bien vouloir procéder à son règlement dans les meilleurs délais.\n\nSi vous avez déjà effectué le paiement, merci de ne pas tenir compte de ce message.\n\nCordialement,\nService comptabilité",
        ),
        (Language::Fr, Tone::Firm) => (
            "Deuxième rappel : facture {number} impayée depuis {days_overdue} jours",
            "Bonjour {customer},\n\nLa facture {number} d'un montant de {amount_due}, échue le {due_date}, demeure impayée {days_overdue} jours plus tard. Nous vous prions de procéder à son règlement sous quelques jours, ou de nous indiquer en réponse la date à laquelle nous pouvons l'attendre.\n\nCordialement,\nService comptabilité",
        ),
        (Language::Fr, Tone::Final) => (
            "Dernier rappel : facture {number} impayée depuis {days_overdue} jours",
            "Bonjour {customer},\n\nMalgré nos précédents rappels, la facture {number} d'un montant de {amount_due}, échue le {due_date}, reste impayée après {days_overdue} jours. Nous vous demandons de la régler dès à présent, ou de nous contacter aujourd'hui pour convenir d'une date de paiement ; à défaut, nous serons contraints d'engager d'autres démarches.\n\nCordialement,\nService comptabilité",
        ),
    }
}

/// The built-in title of a team task or message.
fn team_text(kind: WorkflowKind, language: Language) -> &'static str {
    match (kind, language) {
        (WorkflowKind::PaymentDue, Language::En) => {
            "Follow up invoice {number} ({customer}): {amount_due} unpaid, {days_overdue} days overdue"
        }
        (WorkflowKind::PaymentDue, Language::Fr) => {
            "Relancer la facture {number} ({customer}) : {amount_due} impayés, {days_overdue} jours de retard"
        }
        (WorkflowKind::VendorPayment, Language::En) => {
            "Pay bill {number} from {vendor}: {amount_due} due on {due_date}"
        }
        (WorkflowKind::VendorPayment, Language::Fr) => {
            "Payer la facture {number} de {vendor} : {amount_due} à régler le {due_date}"
        }
        (WorkflowKind::BankDeposit, Language::En) => {
            "Deposit the payment from {customer}: {payment_amount} received on {payment_date}"
        }
        (WorkflowKind::BankDeposit, Language::Fr) => {
            "Remettre en banque le paiement de {customer} : {payment_amount} reçu le {payment_date}"
        }
        (WorkflowKind::UnsentInvoice, Language::En) => {
            "Send invoice {number} to {customer}: {amount_due}, dated {invoice_date}"
        }
        (WorkflowKind::UnsentInvoice, Language::Fr) => {
            "Envoyer la facture {number} à {customer} : {amount_due}, datée du {invoice_date}"
        }
    }
}

/// The customer's (vendor's) name on a record.
pub fn party(subject: &Subject) -> &str {
    match subject {
        Subject::Invoice(r, _) => &r.customer.name,
        Subject::Bill(r, _) => &r.vendor.name,
        Subject::Payment(r, _) => &r.customer.name,
        Subject::Deposit(_) => "",
    }
}

/// The actions of `firing` for `subject` on `today`, per its stage's channels, written in
/// `language`. Customer emails go to the invoice's billing email; team emails to named
/// destinations.
pub fn actions(
    firing: &Firing,
    config: &WorkflowConfig,
    subject: &Subject,
    today: NaiveDate,
    language: Language,
) -> Vec<Action> {
    build(firing, config, subject, today, language, true)
}

/// [`actions`] without the email bodies (left empty): what a timeline shows, for less work.
pub fn headlines(
    firing: &Firing,
    config: &WorkflowConfig,
    subject: &Subject,
    today: NaiveDate,
    language: Language,
) -> Vec<Action> {
    build(firing, config, subject, today, language, false)
}

fn build(
    firing: &Firing,
    config: &WorkflowConfig,
    subject: &Subject,
    today: NaiveDate,
    language: Language,
    bodies: bool,
) -> Vec<Action> {
    let Some(stage) = config.stages.get(firing.stage) else { return Vec::new() };
    let mut order: Vec<usize> = (0..config.stages.len()).collect();
    order.sort_by_key(|i| config.stages[*i].days);
    let position = order.iter().position(|i| *i == firing.stage).unwrap_or(0);
    let tone = match firing.step {
        super::plan::Step::Repeat(_) => Tone::Final,
        super::plan::Step::Stage(_) => tone(stage.days, position, order.len()),
    };
    let fields = fields(subject, today, language);
    let (default_subject, default_body) = customer_email(tone, language);
    // Each text is written only if a channel of the stage needs it.
    let subject_line = || render(stage.subject.as_deref().unwrap_or(default_subject), &fields);
    let body = || if bodies { render(stage.body.as_deref().unwrap_or(default_body), &fields) } else { String::new() };
    let team = std::cell::OnceCell::new();
    let team = || {
        team.get_or_init(|| render(stage.subject.as_deref().unwrap_or(team_text(firing.workflow, language)), &fields))
            .clone()
    };
    stage
        .channels
        .iter()
        .filter_map(|channel| match channel {
            Channel::CustomerEmail => match subject {
                Subject::Invoice(r, _) => r.bill_email.as_ref().map(|to| Action::Email {
                    to: vec![to.clone()],
                    cc: r.cc.clone(),
                    subject: subject_line(),
                    text: body(),
                    html: None,
                }),
                _ => None,
            },
            Channel::TeamEmail { destination } => Some(Action::Email {
                to: vec![destination.clone()],
                cc: Vec::new(),
                subject: team(),
                text: team(),
                html: None,
            }),
            Channel::Slack { destination } => {
                Some(Action::Slack { destination: destination.clone(), text: team(), blocks: None })
            }
            Channel::Task { assignee } => Some(Action::Task {
                title: team(),
                notes: None,
                assignee: assignee.clone(),
                due: Some(today),
                approval: false,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::subject::from_canonical;
    use crate::workflow::plan::firings;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn invoice() -> Subject {
        from_canonical(
            serde_json::json!({"type": "invoice", "id": "42", "number": "1042", "customer": "Acme", "recipient": "ap@acme.example",
                "amount": "1250.00", "balance": "800.00", "currency": "EUR", "txn_date": "2026-10-01",
                "due_date": "2026-10-31", "email_status": "EmailSent", "updated_at": "2026-10-02T00:00:00Z"}),
            day("2026-11-30"),
        )
        .unwrap()
    }

    #[test]
    fn tones_grow_firmer_stage_by_stage() {
        let stages = [-3, 7, 14, 30];
        let tones: Vec<Tone> = stages.iter().enumerate().map(|(i, d)| tone(*d, i, stages.len())).collect();
        assert_eq!(tones, [Tone::Upcoming, Tone::Gentle, Tone::Firm, Tone::Final]);
    }

    #[test]
    fn the_final_reminder_names_number_amount_due_date_and_days_overdue() {
        let config = WorkflowKind::PaymentDue.defaults();
        let plan = firings(WorkflowKind::PaymentDue, &config, &invoice(), chrono_tz::Europe::Paris).unwrap();
        let last = plan.last().unwrap();
        let actions = actions(last, &config, &invoice(), day("2026-11-30"), Language::En);
        let [Action::Email { to, subject, text, .. }, Action::Task { title, .. }] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(to, &["ap@acme.example"]);
        assert_eq!(subject, "Final reminder: invoice 1042 is 30 days overdue");
        assert!(
            text.contains("invoice 1042 for €800.00, due on October 31, 2026, is still unpaid after 30 days"),
            "{text}"
        );
        assert_eq!(title, "Follow up invoice 1042 (Acme): €800.00 unpaid, 30 days overdue");
    }

    #[test]
    fn french_templates_use_french_money_and_dates() {
        let mut config = WorkflowKind::PaymentDue.defaults();
        let plan = firings(WorkflowKind::PaymentDue, &config, &invoice(), chrono_tz::Europe::Paris).unwrap();
        // The company writes English; this customer reads French.
        config.customer_languages.insert("acme".into(), Language::Fr);
        let language = config.language_for(party(&invoice()), Language::En);
        let actions = actions(&plan[1], &config, &invoice(), day("2026-11-07"), language);
        let [Action::Email { subject, text, .. }] = actions.as_slice() else { panic!("{actions:?}") };
        assert_eq!(subject, "Rappel : facture 1042 échue le 31 octobre 2026");
        assert!(
            text.contains("d'un montant de 800,00\u{a0}€, échue le 31 octobre 2026, reste impayée depuis 7 jours"),
            "{text}"
        );
    }

    #[test]
    fn templates_name_unknown_fields() {
        assert_eq!(check("Invoice {number} due {due_date}"), Ok(()));
        let e = check("Invoice {numbr}").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("number"));
        assert!(e.to_string().starts_with("unknown merge field {numbr} (did you mean {number}?)"), "{e}");
        let subject = invoice();
        let fields = fields(&subject, day("2026-11-30"), Language::En);
        assert_eq!(render("#{number} of {vendor} due {due_date} {", &fields), "#1042 of — due October 31, 2026 {");
        assert_eq!(render("{amount_due}, {days_overdue} days late", &fields), "€800.00, 30 days late");
    }
}
