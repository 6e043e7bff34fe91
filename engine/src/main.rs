//! The `cloture` command: exploration of external systems, and tools around reports and fault catalogs.
//!
//! `cloture explore` / `cloture replay` drive services in their own processes with a functional test that
//! is a command (see `cloture::external`); explorations of a system in the same process run inside the
//! program that starts it (see `cloture::cli`). The other commands read, render and merge what explorations
//! wrote, and generate fault catalogs from service sources. Logging goes to stderr, filtered by `RUST_LOG`
//! (default `warn`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use cloture::coverage::CoverageProbe;
use cloture::external::{ServicesFile, System};
use cloture::{cli, Catalog, Config, Report};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Coverage-guided fault exploration for HTTP microservices
#[derive(Debug, Parser)]
#[command(name = "cloture", after_help = AFTER_HELP)]
struct Cloture {
    #[command(subcommand)]
    command: Option<Tool>,
}

const AFTER_HELP: &str = "\
Exit status: explore and replay as `cloture explore --help` says; the other commands 0 when they did
their work, 2 on bad arguments or when they could not (e.g. a report that cannot be read).

Logging: RUST_LOG filters what goes to stderr (tracing-subscriber syntax) [default: warn].";

#[derive(Debug, Subcommand)]
enum Tool {
    /// Explore a system of services in their own processes with a test command (its exit status is the verdict) or a runner
    #[command(after_help = cli::EXIT_CODES)]
    Explore(External),
    /// Re-run exactly the fault set of one execution of the last exploration, against a fresh system
    #[command(after_help = cli::EXIT_CODES)]
    Replay {
        /// The execution's id, as the summary and report.json show it
        id: String,
        #[command(flatten)]
        external: External,
    },
    /// Print the summary of a report
    Summary {
        /// The report
        #[arg(value_name = "REPORT", default_value = DEFAULT_REPORT)]
        report: PathBuf,
    },
    /// Print the call graph of a report as Graphviz DOT
    Dot {
        /// The report
        #[arg(value_name = "REPORT", default_value = DEFAULT_REPORT)]
        report: PathBuf,
    },
    /// Executions until final coverage (of files under PREFIX) and until every vulnerability was found
    Milestones {
        /// The report
        #[arg(value_name = "REPORT")]
        report: PathBuf,
        /// Count coverage only in files whose path starts with PREFIX [default: all files]
        #[arg(value_name = "PREFIX", default_value = "")]
        prefix: String,
    },
    /// Generate a fault catalog from service sources, or check one
    #[command(subcommand)]
    Catalog(CatalogTool),
    /// Unite the reports of a partitioned exploration (--partition K/N) into OUT, and report.html next to it
    Merge {
        /// The partitions' reports (report.json)
        #[arg(value_name = "REPORT", required = true)]
        reports: Vec<PathBuf>,
        /// Where the united report goes
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
}

const DEFAULT_REPORT: &str = "target/cloture/report.json";

#[derive(Debug, Subcommand)]
enum CatalogTool {
    /// Generate a fault catalog from service sources
    Scan {
        /// A service and its source file, e.g. bookings=cinema/src/bookings.rs
        #[arg(value_name = "SERVICE=FILE", required = true)]
        sources: Vec<ServiceSource>,
        /// Write the catalog to OUT instead of stdout
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// Check a fault catalog and print it as cloture reads it
    Check {
        /// The catalog
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `SERVICE=FILE` of `cloture catalog scan`.
#[derive(Clone, Debug)]
struct ServiceSource {
    service: String,
    file: PathBuf,
}

impl FromStr for ServiceSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((service, _)) if !cloture::call::valid_service_name(service) => {
                Err(format!("`{service}` is not a service name (1 to 64 letters, digits, - _ .)"))
            }
            Some((service, file)) if !file.is_empty() => {
                Ok(ServiceSource { service: service.to_string(), file: PathBuf::from(file) })
            }
            _ => Err(format!("`{text}` is not of the form SERVICE=FILE")),
        }
    }
}

/// `cloture explore` / `cloture replay`: the system, the test (a command or a runner) and the explorer's
/// options.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("test").required(true).args(["functional_test", "runner"])))]
struct External {
    /// The functional test, run with `sh -c` once per execution; exit status 0 passes
    #[arg(long, value_name = "COMMAND")]
    functional_test: Option<String>,
    /// The functional test as a runner: COMMAND starts once and runs the test per execution as cloture
    /// asks (see docs/runner.md), e.g. `python3 -m cloture.runner tests/test_x.py:test_x`
    #[arg(long, value_name = "COMMAND")]
    runner: Option<String>,
    /// The services (JSON, see docs/external.md)
    #[arg(long, value_name = "FILE")]
    services: PathBuf,
    /// The exploration's name in the report [default: the command]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Measure coverage of the sources under PREFIX (workspace-relative) in services built with coverage
    /// (e.g. by cargo llvm-cov)
    #[arg(long, value_name = "PREFIX")]
    coverage: Option<String>,
    #[command(flatten)]
    explore: cli::ExploreArgs,
}

fn main() -> ExitCode {
    let filter = EnvFilter::builder().with_default_directive(LevelFilter::WARN.into()).from_env_lossy();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let cloture: Cloture = match cli::parse() {
        Ok(cloture) => cloture,
        Err(code) => return code,
    };
    match cloture.command {
        None => done(Cloture::command().print_help().context("cannot print the help")),
        Some(Tool::Explore(external)) => explore(cli::Command::Explore, &external),
        Some(Tool::Replay { id, external }) => explore(cli::Command::Replay { id }, &external),
        Some(Tool::Summary { report }) => done(Report::read(&report).map(|r| print!("{}", r.terminal_summary()))),
        Some(Tool::Dot { report }) => done(Report::read(&report).map(|r| print!("{}", r.call_graph.dot()))),
        Some(Tool::Milestones { report, prefix }) => done(milestones(&report, &prefix)),
        Some(Tool::Catalog(CatalogTool::Scan { sources, output })) => done(catalog_scan(&sources, output.as_deref())),
        Some(Tool::Catalog(CatalogTool::Check { file })) => {
            done(Catalog::load(&file).map(|catalog| print!("{}", catalog.render())))
        }
        Some(Tool::Merge { reports, output }) => done(merge(&reports, &output)),
    }
}

/// The exit code of a command around reports and catalogs: 0, or 2 with the error on stderr.
fn done<E: Into<anyhow::Error>>(outcome: Result<(), E>) -> ExitCode {
    match outcome.map_err(Into::into) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cloture: {}", cloture::text::error_line(error.as_ref()));
            ExitCode::from(cli::EXIT_CANNOT_RUN)
        }
    }
}

