//! The rules directory: rule files (`*.toml`), their tests (`*.test.toml`) and the library
//! (`lib/*.rhai`), read from disk and handed to the pure rule host.

use std::path::{Path, PathBuf};

use invoiceflow_rules::script::check::{Checked, check_rule};
use invoiceflow_rules::script::{Destinations, Diagnostic, HostConfig, Limits, RuleHost, RuleId};

use crate::config::{Config, Destination};

/// A rules-directory problem that stops everything (an unreadable directory or library).
#[derive(Debug, thiserror::Error)]
pub enum RulebookError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A library module does not compile.
    #[error("{}", .0.join("\n"))]
    Library(Vec<String>),
}

/// One rule file, checked.
pub struct RuleFile {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// What checking found, and the compiled rule when it has no errors.
    pub checked: Checked,
}

impl RuleFile {
    /// Its diagnostics, printed with the source line and a caret.
    pub fn rendered(&self) -> Vec<String> {
        let name = self.path.display().to_string();
        self.checked.diagnostics.iter().map(|d: &Diagnostic| d.render(&name, &self.text)).collect()
    }

    /// Its test file (`NAME.test.toml`), when there is one.
    pub fn test_path(&self) -> PathBuf {
        self.path.with_extension("test.toml")
    }
}

/// The destinations rules may name, from the configuration.
pub fn destinations(config: &Config) -> Destinations {
    let mut out = Destinations::default();
    for (name, d) in &config.destinations {
        match d {
            Destination::Slack { .. } => {
                out.slack.insert(name.clone());
            }
            Destination::Webhook { .. } => {
                out.webhook.insert(name.clone());
            }
            Destination::Email { to } => {
                out.email.insert(name.clone(), to.clone());
            }
        }
    }
    out
}

fn read(path: &Path) -> Result<String, RulebookError> {
    std::fs::read_to_string(path).map_err(|source| RulebookError::Read { path: path.to_owned(), source })
}

/// Files in `dir` whose name ends with `suffix`, sorted; none when `dir` does not exist.
fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, RulebookError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(RulebookError::Read { path: dir.to_owned(), source }),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    out.sort();
    Ok(out)
}

/// Builds the rule host: the configured destinations and the library in `library`.
///
/// # Errors
/// [`RulebookError`] when the library cannot be read or does not compile.
pub fn host(config: &Config, library: &Path) -> Result<RuleHost, RulebookError> {
    let mut modules = Vec::new();
    for path in files(library, |n| n.ends_with(".rhai"))? {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        modules.push((name, read(&path)?));
    }
    let config = HostConfig {
        destinations: destinations(config),
        library: modules,
        limits: Limits::default(),
        stopwatch: std::time::Instant::now,
    };
    RuleHost::new(config).map_err(|errors| {
        RulebookError::Library(
            errors
                .into_iter()
                .map(|(name, d)| {
                    let path = library.join(format!("{name}.rhai"));
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    d.render(&path.display().to_string(), &text)
                })
                .collect(),
        )
    })
}

/// Reads and checks every rule file in `dir` (`*.toml`, not `*.test.toml`).
///
/// # Errors
/// [`RulebookError::Read`] when the directory or a file cannot be read.
pub fn load(host: &RuleHost, dir: &Path) -> Result<Vec<RuleFile>, RulebookError> {
    let mut out = Vec::new();
    for path in files(dir, |n| n.ends_with(".toml") && !n.ends_with(".test.toml"))? {
        let text = read(&path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let checked = check_rule(host, RuleId::new(stem), &text);
        out.push(RuleFile { path, text, checked });
    }
    Ok(out)
}
