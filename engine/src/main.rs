//! The `cloture` command: exploration of external systems, and tools around reports and fault catalogs.
//!
//! `cloture explore` / `cloture replay` drive services in their own processes with a functional test that
//! is a command (see `cloture::external`); explorations of a system in the same process run inside the
//! program that starts it (see `cloture::cli`). The other commands read, render and merge what explorations
//! wrote, and generate fault catalogs from service sources.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cloture::coverage::CoverageProbe;
use cloture::external::ServicesFile;
use cloture::external::System;
use cloture::{cli, Catalog, Config, Report};

const HELP: &str = "\
cloture: coverage-guided fault exploration for HTTP microservices

usage:
  cloture explore --functional-test COMMAND --services FILE [options]
                                              explore a system of services in their own processes; the
                                              command's exit status is the test's verdict
  cloture replay ID --functional-test COMMAND --services FILE
                                              re-run one execution of the last exploration
  cloture summary [REPORT]                    print the summary of a report (default target/cloture/report.json)
  cloture dot [REPORT]                        print the call graph as Graphviz DOT
  cloture milestones REPORT [PREFIX]          executions until final coverage (of files under PREFIX)
                                              and until every vulnerability was found
  cloture catalog scan SERVICE=FILE... [-o OUT]
                                              generate a fault catalog from service sources
  cloture catalog check FILE                  check a fault catalog
  cloture merge REPORT... -o OUT              unite the reports of a partitioned exploration (--partition K/N)
                                              into OUT (and report.html next to it)
  cloture help                                this help

explore options (also: cloture explore --help):
  --name NAME             the exploration's name in the report (default: the command)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("explore" | "replay")) {
        return external(args);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cloture: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// `cloture explore` / `cloture replay`: an external system and a test command.
fn external(args: Vec<String>) -> ExitCode {
    let options = match cli::parse(
        args.iter().map(std::ffi::OsString::from),
        &["functional-test", "services", "name", "coverage"],
    ) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("cloture: {error} (try cloture explore --help)");
            return ExitCode::from(2);
        }
    };
    if options.command == cli::Command::Help {
        println!("{EXPLORE_HELP}\n\n{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    let prepared = (|| -> Result<(ServicesFile, String, Config)> {
        let command = options.extra("functional-test").context("--functional-test COMMAND is required")?.to_string();
        let services_path = options.extra("services").context("--services FILE is required")?;
        let services = ServicesFile::load(std::path::Path::new(services_path)).map_err(anyhow::Error::msg)?;
        let root = cli::workspace_root();
        let mut config = Config {
            name: options.extra("name").unwrap_or(&command).to_string(),
            report_dir: Some(root.join("target").join("cloture")),
            ..Config::default()
        };
        config.replay_command = replay_command(&options, &command, services_path);
        let mut config = options.configure(config).map_err(anyhow::Error::msg)?;
        if config.jobs > 1 {
            // Requests of an external test carry no context: they belong to the one current execution.
            eprintln!("cloture: --jobs {} ignored: external test commands run one execution at a time", config.jobs);
            config.jobs = 1;
        }
        Ok((services, command, config))
    })();
    let (services, command, config) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("cloture: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime builds");
    runtime.block_on(async {
        let report_dir = config.report_dir.clone().expect("set above");
        let started = System::start(&services, &report_dir.join("services"), config.cancel.clone()).await;
        let mut system = match started {
            Ok(system) => system,
            Err(error) => {
                eprintln!("cloture: {error}");
                return ExitCode::from(2);
            }
        };
        let probe = options.extra("coverage").map(|prefix| {
            CoverageProbe::for_processes(
                &cli::workspace_root(),
                vec![prefix.to_string()],
                system.addresses(&services),
                system.binaries(),
            )
        });
        let code = cli::run_with(&options, &config, system.command_test(&command), probe).await;
        system.stop().await;
        let failed = system.failure().is_some();
        if failed {
            return ExitCode::from(2);
        }
        code
    })
}

const EXPLORE_HELP: &str = "\
usage: cloture explore --functional-test COMMAND --services FILE [options]
       cloture replay ID --functional-test COMMAND --services FILE [options]

  --functional-test CMD   the test, run with sh -c once per execution; exit status 0 passes
  --services FILE         the services (JSON, see docs/external.md)
  --name NAME             the exploration's name in the report (default: the command)
  --coverage PREFIX       measure coverage of the sources under PREFIX (workspace-relative) in services
                          built with coverage (e.g. by cargo llvm-cov)";

/// The replay command printed for every execution: the same test, services and settings that matter.
fn replay_command(options: &cli::Options, command: &str, services: &str) -> String {
    let mut replay = format!(
        "cloture replay {{id}} --functional-test {} --services {}",
        cli::shell_quote(command),
        cli::shell_quote(services)
    );
    replay.push_str(&options.replay_flags());
    replay
}

