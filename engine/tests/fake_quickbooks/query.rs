//! The part of QuickBooks' query language the engine speaks, parsed into a [`Statement`]:
//!
//! ```text
//! select * from <Entity>
//!   [where <condition> [and <condition>]…]
//!   [orderby Id | MetaData.LastUpdatedTime [asc | desc]]
//!   [startposition n] [maxresults m]
//! condition: Id in ('1', '2', …) | Id = '1' | MetaData.LastUpdatedTime (>= | > | <= | < | =) '<instant>'
//! ```
//!
//! Keywords, entity and field names are case-insensitive; literals are single-quoted (`\'` escapes
//! a quote). Anything else is refused, so a test notices the engine sending it.

use chrono::{DateTime, Utc};

use super::faults::parse_instant;
use super::state::Kind;

/// QuickBooks' page size when the statement names none, and the most it returns.
pub(crate) const DEFAULT_MAX_RESULTS: usize = 100;
pub(crate) const MAX_MAX_RESULTS: usize = 1000;

/// A parsed `select`.
#[derive(Debug, PartialEq)]
pub(crate) struct Statement {
    pub kind: Kind,
    pub conditions: Vec<Condition>,
    pub order: Option<Order>,
    /// 1-based.
    pub start: usize,
    /// At most [`MAX_MAX_RESULTS`].
    pub max: usize,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Condition {
    IdIn(Vec<String>),
    Updated(Comparison, DateTime<Utc>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Field {
    Id,
    LastUpdatedTime,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Order {
    pub field: Field,
    pub descending: bool,
}

impl Statement {
    /// The ids an `Id in (…)` (or `Id = …`) condition allows, when the statement has one.
    pub fn ids(&self) -> Option<&[String]> {
        self.conditions.iter().find_map(|c| match c {
            Condition::IdIn(ids) => Some(ids.as_slice()),
            Condition::Updated(..) => None,
        })
    }

    /// Whether an entity with this id and last update satisfies every condition.
    pub fn matches(&self, id: &str, updated: DateTime<Utc>) -> bool {
        self.conditions.iter().all(|c| match c {
            Condition::IdIn(ids) => ids.iter().any(|i| i == id),
            Condition::Updated(cmp, t) => match cmp {
                Comparison::Less => updated < *t,
                Comparison::LessOrEqual => updated <= *t,
                Comparison::Equal => updated == *t,
                Comparison::GreaterOrEqual => updated >= *t,
                Comparison::Greater => updated > *t,
            },
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    /// A keyword, name or number (`select`, `*`, `MetaData.LastUpdatedTime`, `100`).
    Word(String),
    /// A quoted literal, unquoted.
    Text(String),
    /// `(`, `)`, `,` or a comparison.
    Symbol(&'static str),
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut literal = String::new();
            loop {
                match chars.next() {
                    Some('\\') => literal.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => literal.push(c),
                    None => return Err("unterminated literal".into()),
                }
            }
            out.push(Token::Text(literal));
        } else if let Some(symbol) = [">=", "<=", "(", ")", ",", "=", "<", ">"]
            .into_iter()
            .find(|s| chars.clone().take(s.len()).collect::<String>() == *s)
        {
            chars.nth(symbol.len() - 1);
            out.push(Token::Symbol(symbol));
        } else if c.is_alphanumeric() || matches!(c, '_' | '.' | '*') {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '*')) {
                word.push(c);
                chars.next();
            }
            out.push(Token::Word(word));
        } else {
            return Err(format!("Encountered \"{c}\""));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), String> {
        if self.peek_keyword(keyword) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {keyword}, found {}", self.describe()))
        }
    }

    fn symbol(&mut self, symbol: &str) -> Result<(), String> {
        match self.tokens.get(self.at) {
            Some(Token::Symbol(s)) if *s == symbol => {
                self.at += 1;
                Ok(())
            }
            _ => Err(format!("expected \"{symbol}\", found {}", self.describe())),
        }
    }

    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            _ => Err(format!("expected a name, found {}", self.describe_previous())),
        }
    }

    fn text(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Text(t)) => Ok(t),
            _ => Err(format!("expected a quoted literal, found {}", self.describe_previous())),
        }
    }

    fn number(&mut self) -> Result<usize, String> {
        let word = self.word()?;
        word.parse().map_err(|_| format!("expected a number, found \"{word}\""))
    }

    fn describe(&self) -> String {
        match self.tokens.get(self.at) {
            Some(Token::Word(w)) => format!("\"{w}\""),
            Some(Token::Text(t)) => format!("'{t}'"),
            Some(Token::Symbol(s)) => format!("\"{s}\""),
            None => "the end".into(),
        }
    }

    fn describe_previous(&mut self) -> String {
        self.at -= 1;
        self.describe()
    }

    fn field(&mut self) -> Result<Field, String> {
        let name = self.word()?;
        if name.eq_ignore_ascii_case("Id") {
            Ok(Field::Id)
        } else if name.eq_ignore_ascii_case("MetaData.LastUpdatedTime") {
            Ok(Field::LastUpdatedTime)
        } else {
            Err(format!("the fake cannot filter or order on \"{name}\""))
        }
    }

