//! A native evaluator for the usual shape of `when`: record properties compared with constants,
//! joined by `&&`, `||`, `!` and `in`, with day and money arithmetic. Compiled from rhai's AST
//! once per rule; evaluated without rhai, without allocating. It gives rhai's answer or none at
//! all (`None`: a case it does not model, such as an error rhai would raise), and then rhai
//! evaluates. A differential test holds the two to the same answers.

use std::cmp::Ordering;

use chrono::NaiveDate;
use rhai::{AST, Expr, Stmt};
use rust_decimal::Decimal;

use super::types::Subject;
use crate::change::{Change, Property};
use crate::money::Money;

/// A value while evaluating.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Money(Money),
    Date(NaiveDate),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Arith {
    Add,
    Sub,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum ChangeField {
    Property,
    From,
    To,
}

#[derive(Debug)]
pub(crate) enum Const {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A compiled `when`.
#[derive(Debug)]
pub(crate) enum Node {
    Const(Const),
    Field(&'static str),
    Change(ChangeField),
    Today,
    Compare(Cmp, Box<Node>, Box<Node>),
    Arith(Arith, Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    In(Box<Node>, Vec<Node>),
}

/// What a compiled `when` sees.
pub(crate) struct Env<'a> {
    pub(crate) subject: &'a Subject,
    pub(crate) change: Option<&'a Change>,
    pub(crate) today: NaiveDate,
}

/// Compiles `ast` (a `when` expression) for a rule whose record variable is `record_var`; `None`
/// when it uses anything this evaluator does not model.
pub(crate) fn compile(ast: &AST, record_var: &str, fields: &[&'static str]) -> Option<Node> {
    match ast.statements() {
        [Stmt::Expr(expr)] => node(expr, record_var, fields),
        // A lone comparison is kept as a function-call statement.
        [Stmt::FnCall(f, _)] => call(f, record_var, fields),
        _ => None,
    }
}

fn node(expr: &Expr, record_var: &str, fields: &[&'static str]) -> Option<Node> {
    Some(match expr {
        Expr::Unit(_) => Node::Const(Const::Unit),
        Expr::BoolConstant(b, _) => Node::Const(Const::Bool(*b)),
        Expr::IntegerConstant(i, _) => Node::Const(Const::Int(*i)),
        Expr::FloatConstant(f, _) => Node::Const(Const::Float(**f)),
        Expr::StringConstant(s, _) => Node::Const(Const::Str(s.to_string())),
        Expr::Variable(v, _, _) if v.1.as_str() == "today" => Node::Today,
        Expr::Dot(x, _, _) => {
            let (Expr::Variable(v, _, _), Expr::Property(p, _)) = (&x.lhs, &x.rhs) else { return None };
            let name = p.2.as_str();
            match v.1.as_str() {
                "change" => Node::Change(match name {
                    "property" => ChangeField::Property,
                    "from" => ChangeField::From,
                    "to" => ChangeField::To,
                    _ => return None,
                }),
                var if var == record_var || var == "record" => Node::Field(fields.iter().find(|f| **f == name)?),
                _ => return None,
            }
        }
        Expr::And(items, _) => Node::And(items.iter().map(|e| node(e, record_var, fields)).collect::<Option<_>>()?),
        Expr::Or(items, _) => Node::Or(items.iter().map(|e| node(e, record_var, fields)).collect::<Option<_>>()?),
        Expr::FnCall(f, _) => return call(f, record_var, fields),
        _ => return None,
    })
}

fn call(call: &rhai::FnCallExpr, record_var: &str, fields: &[&'static str]) -> Option<Node> {
    if !call.namespace.is_empty() {
        return None;
    }
    let sub = |e: &Expr| node(e, record_var, fields).map(Box::new);
    Some(match (call.name.as_str(), call.args.as_slice()) {
        ("!", [a]) => Node::Not(sub(a)?),
        ("contains", [Expr::Array(items, _), item]) => {
            Node::In(sub(item)?, items.iter().map(|e| node(e, record_var, fields)).collect::<Option<_>>()?)
        }
        // rhai's optimiser folds an array of constants into one constant value.
        ("contains", [Expr::DynamicConstant(array, _), item]) => {
            let items = array.clone().try_cast::<rhai::Array>()?;
            Node::In(sub(item)?, items.iter().map(constant).collect::<Option<_>>()?)
        }
        (op, [a, b]) => {
            let cmp = match op {
                "==" => Cmp::Eq,
                "!=" => Cmp::Ne,
                "<" => Cmp::Lt,
                "<=" => Cmp::Le,
                ">" => Cmp::Gt,
                ">=" => Cmp::Ge,
                "+" => return Some(Node::Arith(Arith::Add, sub(a)?, sub(b)?)),
                "-" => return Some(Node::Arith(Arith::Sub, sub(a)?, sub(b)?)),
                _ => return None,
            };
            Node::Compare(cmp, sub(a)?, sub(b)?)
        }
        _ => return None,
    })
}

/// A constant value folded by rhai, when it is one this evaluator models.
fn constant(value: &rhai::Dynamic) -> Option<Node> {
    let c = if value.is_unit() {
        Const::Unit
    } else if let Ok(b) = value.as_bool() {
        Const::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Const::Int(i)
    } else if let Ok(f) = value.as_float() {
        Const::Float(f)
    } else if let Some(s) = value.clone().try_cast::<rhai::ImmutableString>() {
        Const::Str(s.to_string())
    } else {
        return None;
    };
    Some(Node::Const(c))
}

impl Node {
    /// Evaluates to true or false, or `None` to let rhai decide.
    pub(crate) fn test(&self, env: &Env<'_>) -> Option<bool> {
        match self.eval(env)? {
            V::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn eval<'a>(&'a self, env: &Env<'a>) -> Option<V<'a>> {
        Some(match self {
            Node::Const(c) => match c {
                Const::Unit => V::Unit,
                Const::Bool(b) => V::Bool(*b),
                Const::Int(i) => V::Int(*i),
                Const::Float(f) => V::Float(*f),
                Const::Str(s) => V::Str(s),
            },
            Node::Today => V::Date(env.today),
            Node::Field(name) => field(env, name)?,
            Node::Change(which) => {
                let c = env.change?;
                match which {
                    ChangeField::Property => V::Str(c.property.as_str()),
                    ChangeField::From => change_value(c.property, c.old.as_deref(), env.subject),
                    ChangeField::To => change_value(c.property, c.new.as_deref(), env.subject),
                }
            }
            Node::And(items) => {
                for item in items {
                    if !item.test(env)? {
                        return Some(V::Bool(false));
                    }
                }
                V::Bool(true)
            }
            Node::Or(items) => {
                for item in items {
                    if item.test(env)? {
                        return Some(V::Bool(true));
                    }
                }
                V::Bool(false)
            }
            Node::Not(a) => V::Bool(!a.test(env)?),
            Node::In(item, list) => {
                let item = item.eval(env)?;
                for candidate in list {
                    if compare(Cmp::Eq, item, candidate.eval(env)?)? {
                        return Some(V::Bool(true));
                    }
                }
                V::Bool(false)
            }
            Node::Compare(op, a, b) => V::Bool(compare(*op, a.eval(env)?, b.eval(env)?)?),
            Node::Arith(op, a, b) => arith(*op, a.eval(env)?, b.eval(env)?)?,
        })
    }
}

fn opt_str(s: Option<&str>) -> V<'_> {
    s.map_or(V::Unit, V::Str)
}

fn opt_date(d: Option<NaiveDate>) -> V<'static> {
    d.map_or(V::Unit, V::Date)
}

fn days(from: NaiveDate, to: Option<NaiveDate>) -> V<'static> {
    to.map_or(V::Unit, |to| V::Int((to - from).num_days()))
}

/// The properties `types.rs` registers, with the same values.
fn field<'a>(env: &Env<'a>, name: &str) -> Option<V<'a>> {
    let today = env.today;
    Some(match env.subject {
        Subject::Invoice(r, status) => match name {
            "id" => V::Str(r.key.id.as_str()),
            "account" => V::Str(r.key.account.as_str()),
            "number" => opt_str(r.number.as_deref()),
            "customer" => V::Str(&r.customer.name),
            "recipient" => V::Str(r.recipient()),
            "email" => opt_str(r.bill_email.as_deref()),
            "amount" => V::Money(r.amount),
            "balance" => V::Money(r.balance),
            "paid" => V::Money(Money::new(r.amount.amount - r.balance.amount, r.amount.currency)),
            "currency" => V::Str(r.amount.currency.code()),
            "txn_date" => V::Date(r.txn_date),
            "due_date" => opt_date(r.due_date),
            "status" => V::Str(status.as_str()),
            "days_overdue" => days(r.due_date.unwrap_or(today), Some(today)),
            "days_until_due" => days(today, r.due_date),
            "email_status" => V::Str(r.email_status.as_str()),
            "deal_id" => opt_str(r.holders.deal.as_ref().map(|h| h.as_str())),
            "contact_id" => opt_str(r.holders.contact.as_ref().map(|h| h.as_str())),
            "company_id" => opt_str(r.holders.company.as_ref().map(|h| h.as_str())),
            _ => return None,
        },
        Subject::Bill(r, status) => match name {
            "id" => V::Str(r.key.id.as_str()),
            "account" => V::Str(r.key.account.as_str()),
            "number" => opt_str(r.number.as_deref()),
            "vendor" => V::Str(&r.vendor.name),
            "amount" => V::Money(r.amount),
            "balance" => V::Money(r.balance),
            "paid" => V::Money(Money::new(r.amount.amount - r.balance.amount, r.amount.currency)),
            "currency" => V::Str(r.amount.currency.code()),
            "txn_date" => V::Date(r.txn_date),
            "due_date" => opt_date(r.due_date),
            "status" => V::Str(status.as_str()),
            "days_overdue" => days(r.due_date.unwrap_or(today), Some(today)),
            "days_until_due" => days(today, r.due_date),
            _ => return None,
        },
        Subject::Payment(r, status) => match name {
            "id" => V::Str(r.key.id.as_str()),
            "account" => V::Str(r.key.account.as_str()),
            "customer" => V::Str(&r.customer.name),
            "amount" => V::Money(r.amount),
            "currency" => V::Str(r.amount.currency.code()),
            "txn_date" => V::Date(r.txn_date),
            "status" => V::Str(status.as_str()),
            _ => return None,
        },
        Subject::Deposit(r) => match name {
            "id" => V::Str(r.key.id.as_str()),
            "account" => V::Str(r.key.account.as_str()),
            "amount" => V::Money(r.amount),
            "currency" => V::Str(r.amount.currency.code()),
            "txn_date" => V::Date(r.txn_date),
            _ => return None,
        },
    })
}

/// As `types::change_value`: due dates as dates, amounts as money, the rest as text.
fn change_value<'a>(property: Property, text: Option<&'a str>, subject: &Subject) -> V<'a> {
    let Some(text) = text else { return V::Unit };
    let currency = match subject {
        Subject::Invoice(r, _) => r.amount.currency,
        Subject::Bill(r, _) => r.amount.currency,
        Subject::Payment(r, _) => r.amount.currency,
        Subject::Deposit(r) => r.amount.currency,
    };
    match property {
        Property::DueDate => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_or(V::Str(text), V::Date),
        Property::Amount | Property::Balance => {
            crate::money::parse_decimal(text).map_or(V::Str(text), |d| V::Money(Money::new(d, currency)))
        }
        _ => V::Str(text),
    }
}

fn ordered(op: Cmp, o: Ordering) -> bool {
    match op {
        Cmp::Eq => o.is_eq(),
        Cmp::Ne => o.is_ne(),
        Cmp::Lt => o.is_lt(),
        Cmp::Le => o.is_le(),
        Cmp::Gt => o.is_gt(),
        Cmp::Ge => o.is_ge(),
    }
}

/// An amount as `types::as_amount` reads it; `None` where rhai would raise an error.
fn amount(v: V<'_>) -> Option<Decimal> {
    match v {
        V::Int(i) => Some(Decimal::from(i)),
        V::Float(f) => crate::money::parse_decimal(&f.to_string()).ok(),
        V::Str(s) => crate::money::parse_decimal(s.trim()).ok(),
        V::Money(m) => Some(m.amount),
        _ => None,
    }
}

fn date(v: V<'_>) -> Option<NaiveDate> {
    match v {
        V::Date(d) => Some(d),
        V::Str(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
        _ => None,
    }
}

/// rhai's comparison: built-in for numbers, text, booleans and unit; the registered functions for
/// money and dates; and for any other pair of types, false (true for `!=`).
fn compare(op: Cmp, a: V<'_>, b: V<'_>) -> Option<bool> {
    let unrelated = Some(op == Cmp::Ne);
    Some(match (a, b) {
        (V::Int(x), V::Int(y)) => ordered(op, x.cmp(&y)),
        (V::Float(x), V::Float(y)) => ordered(op, x.partial_cmp(&y)?),
        (V::Int(x), V::Float(y)) => ordered(op, (x as f64).partial_cmp(&y)?),
        (V::Float(x), V::Int(y)) => ordered(op, x.partial_cmp(&(y as f64))?),
        (V::Str(x), V::Str(y)) => ordered(op, x.cmp(y)),
        (V::Bool(x), V::Bool(y)) if matches!(op, Cmp::Eq | Cmp::Ne) => ordered(op, x.cmp(&y)),
        (V::Unit, V::Unit) if matches!(op, Cmp::Eq | Cmp::Ne) => op == Cmp::Eq,
        (V::Money(x), V::Money(y)) => {
            if x.currency != y.currency {
                return None;
            }
            ordered(op, x.amount.cmp(&y.amount))
        }
        (V::Money(x), other @ (V::Int(_) | V::Float(_) | V::Str(_))) => ordered(op, x.amount.cmp(&amount(other)?)),
        (other @ (V::Int(_) | V::Float(_) | V::Str(_)), V::Money(y)) => ordered(op, amount(other)?.cmp(&y.amount)),
        (V::Date(_), V::Unit) | (V::Unit, V::Date(_)) => op == Cmp::Ne,
        (V::Date(x), other @ (V::Date(_) | V::Str(_))) => ordered(op, x.cmp(&date(other)?)),
        (V::Str(_), V::Date(y)) => ordered(op, date(a)?.cmp(&y)),
        _ => return unrelated,
    })
}

fn arith<'a>(op: Arith, a: V<'a>, b: V<'a>) -> Option<V<'a>> {
    Some(match (op, a, b) {
        (Arith::Add, V::Int(x), V::Int(y)) => V::Int(x.checked_add(y)?),
        (Arith::Sub, V::Int(x), V::Int(y)) => V::Int(x.checked_sub(y)?),
        (Arith::Sub, V::Date(x), V::Date(y)) => V::Int((x - y).num_days()),
        (Arith::Add, V::Date(d), V::Int(n)) => V::Date(d.checked_add_signed(chrono::Duration::try_days(n)?)?),
        (Arith::Sub, V::Date(d), V::Int(n)) => V::Date(d.checked_sub_signed(chrono::Duration::try_days(n)?)?),
        (op, V::Money(x), V::Money(y)) if x.currency == y.currency => V::Money(Money::new(
            match op {
                Arith::Add => x.amount.checked_add(y.amount)?,
                Arith::Sub => x.amount.checked_sub(y.amount)?,
            },
            x.currency,
        )),
        _ => return None,
    })
}
