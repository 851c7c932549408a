//! Rule scripts: admin-written rules in rhai, evaluated on property changes and on schedules.
//!
//! A rule is one TOML file ([`def`]): name, description, enabled flag, record kind, triggers, a
//! `when` expression and `then` statements. [`host::RuleHost`] compiles rules once in a sandboxed
//! engine and evaluates them on records ([`types`] is what scripts see); evaluation returns
//! [`action::Intent`]s with their provenance and never performs I/O. [`check`] finds mistakes
//! before a rule runs; [`diag`] prints them with the source line and a caret.

pub mod action;
mod actions;
pub mod check;
pub mod def;
pub mod diag;
mod fast;
pub mod host;
pub mod seen;
pub mod slots;
pub mod subject;
pub mod testcase;
pub mod types;

pub use action::{About, Action, Cause, Intent};
pub use def::{RuleDef, RuleId, Trigger, parse_rule};
pub use diag::{Diagnostic, Severity, Span};
pub use host::{CompiledRule, Destinations, EvalError, Evaluation, HostConfig, Input, Limits, RuleHost};
pub use types::Subject;
