//! The rhai host: one sandboxed engine, rules compiled once, evaluation that returns intents.
//!
//! The engine starts raw and gets only the standard packages without time functions (a rule gets
//! `now` and `today` from its caller), no `eval`, no printing, no file or network access, and
//! modules only from the rules library the caller hands over as text. Every limit rhai offers is
//! set, plus a wall-clock deadline per evaluation, measured with a stopwatch the caller injects.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rhai::packages::{Package, StandardPackage};
use rhai::{AST, Dynamic, Engine, EvalAltResult, ImmutableString, Position, Scope};

use super::action::{Action, Cause, Intent};
use super::def::{RuleDef, Snippet};
use super::diag::{Diagnostic, Span};
use super::types::{
    BillView, ChangeView, DepositView, InvoiceView, Moment, PaymentView, Subject, register as register_types,
};
use crate::change::Change;
use crate::format::Locale;
use crate::ids::RecordKind;

/// The destinations rules may name, from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    /// Slack-style incoming webhooks.
    pub slack: BTreeSet<String>,
    /// Signed webhooks.
    pub webhook: BTreeSet<String>,
    /// Named lists of email addresses (`email("ap-team", …)`).
    pub email: BTreeMap<String, Vec<String>>,
}

/// Resource limits of one evaluation.
#[derive(Debug, Clone)]
pub struct Limits {
    /// rhai operations.
    pub operations: u64,
    /// Nested function calls.
    pub call_levels: usize,
    /// Nested expressions (at compile time), and inside functions.
    pub expr_depth: (usize, usize),
    /// Bytes in a string.
    pub string_size: usize,
    /// Items in an array.
    pub array_size: usize,
    /// Entries in a map.
    pub map_size: usize,
    /// Modules imported.
    pub modules: usize,
    /// Actions one evaluation may return.
    pub actions: usize,
    /// Wall-clock time of one evaluation.
    pub deadline: Duration,
}

impl Default for Limits {
    /// 1,000,000 operations, 32 call levels, expressions 64 deep (32 in functions), 64 KiB strings,
    /// 10,000-item arrays, 1,000-entry maps, 8 module imports, 20 actions, 50 ms.
    fn default() -> Self {
        Self {
            operations: 1_000_000,
            call_levels: 32,
            expr_depth: (64, 32),
            string_size: 64 * 1024,
            array_size: 10_000,
            map_size: 1_000,
            modules: 8,
            actions: 20,
            deadline: Duration::from_millis(50),
        }
    }
}

/// How a [`RuleHost`] is built.
pub struct HostConfig {
    /// The destinations rules may name.
    pub destinations: Destinations,
    /// The rules library: (module name, rhai source); rules `import "name"`.
    pub library: Vec<(String, String)>,
    /// The limits.
    pub limits: Limits,
    /// A monotonic clock for the deadline (the engine passes the standard one); injected so this crate
    /// reads no clock.
    pub stopwatch: fn() -> Instant,
}

/// A rule ready to evaluate.
pub struct CompiledRule {
    /// What its file says.
    pub def: RuleDef,
    when: Option<AST>,
    /// `when`, compiled to native code when it has the usual shape (see [`super::fast`]).
    fast: Option<super::fast::Node>,
    then: AST,
    uses_deal: bool,
}

impl CompiledRule {
    /// The rhai of `when`, compiled (for `check`).
    pub fn when_ast(&self) -> Option<&AST> {
        self.when.as_ref()
    }

    /// The same rule without its `when`: `then` runs whatever the record (for `check`'s dry run).
    pub fn then_only(rule: &CompiledRule) -> CompiledRule {
        CompiledRule {
            def: rule.def.clone(),
            when: None,
            fast: None,
            then: rule.then.clone(),
            uses_deal: rule.uses_deal,
        }
    }

    /// Whether its scripts read `deal`: the caller then projects the deal's properties.
    pub fn uses_deal(&self) -> bool {
        self.uses_deal
    }

    /// The rhai of `then`, compiled (for `check`).
    pub fn then_ast(&self) -> &AST {
        &self.then
    }
}

