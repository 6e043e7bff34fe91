//! The command line of exploration programs: `explore` and `replay <id>` with the explorer's settings.
//!
//! A program that explores its own system in-process (it starts its services, then hands cloture the
//! functional test) gets a complete CLI from [`parse`] and [`run`]: budgets, order, faults, strict mode,
//! the terminal summary, `report.json`, `report.html` and a replay command per execution. Arguments are
//! parsed in two stages: raw flags into [`Options`], then validated into the explorer's [`Config`].

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::coverage::CoverageProbe;
use crate::explore::{Config, Verdict};
use crate::fault::{Catalog, Fault};
use crate::plan::Order;

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Explore,
    Replay(String),
    Help,
}

/// Parsed command-line options.
#[derive(Clone, Debug)]
pub struct Options {
    pub command: Command,
    pub max_faults: Option<usize>,
    pub order: Option<Order>,
    pub no_reduce: bool,
    pub max_executions: Option<usize>,
    pub max_time: Option<Duration>,
    pub deadline: Option<Duration>,
    pub catalog: Option<PathBuf>,
    pub faults: Option<Vec<Fault>>,
    pub report_dir: Option<PathBuf>,
    /// Most executions running at once.
    pub jobs: Option<usize>,
    /// Only share `k` of `n` (1-based) of the plan.
    pub partition: Option<(usize, usize)>,
    /// Exit non-zero when any execution failed (for CI).
    pub strict: bool,
    pub quiet: bool,
    /// Program-specific flags (`--name value`) the caller declared.
    pub extra: Vec<(String, String)>,
}

/// The options every exploration program understands, for its `--help`.
pub const USAGE: &str = "\
commands:
  explore                 explore the fault space (the default)
  replay <id>             re-run exactly the fault set of execution <id> from the last report

options:
  --max-faults N          most faults in one execution (default 2)
  --order ORDER           coverage (default), bfs or dfs
  --no-reduce             turn dynamic reduction off (for comparison)
  --max-executions N      budget: most executions
  --max-time SECONDS      budget: most time
  --deadline SECONDS      deadline of one execution (default 10)
  --catalog FILE          per-service fault catalog (default: faults.catalog when present)
  --faults LIST           only these faults, e.g. timeout,status:503
  --report-dir DIR        where report.json and report.html go (default target/cloture)
  --jobs N                run up to N executions at once (default 1; per-execution coverage runs one)
  --partition K/N         explore only share K of N of the plan (split CI between machines; unite the
                          reports with `cloture merge A.json B.json ... -o OUT.json`)
  --strict                exit 1 when any execution failed (CI)
  --quiet                 no progress, no summary
  -h, --help              this help";

/// Parses arguments (without the program name). `extra` lists program-specific flags that take a value.
pub fn parse(args: impl IntoIterator<Item = OsString>, extra: &[&str]) -> Result<Options, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut options = Options {
        command: Command::Explore,
        max_faults: None,
        order: None,
        no_reduce: false,
        max_executions: None,
        max_time: None,
        deadline: None,
        catalog: None,
        faults: None,
        report_dir: None,
        jobs: None,
        partition: None,
        strict: false,
        quiet: false,
        extra: Vec::new(),
    };
    let mut positional: Vec<String> = Vec::new();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        let value = |parser: &mut lexopt::Parser, flag: &str| -> Result<String, String> {
            parser
                .value()
                .map_err(|_| format!("{flag} needs a value"))?
                .into_string()
                .map_err(|_| format!("{flag}: the value is not valid UTF-8"))
        };
        match arg {
            Short('h') | Long("help") => options.command = Command::Help,
            Long("max-faults") => {
                options.max_faults = Some(number(&value(&mut parser, "--max-faults")?, "--max-faults")?)
            }
            Long("order") => options.order = Some(value(&mut parser, "--order")?.parse()?),
            Long("no-reduce") => options.no_reduce = true,
            Long("max-executions") => {
                options.max_executions = Some(number(&value(&mut parser, "--max-executions")?, "--max-executions")?)
            }
            Long("max-time") => options.max_time = Some(seconds(&value(&mut parser, "--max-time")?, "--max-time")?),
            Long("deadline") => options.deadline = Some(seconds(&value(&mut parser, "--deadline")?, "--deadline")?),
            Long("catalog") => options.catalog = Some(PathBuf::from(value(&mut parser, "--catalog")?)),
            Long("faults") => {
                let list = value(&mut parser, "--faults")?;
                let faults = list
                    .split(',')
                    .filter(|name| !name.trim().is_empty())
                    .map(|name| name.parse::<Fault>().map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                if faults.is_empty() {
                    return Err("--faults needs at least one fault".to_string());
                }
                options.faults = Some(faults);
            }
            Long("report-dir") => options.report_dir = Some(PathBuf::from(value(&mut parser, "--report-dir")?)),
            Long("jobs") => options.jobs = Some(number(&value(&mut parser, "--jobs")?, "--jobs")?),
            Long("partition") => options.partition = Some(partition(&value(&mut parser, "--partition")?)?),
            Long("strict") => options.strict = true,
            Long("quiet") => options.quiet = true,
            Long(flag) if extra.contains(&flag) => {
                let flag = flag.to_string();
                let text = value(&mut parser, &format!("--{flag}"))?;
                options.extra.push((flag, text));
            }
            Value(text) => {
                positional.push(text.into_string().map_err(|_| "an argument is not valid UTF-8".to_string())?)
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    if options.command != Command::Help {
        options.command = match positional.as_slice() {
            [] => Command::Explore,
            [command] if command == "explore" => Command::Explore,
            [command, id] if command == "replay" => Command::Replay(id.clone()),
            [command] if command == "replay" => return Err("replay needs an execution id".to_string()),
            [command, ..] if command == "explore" || command == "replay" => {
                return Err(format!("unexpected argument `{}`", positional.last().expect("not empty")))
            }
            [command, ..] => return Err(format!("unknown command `{command}`: expected explore or replay")),
        };
    }
    Ok(options)
}

fn number(text: &str, flag: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("{flag}: `{text}` is not a whole number"))
}

/// `k/n` with 1 ≤ k ≤ n.
fn partition(text: &str) -> Result<(usize, usize), String> {
    let parsed = text.split_once('/').and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((k, n)) if (1..=n).contains(&k) => Ok((k, n)),
        Some(_) => Err(format!("--partition: `{text}` is not a share of the plan: K/N needs 1 ≤ K ≤ N")),
        None => Err(format!("--partition: `{text}` is not of the form K/N, e.g. 1/2")),
    }
}

