//! The rules directory: rule files (`*.toml`), their tests (`*.test.toml`) and the library
//! (`lib/*.rhai`), read from disk and handed to the pure rule host.

use std::path::{Path, PathBuf};

use invoiceflow_rules::script::check::{Checked, check_rule};
use invoiceflow_rules::script::{CompiledRule, Destinations, Diagnostic, HostConfig, Limits, RuleHost, RuleId};

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

/// What one [`RuleSet::reload`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new rule file, compiled.
    Added {
        /// The rule.
        rule: String,
        /// Its version.
        version: String,
    },
    /// An edited rule file, compiled: the new version replaces the old.
    Updated {
        /// The rule.
        rule: String,
        /// The version it replaced.
        from: String,
        /// The version now running.
        to: String,
    },
    /// A rule file was removed: the rule stops.
    Removed {
        /// The rule.
        rule: String,
    },
    /// A rule file that does not compile: the previous version, if any, keeps running.
    Rejected {
        /// The rule.
        rule: String,
        /// The version still running, if there was one.
        kept: Option<String>,
        /// Its diagnostics, printed.
        errors: Vec<String>,
    },
}

/// The rules a running engine evaluates, kept in step with the rules directory by
/// [`RuleSet::reload`]: added, edited and removed files are picked up; an edit that does not
/// compile leaves the previous version running.
pub struct RuleSet {
    dir: PathBuf,
    /// The rules running, in id order (as the engine takes them: a slice).
    rules: Vec<CompiledRule>,
    /// Files seen, by rule id, with the hash of their text: a file is read again only when it
    /// changed, and a rejected text is reported once.
    seen: std::collections::BTreeMap<String, String>,
}

impl RuleSet {
    /// An empty set over `dir`; the first [`RuleSet::reload`] loads it.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, rules: Vec::new(), seen: Default::default() }
    }

    /// The rules running now, in id order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Where rule `id` is in [`Self::rules`], or would be.
    fn position(&self, id: &str) -> Result<usize, usize> {
        self.rules.binary_search_by(|r| r.def.id.as_str().cmp(id))
    }

    /// Checks every file again at the next [`RuleSet::reload`], even unchanged (the library
    /// they may import changed).
    pub fn forget_seen(&mut self) {
        self.seen.clear();
    }

    /// Reads the directory again and applies what changed.
    ///
    /// # Errors
    /// [`RulebookError::Read`] when the directory or a file cannot be read; nothing changes then.
    pub fn reload(&mut self, host: &RuleHost) -> Result<Vec<Reloaded>, RulebookError> {
        let mut texts = std::collections::BTreeMap::new();
        for path in files(&self.dir, |n| n.ends_with(".toml") && !n.ends_with(".test.toml"))? {
            let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            texts.insert(id, (read(&path)?, path));
        }
        let mut changes = Vec::new();
        let gone: Vec<String> = self.rules.iter().map(|r| r.def.id.as_str().to_owned()).collect();
        for id in gone.into_iter().filter(|id| !texts.contains_key(id)) {
            if let Ok(at) = self.position(&id) {
                self.rules.remove(at);
                changes.push(Reloaded::Removed { rule: id });
            }
        }
        self.seen.retain(|id, _| texts.contains_key(id));
        for (id, (text, path)) in texts {
            let hash = invoiceflow_rules::script::def::content_hash(&text);
            if self.seen.get(&id) == Some(&hash) {
                continue;
            }
            self.seen.insert(id.clone(), hash);
            let checked = check_rule(host, RuleId::new(id.as_str()), &text);
            let at = self.position(&id);
            let kept = at.ok().map(|at| self.rules[at].def.version.clone());
            match checked.rule {
                Some(rule) => {
                    let to = rule.def.version.clone();
                    match at {
                        Ok(at) => self.rules[at] = rule,
                        Err(at) => self.rules.insert(at, rule),
                    }
                    changes.push(match kept {
                        Some(from) => Reloaded::Updated { rule: id, from, to },
                        None => Reloaded::Added { rule: id, version: to },
                    });
                }
                None => {
                    let name = path.display().to_string();
                    let errors = checked.diagnostics.iter().map(|d| d.render(&name, &text)).collect();
                    changes.push(Reloaded::Rejected { rule: id, kept, errors });
                }
            }
        }
        Ok(changes)
    }
}