/// `cloture explore` / `cloture replay`: an external system and a test command.
fn explore(command: cli::Command, external: &External) -> ExitCode {
    let prepared = prepare(external).and_then(|prepared| {
        if let cli::Command::Replay { id } = &command {
            // Before any service starts: a typo in the id is told at once.
            known_execution(prepared.1.report_dir.as_deref().expect("set in prepare"), id)?;
        }
        Ok(prepared)
    });
    let (services, config) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("cloture: {}", cloture::text::error_line(error.as_ref()));
            return ExitCode::from(cli::EXIT_CANNOT_RUN);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime builds");
    runtime.block_on(async {
        // First thing: a signal during start-up ends what was started and writes an incomplete report.
        let _signals = cloture::signals::Listener::start(config.cancel.clone());
        let report_dir = config.report_dir.clone().expect("set above");
        // A replay's services write their own logs: the exploration's stay as they were.
        let logs = match &command {
            cli::Command::Replay { id } => report_dir.join("replays").join(id),
            cli::Command::Explore => report_dir.join("services"),
        };
        let started = System::start(&services, &logs, config.cancel.clone()).await;
        let mut system = match started {
            Ok(system) => system,
            Err(error) => {
                eprintln!("cloture: {error}");
                return match config.cancel.signal_exit_status() {
                    Some(status) => interrupted_at_start(&config, status).await,
                    None => ExitCode::from(cli::EXIT_CANNOT_RUN),
                };
            }
        };
        let probe = external.coverage.as_ref().map(|prefix| {
            CoverageProbe::for_processes(
                &cli::workspace_root(),
                vec![prefix.clone()],
                system.addresses(&services),
                system.binaries(),
            )
        });
        let report_dir = config.report_dir.clone().expect("set in prepare");
        if let cli::Command::Replay { .. } = command {
            if let Err(error) = load_references(&system, &report_dir) {
                eprintln!("cloture: {error}");
            }
        }
        let test = functional_test(&system, external);
        let config = Config { harness: Some(system.health()), ..config.clone() };
        let code = cli::run_with(&command, &external.explore, &config, test, probe).await;
        if let cli::Command::Replay { .. } = command {
            println!("logs of this replay: {}", logs.display());
        }
        if let cli::Command::Explore = command {
            if let Err(error) = save_references(&system, &report_dir) {
                eprintln!("cloture: {error}");
            }
        }
        system.stop().await;
        let failed = system.failure().is_some();
        if failed {
            return ExitCode::from(cli::EXIT_CANNOT_RUN);
        }
        code
    })
}

/// What the functional test returns per execution, a command's or a runner's.
type TestFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + 'a>>;