fn seconds(text: &str, flag: &str) -> Result<Duration, String> {
    let value: f64 = text.parse().map_err(|_| format!("{flag}: `{text}` is not a number of seconds"))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("{flag}: `{text}` must be a positive number of seconds"));
    }
    Duration::try_from_secs_f64(value).map_err(|_| format!("{flag}: `{text}` seconds is too long"))
}

impl Options {
    /// The value of a program-specific flag.
    pub fn extra(&self, flag: &str) -> Option<&str> {
        self.extra.iter().rev().find(|(name, _)| name == flag).map(|(_, value)| value.as_str())
    }

    /// The flags a replay command must repeat so that it replays from the same report with the same
    /// deadline: ` --report-dir DIR --deadline SECONDS`, each when it was given; empty otherwise.
    pub fn replay_flags(&self) -> String {
        let mut flags = String::new();
        if let Some(dir) = &self.report_dir {
            flags.push_str(&format!(" --report-dir {}", shell_quote(&dir.display().to_string())));
        }
        if let Some(deadline) = self.deadline {
            flags.push_str(&format!(" --deadline {}", deadline.as_secs_f64()));
        }
        flags
    }

    /// Validates the options into the explorer's settings, on top of `config`.
    pub fn configure(&self, mut config: Config) -> Result<Config, String> {
        if let Some(max_faults) = self.max_faults {
            if max_faults == 0 {
                return Err("--max-faults must be at least 1".to_string());
            }
            config.max_faults = max_faults;
        }
        if let Some(order) = self.order {
            config.order = order;
        }
        if self.no_reduce {
            config.reduce = false;
        }
        config.max_executions = self.max_executions.or(config.max_executions);
        config.max_time = self.max_time.or(config.max_time);
        if let Some(deadline) = self.deadline {
            config.deadline = deadline;
        }
        let default_catalog = PathBuf::from("faults.catalog");
        let catalog_path = match &self.catalog {
            Some(path) => Some(path.clone()),
            None if default_catalog.exists() => Some(default_catalog),
            None => None,
        };
        if let Some(path) = catalog_path {
            config.catalog = Catalog::load(&path).map_err(|e| e.to_string())?;
        }
        if let Some(faults) = &self.faults {
            config.catalog = config.catalog.only(faults.clone());
        }
        if let Some(dir) = &self.report_dir {
            config.report_dir = Some(dir.clone());
        }
        if let Some(jobs) = self.jobs {
            if jobs == 0 {
                return Err("--jobs must be at least 1".to_string());
            }
            config.jobs = jobs;
        }
        if self.partition.is_some() {
            config.partition = self.partition.and_then(|(k, n)| crate::plan::Partition::new(k, n));
        }
        config.progress = !self.quiet;
        Ok(config)
    }
}

/// Runs the command: explores (or replays), prints the summary, writes the reports, and returns the exit
/// code: 0 when the exploration completed (its findings are its output), 1 under `--strict` when any
/// execution failed, 2 when the exploration itself could not run.
pub async fn run<T, F>(options: &Options, config: &Config, test: T) -> ExitCode
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    run_with(options, config, test, None).await
}