/// What the rule files and the library looked like: each file's path, size and modification
/// time. Cheap to take (no file is read), so it is compared at every planning tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, u64, Option<std::time::SystemTime>)>);

impl Fingerprint {
    fn of(paths: Vec<PathBuf>) -> Self {
        Self(
            paths
                .into_iter()
                .map(|p| {
                    let meta = std::fs::metadata(&p).ok();
                    let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                    (p, len, meta.and_then(|m| m.modified().ok()))
                })
                .collect(),
        )
    }
}

/// The rules of a long-running engine: the configured directory and library, reloaded when
/// their files change (size or modification time) or when asked ([`LiveRules::refresh`] with
/// `force`, on SIGHUP). A rule file that no longer compiles leaves its previous version running;
/// a library that no longer compiles leaves every rule as it was.
pub struct LiveRules {
    config: Config,
    dir: PathBuf,
    library: PathBuf,
    host: RuleHost,
    set: RuleSet,
    rules: Fingerprint,
    modules: Fingerprint,
}

/// What one [`LiveRules::refresh`] did.
#[derive(Debug)]
pub enum Refreshed {
    /// The rule files, as [`RuleSet::reload`] says.
    Rules(Vec<Reloaded>),
    /// The library changed and compiles: every rule was checked again with it.
    Library(Vec<Reloaded>),
    /// The library changed and does not compile: the previous one and every rule keep running.
    LibraryRejected(RulebookError),
}

impl LiveRules {
    /// The rules of `config`'s rules directory, loaded; `None` when there is no rules directory
    /// (no configuration file and no `[rules] dir`). A directory that does not exist yet holds
    /// no rules until it does.
    ///
    /// # Errors
    /// [`RulebookError`] when the directory cannot be read or the library does not compile.
    pub fn open(config: &Config) -> Result<Option<(Self, Vec<Reloaded>)>, RulebookError> {
        let Some((dir, library)) = &config.rules.dirs else { return Ok(None) };
        // Taken before the files are read: an edit in between is seen at the next refresh.
        let modules = Fingerprint::of(files(library, |n| n.ends_with(".rhai"))?);
        let mut live = Self {
            config: config.clone(),
            dir: dir.clone(),
            library: library.clone(),
            host: host(config, library)?,
            set: RuleSet::new(dir.clone()),
            rules: Fingerprint::default(),
            modules,
        };
        let loaded = match live.refresh(true)? {
            Refreshed::Rules(changes) | Refreshed::Library(changes) => changes,
            Refreshed::LibraryRejected(e) => return Err(e),
        };
        Ok(Some((live, loaded)))
    }

    /// The rule host the rules were compiled with.
    pub fn host(&self) -> &RuleHost {
        &self.host
    }

    /// The rules running now, in id order.
    pub fn rules(&self) -> &[CompiledRule] {
        self.set.rules()
    }