/// The functional test of `cloture explore`: the runner (`--runner`) or the command (`--functional-test`).
fn functional_test<'a>(system: &'a System, external: &External) -> Box<dyn Fn() -> TestFuture<'a> + 'a> {
    match (&external.runner, &external.functional_test) {
        (Some(runner), _) => Box::new(system.runner_test(runner)),
        (None, test) => Box::new(system.command_test(test.as_deref().expect("clap requires a test"))),
    }
}

/// Where the reference values the test saved in fault-free executions are kept for replays.
const REFERENCES_FILE: &str = "references.json";

/// Writes the reference values of this exploration next to its report (none: no file).
fn save_references(system: &System, report_dir: &Path) -> Result<()> {
    let path = report_dir.join(REFERENCES_FILE);
    let values = system.coordinator.references();
    if values.is_empty() {
        // A file from an earlier exploration would give a replay values this one did not save.
        return match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let json = serde_json::to_vec_pretty(&values).context("reference values serialize")?;
    // Atomically: a temporary file next to it, renamed over it, removed if that fails.
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::write(&temporary, json).and_then(|()| std::fs::rename(&temporary, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// Gives a replay the reference values its exploration saved, when it saved any.
fn load_references(system: &System, report_dir: &Path) -> Result<()> {
    let path = report_dir.join(REFERENCES_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let values = serde_json::from_slice(&text).with_context(|| format!("{} is not a JSON object", path.display()))?;
    system.coordinator.load_references(values).map_err(anyhow::Error::msg)
}

/// A signal arrived while the services started: they are stopped; the report says nothing ran.
async fn interrupted_at_start(config: &Config, status: u8) -> ExitCode {
    match cloture::explore(config, || async { Ok::<(), String>(()) }).await {
        Ok(report) => print!("{}", report.terminal_summary()),
        Err(error) => eprintln!("cloture: {error}"),
    }
    ExitCode::from(status)
}

/// The services file and the explorer's settings of `cloture explore` / `cloture replay`.
fn prepare(external: &External) -> Result<(ServicesFile, Config)> {
    let services = ServicesFile::load(&external.services).map_err(anyhow::Error::msg)?;
    let root = cli::workspace_root();
    let command = external.runner.as_ref().or(external.functional_test.as_ref()).expect("clap requires one");
    let mut config = Config {
        name: external.name.clone().unwrap_or_else(|| command.clone()),
        report_dir: Some(root.join("target").join("cloture")),
        ..Config::default()
    };
    config.replay_command = replay_command(external);
    let mut config = external.explore.configure(config)?;
    if config.jobs > 1 {
        // Requests of an external test carry no context: they belong to the one current execution.
        eprintln!("cloture: --jobs {} ignored: external tests run one execution at a time", config.jobs);
        config.jobs = 1;
    }
    Ok((services, config))
}

/// That the report in `report_dir` has an execution `id` (a replay's logs go to a folder named by it).
fn known_execution(report_dir: &Path, id: &str) -> Result<()> {
    let path = report_dir.join("report.json");
    Report::read(&path)?.recorded(id, &path)?;
    Ok(())
}

/// The replay command printed for every execution: the same test, services and settings that matter.
fn replay_command(external: &External) -> String {
    let test = match (&external.runner, &external.functional_test) {
        (Some(runner), _) => format!("--runner {}", cli::shell_quote(runner)),
        (None, test) => format!("--functional-test {}", cli::shell_quote(test.as_deref().unwrap_or_default())),
    };
    let mut replay = format!(
        "cloture replay {{id}} {test} --services {}",
        cli::shell_quote(&external.services.display().to_string())
    );
    replay.push_str(&external.explore.replay_flags());
    replay
}

/// `cloture milestones REPORT [PREFIX]`.
fn milestones(report: &Path, prefix: &str) -> Result<()> {
    let report = Report::read(report)?;
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
    Ok(())
}

/// `cloture catalog scan SERVICE=FILE... [-o OUT]`.
fn catalog_scan(sources: &[ServiceSource], output: Option<&Path>) -> Result<()> {
    let mut texts = Vec::new();
    for ServiceSource { service, file } in sources {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        texts.push((service.clone(), text));
    }
    let text = Catalog::scan(&texts).render();
    match output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// `cloture merge A.json B.json ... -o OUT.json`.
fn merge(inputs: &[PathBuf], output: &Path) -> Result<()> {
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
        .and_then(|()| std::fs::rename(&temporary, output))
        .with_context(|| format!("cannot write {}", output.display()))?;
    let html = cloture::html::write(&merged, &dir, &cli::workspace_root())?;
    print!("{}", merged.terminal_summary());
    println!("report: {} ({} reports merged; {})", output.display(), reports.len(), html.display());
    Ok(())
}
