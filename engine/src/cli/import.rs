//! `invoiceflow import FILE|DIR|- …`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use invoiceflow::ingest::{self, ImportOptions, Source, Summary};
use invoiceflow::store::Store;
use invoiceflow_rules::AccountName;

use super::Env;

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Files of JSON lines or JSON documents, directories (their *.json and *.jsonl files, in name
    /// order), or `-` for standard input.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    sources: Vec<String>,
    /// The QuickBooks company records belong to when they name none (QuickBooks JSON never does).
    /// Default: the only company configured, else `default`.
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
}

fn expand(sources: &[String]) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    for s in sources {
        if s == "-" {
            out.push(Source::Stdin);
            continue;
        }
        let path = PathBuf::from(s);
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| anyhow::anyhow!("cannot read directory {s}: {e}"))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json" || x == "jsonl"))
                .collect();
            files.sort();
            if files.is_empty() {
                anyhow::bail!("directory {s} holds no .json or .jsonl file");
            }
            out.extend(files.into_iter().map(Source::File));
        } else if path.is_file() {
            out.push(Source::File(path));
        } else {
            // Checked before anything is imported, so a typo in the last name does not stop a
            // command after the first files were written.
            anyhow::bail!("{s}: no such file or directory");
        }
    }
    Ok(out)
}

fn progress_for(source: &Source) -> Option<ProgressBar> {
    let Source::File(path) = source else { return None };
    let len = std::fs::metadata(path).ok()?.len();
    if len < 4 << 20 {
        return None;
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(path.display().to_string());
    Some(bar)
}

pub(crate) async fn run<S: Store>(args: ImportArgs, env: &Env, store: &S) -> anyhow::Result<ExitCode> {
    let account = match &args.account {
        Some(a) => Env::parse_account(a)?,
        None => env.config.companies.default_account(),
    };
    if args.account.is_some() && !env.config.companies.is_empty() && !env.config.companies.is_configured(&account) {
        eprintln!(
            "warning: company {account} is not configured under [quickbooks.{account}]: it uses the [company] defaults"
        );
    }
    let started = Instant::now();
    let sources = expand(&args.sources)?;
    let bulk = store.begin_bulk(ingest::estimate_records(&sources)).await?;
    let total = import_all(sources, account, env, store).await;
    if bulk {
        // Rebuilt whether or not the import failed: what it committed stays, indexed.
        store.end_bulk().await?;
    }
    let total = total?;
    out!("{total} in {:.2} s", started.elapsed().as_secs_f64());
    super::rules::evaluate_changes(env, store).await?;
    Ok(if total.rejected > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

async fn import_all<S: Store>(
    sources: Vec<Source>,
    account: AccountName,
    env: &Env,
    store: &S,
) -> anyhow::Result<Summary> {
    let mut total = Summary::default();
    let moment = env.clock.moment();
    for source in sources {
        let progress = progress_for(&source);
        let opts = ImportOptions {
            account: account.clone(),
            companies: env.config.companies.clone(),
            progress: progress.clone(),
        };
        let mut on_reject = |r: &ingest::Located| match &progress {
            Some(bar) => bar.suspend(|| eprintln!("rejected: {r}")),
            None => eprintln!("rejected: {r}"),
        };
        let summary = ingest::import(ingest::WriteTo::Store(store), source, &opts, &moment, &mut on_reject).await;
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        let summary = summary?;
        total.outcome += summary.outcome;
        total.rejected += summary.rejected;
        for (name, count) in summary.ignored {
            *total.ignored.entry(name).or_default() += count;
        }
    }
    Ok(total)
}