    fn condition(&mut self) -> Result<Condition, String> {
        match self.field()? {
            Field::Id if self.peek_keyword("in") => {
                self.at += 1;
                self.symbol("(")?;
                let mut ids = vec![self.text()?];
                while self.symbol(",").is_ok() {
                    ids.push(self.text()?);
                }
                self.symbol(")")?;
                Ok(Condition::IdIn(ids))
            }
            Field::Id => {
                self.symbol("=")?;
                Ok(Condition::IdIn(vec![self.text()?]))
            }
            Field::LastUpdatedTime => {
                let cmp = match self.next() {
                    Some(Token::Symbol("<")) => Comparison::Less,
                    Some(Token::Symbol("<=")) => Comparison::LessOrEqual,
                    Some(Token::Symbol("=")) => Comparison::Equal,
                    Some(Token::Symbol(">=")) => Comparison::GreaterOrEqual,
                    Some(Token::Symbol(">")) => Comparison::Greater,
                    _ => return Err(format!("expected a comparison, found {}", self.describe_previous())),
                };
                let literal = self.text()?;
                let t = parse_instant(&literal).ok_or_else(|| format!("'{literal}' is not a date-time"))?;
                Ok(Condition::Updated(cmp, t))
            }
        }
    }
}

/// Parses a statement; the error says what the parser met instead of what it expected.
pub(crate) fn parse(text: &str) -> Result<Statement, String> {
    let mut p = Parser { tokens: tokens(text)?, at: 0 };
    p.keyword("select")?;
    if p.word()? != "*" {
        return Err("the fake only answers select *".into());
    }
    p.keyword("from")?;
    let entity = p.word()?;
    let kind = Kind::from_name(&entity).ok_or_else(|| format!("the fake keeps no entity \"{entity}\""))?;
    let mut statement = Statement { kind, conditions: Vec::new(), order: None, start: 1, max: DEFAULT_MAX_RESULTS };
    if p.peek_keyword("where") {
        p.at += 1;
        statement.conditions.push(p.condition()?);
        while p.peek_keyword("and") {
            p.at += 1;
            statement.conditions.push(p.condition()?);
        }
    }
    if p.peek_keyword("orderby") {
        p.at += 1;
        let field = p.field()?;
        let descending = p.peek_keyword("desc");
        if descending || p.peek_keyword("asc") {
            p.at += 1;
        }
        statement.order = Some(Order { field, descending });
    }
    if p.peek_keyword("startposition") {
        p.at += 1;
        statement.start = p.number()?;
        if statement.start == 0 {
            return Err("STARTPOSITION counts from 1".into());
        }
    }
    if p.peek_keyword("maxresults") {
        p.at += 1;
        statement.max = p.number()?.min(MAX_MAX_RESULTS);
    }
    if p.at < p.tokens.len() {
        return Err(format!("Encountered {} after the statement", p.describe()));
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_statements_the_engine_sends() {
        let by_ids = parse("select * from Invoice where Id in ('1', '2','3') MAXRESULTS 3").unwrap();
        assert_eq!(by_ids.kind, Kind::Invoice);
        assert_eq!(by_ids.conditions, vec![Condition::IdIn(vec!["1".into(), "2".into(), "3".into()])]);
        assert_eq!((by_ids.start, by_ids.max), (1, 3));

        let window = parse(
            "SELECT * FROM bill WHERE MetaData.LastUpdatedTime >= '2026-11-01T00:00:00-08:00' \
             and metadata.lastupdatedtime < '2026-11-02T00:00:00Z' ORDERBY MetaData.LastUpdatedTime \
             STARTPOSITION 101 MAXRESULTS 5000",
        )
        .unwrap();
        assert_eq!(window.kind, Kind::Bill);
        assert_eq!(window.conditions.len(), 2);
        assert_eq!(window.order, Some(Order { field: Field::LastUpdatedTime, descending: false }));
        assert_eq!((window.start, window.max), (101, MAX_MAX_RESULTS), "1000 at most");
        let t = |s| parse_instant(s).unwrap();
        assert!(window.matches("9", t("2026-11-01T08:00:00Z")));
        assert!(!window.matches("9", t("2026-11-02T00:00:00Z")), "the end is exclusive");
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for statement in [
            "select count(*) from Invoice",
            "select Id from Invoice",
            "select * from Customer",
            "select * from Invoice where Balance > '0'",
            "select * from Invoice where Id in (1, 2)",
            "select * from Invoice where MetaData.LastUpdatedTime >= 'yesterday'",
            "select * from Invoice where Id = '1' or Id = '2'",
            "select * from Invoice STARTPOSITION 0",
            "select * from Invoice where DocNumber = 'it''s'",
        ] {
            assert!(parse(statement).is_err(), "{statement}");
        }
    }
}
