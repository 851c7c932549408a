//! Diagnostics about rule files: located, with the source line and a caret when printed.

use std::fmt::Write as _;

/// A position in a file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
}

impl Span {
    /// The start of the file.
    pub fn start() -> Self {
        Self { line: 1, col: 1 }
    }

    /// The position of byte `offset` of `text`.
    pub fn at_offset(text: &str, offset: usize) -> Self {
        let before = text.get(..offset.min(text.len())).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Self { line, col }
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The rule cannot run.
    Error,
    /// The rule runs, but probably not as meant.
    Warning,
}

/// One finding about a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where.
    pub span: Span,
    /// What, in plain words.
    pub message: String,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: String) -> Self {
        Self { severity: Severity::Error, span, message }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: String) -> Self {
        Self { severity: Severity::Warning, span, message }
    }

    /// `file:line:col: error: message`, then the source line and a caret under the column.
    pub fn render(&self, file: &str, text: &str) -> String {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{file}:{}:{}: {label}: {}\n", self.span.line, self.span.col, self.message);
        if let Some(source) = text.lines().nth(self.span.line.saturating_sub(1)) {
            let gutter = self.span.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret: String = source
                .chars()
                .take(self.span.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(out, "{pad} |\n{gutter} | {source}\n{pad} | {caret}^\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(Span::at_offset(text, 0), Span { line: 1, col: 1 });
        assert_eq!(Span::at_offset(text, 4), Span { line: 2, col: 2 });
        assert_eq!(Span::at_offset(text, "ab\ncdé\n".len()), Span { line: 3, col: 1 });
    }

    #[test]
    fn renders_the_line_and_a_caret() {
        let d = Diagnostic::error(Span { line: 2, col: 5 }, "unknown property `amout`".into());
        assert_eq!(
            d.render("r.toml", "x\nwhen = 'invoice.amout'\n"),
            "r.toml:2:5: error: unknown property `amout`\n  |\n2 | when = 'invoice.amout'\n  |     ^\n"
        );
    }
}