fn report_path(args: &[String]) -> Result<PathBuf> {
    match args {
        [] => Ok(PathBuf::from("target/cloture/report.json")),
        [path] => Ok(PathBuf::from(path)),
        [_, extra, ..] => bail!("unexpected argument `{extra}`"),
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        println!("{HELP}");
        return Ok(());
    };
    match command.as_str() {
        "help" | "-h" | "--help" => println!("{HELP}"),
        "summary" => {
            let report = Report::read(&report_path(rest)?)?;
            print!("{}", report.terminal_summary());
        }
        "dot" => {
            let report = Report::read(&report_path(rest)?)?;
            print!("{}", report.call_graph.dot());
        }
        "catalog" => catalog(rest)?,
        "milestones" => {
            let (path, prefix) = match rest {
                [path] => (path, ""),
                [path, prefix] => (path, prefix.as_str()),
                _ => bail!("usage: cloture milestones REPORT [PREFIX]"),
            };
            let report = Report::read(std::path::Path::new(path))?;
            let m = report.milestones(prefix);
            let show = |n: Option<usize>| n.map_or("-".to_string(), |n| n.to_string());
            println!(
                "order {}: {} executions; final coverage after {}; every vulnerability after {} ({} found)",
                report.config.order,
                m.executions,
                show(m.to_final_coverage),
                show(m.to_all_vulnerabilities),
                report.vulnerabilities.len()
            );
        }
        "merge" => merge(rest)?,
        other => bail!("unknown command `{other}` (try `cloture help`)"),
    }
    Ok(())
}

fn catalog(args: &[String]) -> Result<()> {
    match args.split_first().map(|(c, r)| (c.as_str(), r)) {
        Some(("scan", rest)) => {
            let mut sources = Vec::new();
            let mut output: Option<PathBuf> = None;
            let mut items = rest.iter();
            while let Some(item) = items.next() {
                if item == "-o" || item == "--output" {
                    output = Some(PathBuf::from(items.next().context("-o needs a file")?));
                    continue;
                }
                let (service, file) =
                    item.split_once('=').with_context(|| format!("`{item}` is not of the form SERVICE=FILE"))?;
                let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
                sources.push((service.to_string(), text));
            }
            if sources.is_empty() {
                bail!("catalog scan needs at least one SERVICE=FILE");
            }
            let text = Catalog::scan(&sources).render();
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => print!("{text}"),
            }
        }
        Some(("check", [file])) => {
            let catalog = Catalog::load(std::path::Path::new(file))?;
            print!("{}", catalog.render());
        }
        _ => bail!("usage: cloture catalog scan SERVICE=FILE... [-o OUT] | cloture catalog check FILE"),
    }
    Ok(())
}

/// `cloture merge A.json B.json ... -o OUT.json`.
fn merge(args: &[String]) -> Result<()> {
    let mut inputs: Vec<PathBuf> = Vec::new();
    let mut output: Option<PathBuf> = None;
    let mut items = args.iter();
    while let Some(item) = items.next() {
        match item.as_str() {
            "-o" | "--output" => output = Some(PathBuf::from(items.next().context("-o needs a file")?)),
            flag if flag.starts_with('-') => bail!("unknown option `{flag}` (usage: cloture merge REPORT... -o OUT)"),
            path => inputs.push(PathBuf::from(path)),
        }
    }
    let output = output.context("usage: cloture merge REPORT... -o OUT (-o is required)")?;
    if inputs.is_empty() {
        bail!("usage: cloture merge REPORT... -o OUT (no report given)");
    }
    let reports = inputs.iter().map(|path| Report::read(path)).collect::<Result<Vec<_>, _>>()?;
    let merged = match cloture::merge::merge(&reports) {
        Ok(merged) => merged,
        Err(cloture::Error::CannotMerge { index, why }) if index > 0 => {
            bail!("cannot merge {} with {}: {why}", inputs[index].display(), inputs[0].display())
        }
        Err(cloture::Error::CannotMerge { index, why }) => bail!("cannot merge {}: {why}", inputs[index].display()),
        Err(error) => return Err(error.into()),
    };
    let json = serde_json::to_string_pretty(&merged).context("the merged report serializes")?;
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Atomically: a temporary file next to OUT, renamed over it.
    let temporary = output.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, json)
        .and_then(|()| std::fs::rename(&temporary, &output))
        .with_context(|| format!("cannot write {}", output.display()))?;
    let html = cloture::html::write(&merged, &dir, &cli::workspace_root())?;
    print!("{}", merged.terminal_summary());
    println!("report: {} ({} reports merged; {})", output.display(), reports.len(), html.display());
    Ok(())
}