/// [`run`] with a given coverage probe (e.g. one for services in other processes); without one, a probe
/// for this process is made when `config.coverage_paths` is set.
pub async fn run_with<T, F>(options: &Options, config: &Config, test: T, probe: Option<CoverageProbe>) -> ExitCode
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    let cancel = config.cancel.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ncloture: interrupted; finishing the current execution and writing the report \
                 (Ctrl-C again to abandon it)"
            );
            cancel.stop();
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncloture: interrupted again; abandoning the current execution");
            cancel.abort();
        }
    });
    let result = match &options.command {
        Command::Replay(id) => crate::explore::replay(config, id, test).await,
        _ => {
            let mut probe = probe.or_else(|| {
                (!config.coverage_paths.is_empty())
                    .then(|| CoverageProbe::new(&workspace_root(), config.coverage_paths.clone()))
            });
            match probe.as_mut() {
                None => crate::explore::explore(config, test).await,
                Some(probe) => {
                    let result = crate::explore::explore_with(config, test, Some(probe)).await;
                    if probe.snapshots > 0 && !options.quiet {
                        eprintln!(
                            "cloture: coverage: {} snapshots, {:.1} ms taking them, {:.1} ms turning them into lines",
                            probe.snapshots,
                            probe.snapshot_time.as_secs_f64() * 1000.0,
                            probe.processing_time.as_secs_f64() * 1000.0
                        );
                    }
                    result
                }
            }
        }
    };
    interrupt.abort();
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("cloture: {error}");
            return ExitCode::from(2);
        }
    };
    if !options.quiet {
        print!("{}", report.terminal_summary());
    }
    if let (Command::Explore, Some(dir)) = (&options.command, &config.report_dir) {
        if !options.quiet {
            println!("report: {}", dir.join("report.json").display());
        }
    }
    if let Command::Replay(id) = &options.command {
        let outcome = report.executions.first().map(|e| e.outcome);
        println!("replay of {id}: {}", if outcome == Some(crate::report::Outcome::Pass) { "pass" } else { "fail" });
    }
    if options.strict && report.summary.failed > 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

pub use crate::files::workspace_root;
pub use crate::text::shell_quote;

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn parses_a_full_command_line() {
        let options = parse(
            args(
                "explore --max-faults 3 --order bfs --faults timeout,status:503 --strict --edition hardened --jobs 4 \
                 --partition 2/3",
            ),
            &["edition"],
        )
        .unwrap();
        assert_eq!(options.jobs, Some(4));
        assert_eq!(options.partition, Some((2, 3)));
        let config = options.configure(Config::default()).unwrap();
        assert_eq!((config.jobs, config.partition), (4, crate::plan::Partition::new(2, 3)));
        assert_eq!(options.command, Command::Explore);
        assert_eq!(options.max_faults, Some(3));
        assert_eq!(options.order, Some(Order::Breadth));
        assert_eq!(options.faults, Some(vec![Fault::Timeout, Fault::Status(503)]));
        assert!(options.strict);
        assert_eq!(options.extra("edition"), Some("hardened"));
        let options = parse(args("replay 0123456789ab"), &[]).unwrap();
        assert_eq!(options.command, Command::Replay("0123456789ab".into()));
    }

    #[test]
    fn replay_commands_repeat_the_report_dir_and_the_deadline() {
        assert_eq!(parse(args("explore"), &[]).unwrap().replay_flags(), "");
        let options = parse(["--report-dir", "/tmp/my reports", "--deadline", "2.5"].map(OsString::from), &[]).unwrap();
        assert_eq!(options.replay_flags(), " --report-dir '/tmp/my reports' --deadline 2.5");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn bad_input_gets_a_message_naming_it() {
        for (line, needle) in [
            ("--faults tiemout", "tiemout"),
            ("--order sideways", "sideways"),
            ("--max-faults many", "many"),
            ("--deadline -1", "-1"),
            ("--deadline 1e20", "1e20"),
            ("--max-time 1e300", "1e300"),
            ("frobnicate", "frobnicate"),
            ("replay", "execution id"),
            ("--edition x", "--edition"),
            ("--partition 3/2", "3/2"),
            ("--partition 0/2", "0/2"),
            ("--partition x", "`x`"),
            ("--jobs some", "some"),
        ] {
            let error = parse(args(line), &[]).unwrap_err();
            assert!(error.contains(needle), "{line}: {error}");
        }
        let error = parse(args("--max-faults 0"), &[]).unwrap().configure(Config::default()).unwrap_err();
        assert!(error.contains("at least 1"));
        let error = parse(args("--jobs 0"), &[]).unwrap().configure(Config::default()).unwrap_err();
        assert!(error.contains("--jobs") && error.contains("at least 1"), "{error}");
        let error = parse(args("--catalog /nonexistent/faults.catalog"), &[])
            .unwrap()
            .configure(Config::default())
            .unwrap_err();
        assert!(error.contains("/nonexistent/faults.catalog"), "{error}");
    }
}