/// Everything one evaluation sees.
pub struct Input<'a> {
    /// The record.
    pub subject: &'a Subject,
    /// The change, for change-triggered evaluations.
    pub change: Option<&'a Change>,
    /// Now.
    pub now: DateTime<Utc>,
    /// The company's time zone ("today" is the date there).
    pub zone: Tz,
    /// How money and dates print by default.
    pub locale: Locale,
    /// What started it.
    pub cause: Cause,
    /// The deal of an invoice's own `deal_id`, with its properties, when the rule uses `deal`
    /// (see [`CompiledRule::uses_deal`]).
    pub deal: Option<&'a super::types::DealView>,
}

impl Input<'_> {
    /// The company's date.
    pub fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.zone).date_naive()
    }
}

/// What one evaluation found.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Whether the record matched `when`.
    pub matched: bool,
    /// The actions, with provenance (empty when it did not match).
    pub intents: Vec<Intent>,
}

/// Why an evaluation failed: for this rule and record only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", .at.map(|s| format!("line {}:{}: ", s.line, s.col)).unwrap_or_default())]
pub struct EvalError {
    /// A limit was hit (time, operations, sizes, depth) rather than a mistake in the script.
    pub limit: bool,
    /// Where in the rule file, when rhai knows.
    pub at: Option<Span>,
    /// What happened.
    pub message: String,
}

/// Per-thread evaluation state: the actions collected and the deadline.
struct State {
    actions: Vec<Action>,
    locale: Locale,
    deadline: Option<Instant>,
    subject: Option<crate::ids::RecordKey>,
    too_many: bool,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State { actions: Vec::new(), locale: Locale::En, deadline: None, subject: None, too_many: false })
    };
    static SCOPE: RefCell<Scope<'static>> = RefCell::new(Scope::new());
}

/// The default locale of the evaluation running on this thread.
pub(crate) fn current_locale() -> Locale {
    STATE.with(|s| s.borrow().locale)
}

/// The token `on_progress` stops a script with when its time is up.
const DEADLINE: &str = "deadline";

/// The variable names a rule of `kind` sees.
pub fn variables(kind: RecordKind) -> [&'static str; 6] {
    [kind.as_str(), "record", "change", "now", "today", "deal"]
}

/// The sandboxed engine and what it needs to compile and evaluate rules.
pub struct RuleHost {
    engine: Engine,
    limits: Limits,
    destinations: Arc<Destinations>,
    stopwatch: fn() -> Instant,
}

impl RuleHost {
    /// Builds the engine and compiles the library.
    ///
    /// # Errors
    /// The library modules that do not compile, each with its diagnostics.
    pub fn new(config: HostConfig) -> Result<Self, Vec<(String, Diagnostic)>> {
        let destinations = Arc::new(config.destinations);
        let mut engine = Engine::new_raw();
        engine.register_global_module(StandardPackage::new().as_shared_module());
        engine
            .disable_symbol("eval")
            .on_print(|_| {})
            .on_debug(|_, _, _| {})
            .set_strict_variables(true)
            .set_fail_on_invalid_map_property(true)
            .set_max_operations(config.limits.operations)
            .set_max_call_levels(config.limits.call_levels)
            .set_max_expr_depths(config.limits.expr_depth.0, config.limits.expr_depth.1)
            .set_max_string_size(config.limits.string_size)
            .set_max_array_size(config.limits.array_size)
            .set_max_map_size(config.limits.map_size)
            .set_max_modules(config.limits.modules);
        let stopwatch = config.stopwatch;
        engine.on_progress(move |ops| {
            if ops % 512 != 0 {
                return None;
            }
            let expired = STATE.with(|s| s.borrow().deadline.is_some_and(|d| stopwatch() >= d));
            expired.then(|| Dynamic::from(ImmutableString::from(DEADLINE)))
        });
        register_types(&mut engine);
        super::actions::register(&mut engine, &destinations, config.limits.actions);
        let mut resolver = rhai::module_resolvers::StaticModuleResolver::new();
        let mut errors = Vec::new();
        for (name, source) in &config.library {
            let snippet = Snippet::plain(source);
            STATE.with(|s| s.borrow_mut().deadline = Some(stopwatch() + config.limits.deadline));
            let module = engine.compile(source).map_err(|e| parse_diagnostic(&snippet, &e)).and_then(|ast| {
                rhai::Module::eval_ast_as_new(Scope::new(), &ast, &engine).map_err(|e| {
                    let at = located(&snippet, e.position());
                    Diagnostic::error(at.unwrap_or(Span::start()), describe(&e, &config.limits).1)
                })
            });
            match module {
                Ok(m) => resolver.insert(name.as_str(), m),
                Err(d) => errors.push((name.clone(), d)),
            }
        }
        STATE.with(|s| s.borrow_mut().deadline = None);
        if !errors.is_empty() {
            return Err(errors);
        }
        engine.set_module_resolver(resolver);
        Ok(Self { engine, limits: config.limits, destinations, stopwatch })
    }

