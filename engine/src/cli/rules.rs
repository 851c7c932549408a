//! `invoiceflow check [DIR]` and `invoiceflow test [DIR]`: rule files, checked and tested without
//! a database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use invoiceflow::config::Config;
use invoiceflow::rulebook::{self, Reloaded, RuleFile};
use invoiceflow_rules::script::testcase::run_cases;
use invoiceflow_rules::script::{CompiledRule, RuleHost, Severity};

#[derive(Debug, Args)]
pub(crate) struct DirArgs {
    /// The rules directory (default: `[rules] dir` of the configuration, `rules`).
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Keep running and report each rule file added, edited or removed, as a running engine
    /// picks it up: an edit that does not compile is reported and the previous version kept.
    #[arg(long)]
    watch: bool,
}

/// `check`, once or `--watch`ing.
pub(crate) async fn check_command(args: &CheckArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if !args.watch {
        return check(&args.dir, config);
    }
    let (dir, library) = args.dir.paths(config);
    if !dir.is_dir() {
        anyhow::bail!("{}: no such rules directory", dir.display());
    }
    let host = rulebook::host(config, &library)?;
    let mut set = rulebook::RuleSet::new(dir.clone());
    out!("watching {} (Ctrl-C to stop)", dir.display());
    loop {
        for change in set.reload(&host)? {
            match change {
                Reloaded::Added { rule, version } => out!("added rule {rule} ({version})"),
                Reloaded::Updated { rule, from, to } => out!("updated rule {rule}: {from} → {to}"),
                Reloaded::Removed { rule } => out!("removed rule {rule}"),
                Reloaded::Rejected { rule, kept, errors } => {
                    for e in errors {
                        out!("{e}");
                    }
                    match kept {
                        Some(version) => out!("rule {rule} does not compile: version {version} keeps running"),
                        None => out!("rule {rule} does not compile: not running"),
                    }
                }
            }
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

impl DirArgs {
    /// The directory and the library beside it.
    fn paths(&self, config: &Config) -> (PathBuf, PathBuf) {
        match &self.dir {
            Some(dir) => (dir.clone(), dir.join("lib")),
            None => match &config.rules.dirs {
                Some((dir, library)) => (dir.clone(), library.clone()),
                None => (PathBuf::from("rules"), PathBuf::from("rules/lib")),
            },
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
    let Some((dir, library)) = &config.rules.dirs else { return Ok(None) };
    if !dir.is_dir() {
        return Ok(None);
    }
    let host = rulebook::host(config, library)?;
    let mut rules = Vec::new();
    for file in rulebook::load(&host, dir)? {
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
