//! `invoiceflow check [DIR]` and `invoiceflow test [DIR]`: rule files, checked and tested without
//! a database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use invoiceflow::config::Config;
use invoiceflow::rulebook::{self, RuleFile};
use invoiceflow_rules::script::testcase::run_cases;
use invoiceflow_rules::script::{CompiledRule, RuleHost, Severity};

#[derive(Debug, Args)]
pub(crate) struct DirArgs {
    /// The rules directory (default: `[rules] dir` of the configuration, `rules`).
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl DirArgs {
    /// The directory and the library beside it.
    fn paths(&self, config: &Config) -> (PathBuf, PathBuf) {
        match &self.dir {
            Some(dir) => (dir.clone(), dir.join("lib")),
            None => (config.rules.dir.clone(), config.rules.library.clone()),
        }
    }
}

fn load(args: &DirArgs, config: &Config) -> anyhow::Result<(PathBuf, RuleHost, Vec<RuleFile>)> {
    let (dir, library) = args.paths(config);
    if !dir.is_dir() {
        anyhow::bail!("{}: no such rules directory (set [rules] dir in invoiceflow.toml, or name one)", dir.display());
    }
    let host = rulebook::host(config, &library)?;
    let rules = rulebook::load(&host, &dir)?;
    Ok((dir, host, rules))
}

/// The rules of the configured directory that compile, for commands that run them; `None` when
/// there is no rules directory. Rules with errors are skipped with a warning.
pub(crate) fn runnable(config: &Config) -> anyhow::Result<Option<(RuleHost, Vec<CompiledRule>)>> {
    if !config.rules.dir.is_dir() {
        return Ok(None);
    }
    let host = rulebook::host(config, &config.rules.library)?;
    let mut rules = Vec::new();
    for file in rulebook::load(&host, &config.rules.dir)? {
        match file.checked.rule {
            Some(rule) => rules.push(rule),
            None => {
                eprintln!("warning: {} does not compile and is skipped (see `invoiceflow check`)", file.path.display())
            }
        }
    }
    Ok(Some((host, rules)))
}

/// Offers the changes recorded since the last pass to the change-triggered rules, and says what
/// they decided.
pub(crate) async fn evaluate_changes<S: invoiceflow::store::Store>(env: &super::Env, store: &S) -> anyhow::Result<()> {
    let Some((host, rules)) = runnable(&env.config)? else {
        invoiceflow::evaluate::skip_to_latest(store, &env.clock).await?;
        return Ok(());
    };
    let done = invoiceflow::evaluate::changes(store, &host, &rules, &env.clock, env.config.rules.locale).await?;
    if done.intents > 0 || done.failures > 0 {
        let mut line = format!(
            "rules: {} evaluated, {} decided",
            plural(done.events as usize, "change"),
            plural(done.intents as usize, "action")
        );
        if done.failures > 0 {
            line.push_str(&format!(", {} failed", plural(done.failures as usize, "evaluation")));
        }
        out!("{line} (see `invoiceflow actions`)");
    }
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `check`: every rule compiles, names real properties and destinations, has a valid schedule.
pub(crate) fn check(args: &DirArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let (dir, _host, rules) = load(args, config)?;
    let (mut errors, mut warnings) = (0, 0);
    for rule in &rules {
        for d in &rule.checked.diagnostics {
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
        let rendered = rule.rendered();
        if rendered.is_empty() {
            out!("{}: ok", rule.path.display());
        }
        for r in rendered {
            out!("{r}");
        }
    }
    out!(
        "checked {} in {}: {}, {}",
        plural(rules.len(), "rule"),
        dir.display(),
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `test`: every case of every rule's `NAME.test.toml`.
pub(crate) fn test(args: &DirArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let (dir, host, rules) = load(args, config)?;
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for rule in &rules {
        let tests = rule.test_path();
        let Some(compiled) = &rule.checked.rule else {
            broken += 1;
            out!("{}: does not compile (run `invoiceflow check`)", rule.path.display());
            continue;
        };
        let text = match std::fs::read_to_string(&tests) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out!("{}: no tests (write them in {})", rule.path.display(), name(&tests));
                continue;
            }
            Err(e) => anyhow::bail!("cannot read {}: {e}", tests.display()),
        };
        out!("{}", tests.display());
        match run_cases(&host, compiled, &text) {
            Err(diagnostics) => {
                broken += 1;
                for d in diagnostics {
                    out!("{}", d.render(&tests.display().to_string(), &text));
                }
            }
            Ok(cases) => {
                for case in cases {
                    match case.failure {
                        None => {
                            passed += 1;
                            out!("  ok    {}", case.name);
                        }
                        Some(why) => {
                            failed += 1;
                            out!("  FAIL  {} ({}:{})", case.name, tests.display(), case.span.line);
                            for line in why.lines() {
                                out!("        {line}");
                            }
                        }
                    }
                }
            }
        }
    }
    let mut summary =
        format!("{} in {}: {} passed, {} failed", plural(rules.len(), "rule"), dir.display(), passed, failed);
    if broken > 0 {
        summary.push_str(&format!(", {} broken", plural(broken, "file")));
    }
    out!("{summary}");
    Ok(if failed > 0 || broken > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