    /// The destinations rules may name.
    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    /// The engine (for `check`'s analysis).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a rule's `when` and `then`.
    ///
    /// # Errors
    /// Syntax errors, located in the rule file.
    pub fn compile(&self, def: RuleDef) -> Result<CompiledRule, Vec<Diagnostic>> {
        // Names only (strict variables): constants would be folded into the script as unit.
        let mut scope = Scope::new();
        for name in variables(def.records) {
            scope.push_dynamic(name, Dynamic::UNIT);
        }
        let mut errors = Vec::new();
        let when = match &def.when {
            None => None,
            Some(w) => match self.engine.compile_expression_with_scope(&scope, &w.code) {
                Ok(ast) => Some(ast),
                Err(e) => {
                    errors.push(parse_diagnostic(w, &e));
                    None
                }
            },
        };
        let then = match self.engine.compile_with_scope(&scope, &def.then.code) {
            Ok(ast) => Some(ast),
            Err(e) => {
                errors.push(parse_diagnostic(&def.then, &e));
                None
            }
        };
        let fast = when
            .as_ref()
            .and_then(|ast| super::fast::compile(ast, def.records.as_str(), super::check::properties_of(def.records)));
        match then {
            Some(then) if errors.is_empty() => {
                let uses_deal = when.iter().chain(std::iter::once(&then)).any(|ast| reads_variable(ast, "deal"));
                Ok(CompiledRule { def, when, fast, then, uses_deal })
            }
            _ => Err(errors),
        }
    }

    /// Evaluates `rule` on one record: does it match, and if so, what should happen. Performs no
    /// I/O; a failure concerns this rule and record only.
    ///
    /// # Errors
    /// [`EvalError`] when the script fails or hits a limit.
    pub fn evaluate(&self, rule: &CompiledRule, input: &Input<'_>) -> Result<Evaluation, EvalError> {
        let decided = rule.fast.as_ref().and_then(|fast| {
            fast.test(&super::fast::Env { subject: input.subject, change: input.change, today: input.today() })
        });
        if decided == Some(false) {
            return Ok(Evaluation { matched: false, intents: Vec::new() });
        }
        self.evaluate_in_rhai(rule, input, decided)
    }

    /// Evaluates `rule` with rhai only (for the differential test of the native `when`).
    #[doc(hidden)]
    pub fn evaluate_without_fast_path(&self, rule: &CompiledRule, input: &Input<'_>) -> Result<Evaluation, EvalError> {
        self.evaluate_in_rhai(rule, input, None)
    }

    /// Whether the rule's `when` runs natively.
    pub fn has_fast_path(rule: &CompiledRule) -> bool {
        rule.fast.is_some()
    }