    /// Picks up what changed since the last call: nothing is read unless a file's size or
    /// modification time changed, or `force`.
    ///
    /// # Errors
    /// [`RulebookError::Read`] when the directory or a file cannot be read; nothing changes then.
    pub fn refresh(&mut self, force: bool) -> Result<Refreshed, RulebookError> {
        let rules = Fingerprint::of(files(&self.dir, |n| n.ends_with(".toml") && !n.ends_with(".test.toml"))?);
        let modules = Fingerprint::of(files(&self.library, |n| n.ends_with(".rhai"))?);
        if modules != self.modules {
            // Reported once: the next change of the library is tried again.
            self.modules = modules;
            match host(&self.config, &self.library) {
                Ok(host) => self.host = host,
                // The rule files are left for the next refresh, with the library still running.
                Err(e) => return Ok(Refreshed::LibraryRejected(e)),
            }
            self.set.forget_seen();
            let changes = self.set.reload(&self.host)?;
            self.rules = rules;
            return Ok(Refreshed::Library(changes));
        }
        if !force && rules == self.rules {
            return Ok(Refreshed::Rules(Vec::new()));
        }
        let changes = self.set.reload(&self.host)?;
        self.rules = rules;
        Ok(Refreshed::Rules(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str =
        "name = \"Paid\"\non = { change = \"status\", to = \"paid\" }\nthen = 'slack(\"finance\", \"paid\")'\n";

    fn host() -> RuleHost {
        let config = HostConfig {
            destinations: Destinations { slack: ["finance".to_owned()].into(), ..Default::default() },
            library: Vec::new(),
            limits: Limits::default(),
            stopwatch: std::time::Instant::now,
        };
        RuleHost::new(config).map_err(|e| format!("{e:?}")).expect("host")
    }

    #[test]
    fn reload_follows_added_edited_broken_and_removed_files() {
        let dir = tempfile::tempdir().expect("dir");
        let host = host();
        let mut set = RuleSet::new(dir.path().to_owned());
        assert_eq!(set.reload(&host).expect("empty"), vec![]);
        let file = dir.path().join("paid.toml");
        std::fs::write(&file, RULE).expect("write");
        let changes = set.reload(&host).expect("add");
        let [Reloaded::Added { rule, version: v1 }] = changes.as_slice() else { panic!("{changes:?}") };
        assert_eq!(rule, "paid");
        let v1 = v1.clone();
        assert_eq!(set.reload(&host).expect("again"), vec![], "an unchanged file is not read again");

        std::fs::write(&file, RULE.replace("{ change", "{ chang")).expect("break");
        let changes = set.reload(&host).expect("broken");
        let [Reloaded::Rejected { kept, errors, .. }] = changes.as_slice() else { panic!("{changes:?}") };
        assert_eq!(kept.as_deref(), Some(v1.as_str()), "the previous version keeps running");
        assert!(errors[0].contains("paid.toml:2:"), "{errors:?}");
        assert_eq!(set.rules()[0].def.version, v1);
        assert_eq!(set.reload(&host).expect("same broken text"), vec![], "reported once");

        std::fs::write(&file, RULE.replace("\"paid\")'", "\"paid!\")'")).expect("fix");
        let changes = set.reload(&host).expect("fixed");
        let [Reloaded::Updated { from, to, .. }] = changes.as_slice() else { panic!("{changes:?}") };
        assert_eq!(from, &v1);
        assert_eq!(&set.rules()[0].def.version, to);

        std::fs::write(dir.path().join("paid.test.toml"), "").expect("tests are not rules");
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(set.reload(&host).expect("removed"), vec![Reloaded::Removed { rule: "paid".into() }]);
        assert!(set.rules().is_empty());
    }

    #[test]
    fn live_rules_follow_the_library_and_keep_everything_when_it_breaks() {
        let dir = tempfile::tempdir().expect("dir");
        let config_path = dir.path().join("invoiceflow.toml");
        std::fs::write(&config_path, "[destinations.finance]\nslack = \"file:sent.jsonl\"\n").expect("config");
        let config = Config::load(Some(&config_path)).expect("config");
        std::fs::create_dir_all(dir.path().join("rules/lib")).expect("dirs");
        let module = dir.path().join("rules/lib/util.rhai");
        std::fs::write(&module, "fn word() { \"paid\" }").expect("module");
        let rule =
            RULE.replace("'slack(\"finance\", \"paid\")'", "'import \"util\" as u; slack(\"finance\", u::word())'");
        std::fs::write(dir.path().join("rules/paid.toml"), &rule).expect("rule");
        let (mut live, loaded) = LiveRules::open(&config).expect("open").expect("a rules directory");
        assert!(matches!(loaded.as_slice(), [Reloaded::Added { .. }]), "{loaded:?}");
        assert!(
            matches!(live.refresh(false).expect("refresh"), Refreshed::Rules(c) if c.is_empty()),
            "nothing changed"
        );

        std::fs::write(&module, "fn word() { \"paid\" ").expect("break the library");
        let Refreshed::LibraryRejected(e) = live.refresh(false).expect("refresh") else { panic!("accepted") };
        assert!(e.to_string().contains("util.rhai:1:"), "names the file and line: {e}");
        assert_eq!(live.rules().len(), 1, "the rule keeps running");

        std::fs::write(&module, "fn word() { \"paid in full\" }").expect("fix the library");
        let Refreshed::Library(changes) = live.refresh(false).expect("refresh") else { panic!("not the library") };
        assert!(matches!(changes.as_slice(), [Reloaded::Updated { .. }]), "{changes:?}");
        std::fs::remove_file(dir.path().join("rules/paid.toml")).expect("remove");
        let Refreshed::Rules(changes) = live.refresh(false).expect("refresh") else { panic!("not the rules") };
        assert_eq!(changes, vec![Reloaded::Removed { rule: "paid".into() }]);
    }
}