    fn evaluate_in_rhai(
        &self,
        rule: &CompiledRule,
        input: &Input<'_>,
        decided: Option<bool>,
    ) -> Result<Evaluation, EvalError> {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.actions.clear();
            s.locale = input.locale;
            s.deadline = Some((self.stopwatch)() + self.limits.deadline);
            s.subject = Some(input.subject.key().clone());
            s.too_many = false;
        });
        let result = SCOPE.with(|scope| {
            let mut scope = scope.borrow_mut();
            self.fill_scope(&mut scope, rule, input);
            let matched = match (&rule.when, decided) {
                (_, Some(known)) => known,
                (None, None) => true,
                (Some(when), None) => {
                    let value: Dynamic = self
                        .engine
                        .eval_ast_with_scope(&mut scope, when)
                        .map_err(|e| self.error(rule.def.when.as_ref(), &e))?;
                    value.as_bool().map_err(|t| EvalError {
                        limit: false,
                        at: rule.def.when.as_ref().map(|w| Span { line: w.line, col: w.col }),
                        message: format!("`when` must be true or false, not {t}"),
                    })?
                }
            };
            if matched {
                self.engine
                    .run_ast_with_scope(&mut scope, &rule.then)
                    .map_err(|e| self.error(Some(&rule.def.then), &e))?;
            }
            Ok(matched)
        });
        let (actions, too_many) = STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.deadline = None;
            (std::mem::take(&mut s.actions), s.too_many)
        });
        // Too many actions is a limit, whether or not the script caught the constructor's error.
        if too_many {
            return Err(EvalError {
                limit: true,
                at: result.err().and_then(|e: EvalError| e.at),
                message: format!("more than {} actions in one evaluation", self.limits.actions),
            });
        }
        let matched = result?;
        let intents = if actions.is_empty() {
            Vec::new()
        } else {
            let seen = super::seen::Seen::of(input.subject, input.today());
            actions
                .into_iter()
                .map(|action| Intent {
                    rule: rule.def.id.to_string(),
                    version: rule.def.version.clone(),
                    cause: input.cause.clone(),
                    record: input.subject.key().clone().into(),
                    seen: seen.clone(),
                    action,
                })
                .collect()
        };
        Ok(Evaluation { matched, intents })
    }

    fn fill_scope(&self, scope: &mut Scope<'static>, rule: &CompiledRule, input: &Input<'_>) {
        scope.clear();
        let today = input.today();
        let record = match input.subject {
            Subject::Invoice(r, status) => Dynamic::from(InvoiceView { record: r.clone(), status: *status, today }),
            Subject::Bill(r, status) => Dynamic::from(BillView { record: r.clone(), status: *status, today }),
            Subject::Payment(r, status) => Dynamic::from(PaymentView { record: r.clone(), status: *status }),
            Subject::Deposit(r) => Dynamic::from(DepositView { record: r.clone() }),
        };
        let change = input.change.map_or(Dynamic::UNIT, |c| {
            let value = |v: &Option<String>| super::types::change_value(c.property, v.as_deref(), input.subject);
            Dynamic::from(ChangeView { property: c.property.as_str().into(), from: value(&c.old), to: value(&c.new) })
        });
        let [kind, alias, change_name, now, today_name, deal] = variables(rule.def.records);
        scope.push_constant_dynamic(kind, record.clone());
        scope.push_constant_dynamic(alias, record);
        scope.push_constant_dynamic(change_name, change);
        scope.push_constant_dynamic(now, Dynamic::from(Moment { at: input.now, zone: input.zone }));
        scope.push_constant_dynamic(today_name, Dynamic::from(today));
        scope.push_constant_dynamic(deal, input.deal.map_or(Dynamic::UNIT, |d| Dynamic::from(d.clone())));
    }

    fn error(&self, snippet: Option<&Snippet>, e: &EvalAltResult) -> EvalError {
        let (limit, message) = describe(e, &self.limits);
        EvalError { limit, at: snippet.and_then(|s| located(s, e.position())), message }
    }
}

/// Whether `ast` reads variable `name`.
fn reads_variable(ast: &AST, name: &str) -> bool {
    let mut found = false;
    ast.walk(&mut |path: &[rhai::ASTNode]| {
        if let Some(rhai::ASTNode::Expr(rhai::Expr::Variable(v, _, _))) = path.last()
            && v.1.as_str() == name
        {
            found = true;
        }
        !found
    });
    found
}

/// Records an action from a constructor; false when the evaluation already has too many.
pub(crate) fn push_action(action: Action, max: usize) -> bool {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.actions.len() >= max {
            s.too_many = true;
            return false;
        }
        s.actions.push(action);
        true
    })
}

/// The record being evaluated on this thread.
pub(crate) fn current_subject() -> Option<crate::ids::RecordKey> {
    STATE.with(|s| s.borrow().subject.clone())
}

fn located(snippet: &Snippet, pos: Position) -> Option<Span> {
    let line = pos.line()?;
    let (line, col) = snippet.file_position(line, pos.position().unwrap_or(1));
    Some(Span { line, col })
}

/// rhai's message without its trailing ` (line 1, position 40)`: diagnostics give the file's own.
fn without_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// More `{` than `}` outside string literals (interpolations `${…}` are balanced by their own).
fn unclosed_brace(code: &str) -> bool {
    let (mut depth, mut quote) = (0_i64, None::<char>);
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{') => depth += 1,
            (None, '}') => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

fn parse_diagnostic(snippet: &Snippet, e: &rhai::ParseError) -> Diagnostic {
    let at = located(snippet, e.position()).unwrap_or(Span { line: snippet.line, col: snippet.col });
    let message = match &*e.0 {
        rhai::ParseErrorType::ExprTooDeep => "expression nested too deeply (limit reached)".to_owned(),
        rhai::ParseErrorType::VariableUndefined(name) => format!("unknown variable `{name}`"),
        // At the end of a block left open, rhai first misses the `;` of its last statement.
        rhai::ParseErrorType::MissingToken(token, _) if token == ";" && unclosed_brace(&snippet.code) => {
            "Expecting '}' to terminate this block".to_owned()
        }
        other => other.to_string(),
    };
    Diagnostic::error(at, message)
}

/// (is a limit, plain message) for a rhai failure.
fn describe(e: &EvalAltResult, limits: &Limits) -> (bool, String) {
    use EvalAltResult as E;
    match e {
        E::ErrorTerminated(token, _) if token.clone().try_cast::<ImmutableString>().is_some_and(|t| t == DEADLINE) => {
            (true, format!("took longer than the {} ms limit", limits.deadline.as_millis()))
        }
        E::ErrorTooManyOperations(_) => (true, format!("exceeded the limit of {} operations", limits.operations)),
        E::ErrorStackOverflow(_) => (true, format!("calls nested deeper than the limit of {}", limits.call_levels)),
        E::ErrorDataTooLarge(what, _) => {
            let what = what.to_ascii_lowercase();
            let message = if what.contains("string") {
                format!("a string grew past the limit of {} bytes", limits.string_size)
            } else if what.contains("array") {
                format!("an array grew past the limit of {} items", limits.array_size)
            } else if what.contains("map") {
                format!("a map grew past the limit of {} entries", limits.map_size)
            } else {
                format!("{what} exceeds its limit")
            };
            (true, message)
        }
        E::ErrorTooManyModules(_) => (true, format!("imported more than the limit of {} modules", limits.modules)),
        E::ErrorInFunctionCall(name, _, inner, _) => {
            let (limit, message) = describe(inner, limits);
            (limit, format!("in {name}: {message}"))
        }
        E::ErrorInModule(name, inner, _) => {
            let (limit, message) = describe(inner, limits);
            (limit, format!("in module {name}: {message}"))
        }
        E::ErrorRuntime(value, _) => (false, value.to_string()),
        E::ErrorDotExpr(message, _) => (false, message.clone()),
        E::ErrorMismatchDataType(wanted, got, _) => (false, format!("expected {wanted}, got {got}")),
        E::ErrorFunctionNotFound(signature, _) => (false, format!("no function {signature}")),
        E::ErrorPropertyNotFound(name, _) => (false, format!("no property `{name}`")),
        E::ErrorModuleNotFound(name, _) => (false, format!("no module {name:?} in the rules library")),
        other => (false, without_position(&other.to_string())),
    }
}
