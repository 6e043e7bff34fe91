//! The command line of exploration programs: `explore` and `replay <id>` with the explorer's settings.
//!
//! A program that explores its own system in-process (it starts its services, then hands cloture the
//! functional test) builds its clap command from the pieces here: it flattens [`ExploreArgs`] next to its
//! own typed options, takes [`Command`] as its subcommand, parses with [`parse`] (help on stdout, exit 0;
//! a usage error on one line, exit 2) and hands over to [`run`]: budgets, order, faults, strict mode, the
//! terminal summary, `report.json`, `report.html` and a replay command per execution. Arguments go
//! through two stages: clap's value parsers make typed [`ExploreArgs`] (values out of range are usage
//! errors), then [`ExploreArgs::configure`] lays them over the program's [`Config`] (loading the catalog).
//! The exit codes are [`EXIT_CODES`].

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::coverage::CoverageProbe;
use crate::explore::{Config, Verdict};
use crate::fault::{Catalog, Fault};
use crate::plan::{Order, Partition};

/// Exit status when `--strict` is given and an execution failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of a usage error, or of an exploration that could not run.
pub const EXIT_CANNOT_RUN: u8 = 2;

/// The exit codes of exploration programs, for their `--help` (`after_help`) and the docs.
pub const EXIT_CODES: &str = "\
Exit status:
  0    the exploration ran: its findings are its output, also when a budget stopped it early
       (a replay ran, whether the execution passed or failed)
  1    --strict was given and an execution failed
  2    bad arguments, or the exploration could not run (e.g. the test fails without faults, a file
       cannot be read, a service does not start or dies during the run)
  128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), start-up included: the services
       and the test command were ended and the report, marked incomplete, was written";

/// What to do: explore (the default when a program is given no command), or replay one execution.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Explore the fault space (the default)
    #[command(after_help = EXIT_CODES)]
    Explore,
    /// Re-run exactly the fault set of one execution of the last report
    #[command(after_help = EXIT_CODES)]
    Replay {
        /// The execution's id, as the summary and report.json show it
        id: String,
    },
}

/// The explorer's settings on the command line, for a program to flatten into its own clap command.
///
/// Every option is global, so it may come before or after the program's `explore` / `replay <id>`.
/// Options not given leave the program's [`Config`] as it is (see [`ExploreArgs::configure`]).
#[derive(Clone, Debug, Default, PartialEq, clap::Args)]
#[command(next_help_heading = "Exploration options")]
pub struct ExploreArgs {
    /// Most faults in one execution [default: 2]
    #[arg(long, value_name = "N", global = true, value_parser = at_least_one, allow_negative_numbers = true)]
    pub max_faults: Option<usize>,
    /// Order of the candidates [default: coverage]
    #[arg(long, value_name = "ORDER", global = true)]
    pub order: Option<Order>,
    /// Turn dynamic reduction off (for comparison)
    #[arg(long, global = true)]
    pub no_reduce: bool,
    /// Budget: most executions, the two fault-free reference runs included (at least 2)
    #[arg(long, value_name = "N", global = true, allow_negative_numbers = true, value_parser = at_least_two)]
    pub max_executions: Option<usize>,
    /// Budget: most time
    #[arg(long, value_name = "SECONDS", global = true, value_parser = seconds, allow_negative_numbers = true)]
    pub max_time: Option<Duration>,
    /// Deadline of one execution [default: 10]
    #[arg(long, value_name = "SECONDS", global = true, value_parser = seconds, allow_negative_numbers = true)]
    pub deadline: Option<Duration>,
    /// Per-service fault catalog [default: faults.catalog when present]
    #[arg(long, value_name = "FILE", global = true)]
    pub catalog: Option<PathBuf>,
    /// Only these faults, e.g. slow,status:503 (connect, timeout, slow, delay:D, status:NNN, grpc:CODE)
    #[arg(long, value_name = "LIST", global = true, value_delimiter = ',', value_parser = fault)]
    pub faults: Vec<Fault>,
    /// Where report.json and report.html go [default: target/cloture]
    #[arg(long, value_name = "DIR", global = true)]
    pub report_dir: Option<PathBuf>,
    /// Run up to N executions at once (per-execution coverage runs one) [default: 1]
    #[arg(long, value_name = "N", global = true, value_parser = at_least_one, allow_negative_numbers = true)]
    pub jobs: Option<usize>,
    /// Explore only share K of N of the plan (split CI between machines; unite the reports with
    /// `cloture merge`)
    #[arg(long, value_name = "K/N", global = true, value_parser = partition)]
    pub partition: Option<Partition>,
    /// Exit 1 when any execution failed (CI)
    #[arg(long, global = true)]
    pub strict: bool,
    /// No progress, no summary
    #[arg(long, global = true)]
    pub quiet: bool,
}

/// Why a value on the command line is refused; clap names the flag, these name the value.
#[derive(Debug, thiserror::Error)]
enum BadValue {
    #[error("`{0}` is not a whole number")]
    NotANumber(String),
    #[error("`{0}` is not at least 1")]
    Zero(String),
    #[error("`{0}` is not a number of seconds")]
    NotSeconds(String),
    #[error("`{0}` is not a positive number of seconds")]
    NotPositive(String),
    #[error("`{text}` is too short: at least {} s (one millisecond)", MIN_SECONDS)]
    TooShort { text: String },
    #[error("`{text}` is too long: at most {} s (a year)", MAX_SECONDS)]
    TooLong { text: String },
    #[error("`{0}` is not of the form K/N, e.g. 1/2")]
    NotAPartition(String),
    #[error("`{0}` is not a share of the plan: K/N needs 1 ≤ K ≤ N")]
    NotAShare(String),
    #[error(
        "a fault name is empty (a stray comma?): expected `connect`, `timeout`, `slow`, `delay:D`, `status:NNN` or \
         `grpc:CODE`"
    )]
    EmptyFault,
    #[error(transparent)]
    Fault(#[from] crate::Error),
}

/// The shortest duration: reports keep milliseconds, so anything shorter would read as zero.
const MIN_SECONDS: f64 = 0.001;
/// The longest duration (a year): longer ones are mistakes, and would overflow clocks and reports.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// A whole number of at least 1 (`--max-faults`, `--jobs`).
fn at_least_one(text: &str) -> Result<usize, BadValue> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err(BadValue::Zero(text.to_string())),
        Ok(number) => Ok(number),
        Err(_) => Err(BadValue::NotANumber(text.to_string())),
    }
}

/// A fault of `--faults LIST`.
fn fault(text: &str) -> Result<Fault, BadValue> {
    match text.trim() {
        "" => Err(BadValue::EmptyFault),
        name => Ok(name.parse()?),
    }
}

/// A duration in seconds, fractions allowed, from a millisecond to a year.
fn seconds(text: &str) -> Result<Duration, BadValue> {
    let value: f64 = text.trim().parse().map_err(|_| BadValue::NotSeconds(text.to_string()))?;
    if value.is_nan() || value <= 0.0 {
        return Err(BadValue::NotPositive(text.to_string()));
    }
    if value < MIN_SECONDS {
        return Err(BadValue::TooShort { text: text.to_string() });
    }
    if value > MAX_SECONDS {
        return Err(BadValue::TooLong { text: text.to_string() });
    }
    Ok(Duration::from_secs_f64(value))
}

/// A whole number of at least 2: an execution budget must leave room for the two reference runs.
fn at_least_two(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 2 => Ok(n),
        Ok(_) => Err(format!(
            "`{text}` leaves no room for a fault: the two fault-free reference runs count, give at least 2"
        )),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// `K/N` with 1 ≤ K ≤ N.
fn partition(text: &str) -> Result<Partition, BadValue> {
    let parsed = text.split_once('/').and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
    let (k, n) = parsed.ok_or_else(|| BadValue::NotAPartition(text.to_string()))?;
    Partition::new(k, n).ok_or_else(|| BadValue::NotAShare(text.to_string()))
}

/// `--order`: the planner's orders by their command-line names (`breadth` and `depth` are accepted too).
impl clap::ValueEnum for Order {
    fn value_variants<'a>() -> &'a [Self] {
        &[Order::Coverage, Order::Breadth, Order::Depth]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        // The names are `Order`'s `Display`, as the report writes them.
        Some(match self {
            Order::Coverage => {
                PossibleValue::new("coverage").help("Call sites that guard still-uncovered failure handling first")
            }
            Order::Breadth => {
                PossibleValue::new("bfs").alias("breadth").help("Fewest faults first, then in discovery order")
            }
            Order::Depth => PossibleValue::new("dfs").alias("depth").help("Most recently discovered first"),
        })
    }
}

impl ExploreArgs {
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

    /// Lays the options given over `config`, the program's settings; loads the fault catalog (`--catalog`,
    /// else `faults.catalog` in the working directory when there is one).
    pub fn configure(&self, mut config: Config) -> Result<Config, crate::Error> {
        config.max_faults = self.max_faults.unwrap_or(config.max_faults);
        config.order = self.order.unwrap_or(config.order);
        if self.no_reduce {
            config.reduce = false;
        }
        config.max_executions = self.max_executions.or(config.max_executions);
        config.max_time = self.max_time.or(config.max_time);
        config.deadline = self.deadline.unwrap_or(config.deadline);
        let default_catalog = PathBuf::from("faults.catalog");
        let catalog_path = match &self.catalog {
            Some(path) => Some(path.clone()),
            None if default_catalog.exists() => Some(default_catalog),
            None => None,
        };
        if let Some(path) = catalog_path {
            config.catalog = Catalog::load(&path)?;
        }
        if !self.faults.is_empty() {
            config.catalog = config.catalog.only(self.faults.clone());
        }
        config.report_dir = self.report_dir.clone().or(config.report_dir);
        config.jobs = self.jobs.unwrap_or(config.jobs);
        config.partition = self.partition.or(config.partition);
        config.progress = !self.quiet;
        Ok(config)
    }
}

/// Parses the program's arguments into `P`. `--help` prints the help on stdout; a usage error prints one
/// line on stderr, `program: what is wrong` (see [`error_line`]). Either way the caller returns the exit
/// code given: 0 after help, [`EXIT_CANNOT_RUN`] after an error.
pub fn parse<P: clap::Parser>() -> Result<P, ExitCode> {
    parse_from(std::env::args_os())
}

/// [`parse`] of the given arguments, the program name first.
pub fn parse_from<P, I>(args: I) -> Result<P, ExitCode>
where
    P: clap::Parser,
    I: IntoIterator,
    I::Item: Into<OsString> + Clone,
{
    match P::try_parse_from(args) {
        Ok(parsed) => Ok(parsed),
        Err(error) if !error.use_stderr() => {
            // Help (or a version) was asked for; a closed stdout is not worth a second message.
            let _ = error.print();
            Err(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{}: {}", P::command().get_name(), error_line(&error));
            Err(ExitCode::from(EXIT_CANNOT_RUN))
        }
    }
}

/// A usage error as one line without the `error:` prefix: the flag, then what is wrong with its value
/// (`--order: unknown order `sideways`; expected one of: coverage, bfs, dfs`), or the argument clap did
/// not expect, with clap's suggestion and where to read the usage (`(see cloture merge --help)`).
pub fn error_line(error: &clap::Error) -> String {
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        Some(ContextValue::Strings(texts)) => Some(texts.join(", ")),
        _ => None,
    };
    let argument = context(ContextKind::InvalidArg).unwrap_or_default();
    // `--edition <EDITION>` → `--edition` and `edition`; a positional `<SERVICE>` → no flag, `service`.
    let flag = argument.split([' ', '=']).next().filter(|flag| flag.starts_with('-'));
    let noun = argument.rsplit('<').next().unwrap_or_default().trim_end_matches(['>', '.']).to_lowercase();
    let named = |text: String| flag.map_or(text.clone(), |flag| format!("{flag}: {text}"));
    let see = match usage_command(error) {
        Some(command) => format!(" (see {command} --help)"),
        None => " (see --help)".to_string(),
    };
    let suggestion = [ContextKind::SuggestedArg, ContextKind::SuggestedSubcommand, ContextKind::SuggestedValue]
        .into_iter()
        .find_map(context)
        .map(|suggested| format!("; did you mean `{suggested}`?"))
        .unwrap_or_default();
    match error.kind() {
        ErrorKind::InvalidValue => {
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            let valid = context(ContextKind::ValidValue).unwrap_or_default();
            if value.is_empty() {
                let expected = if valid.is_empty() { String::new() } else { format!("; expected one of: {valid}") };
                format!("{argument} needs a value{expected}")
            } else {
                named(format!("unknown {noun} `{value}`; expected one of: {valid}{suggestion}"))
            }
        }
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
            named(why)
        }
        ErrorKind::UnknownArgument if argument.starts_with('-') => {
            format!("invalid option '{argument}'{suggestion}{see}")
        }
        ErrorKind::UnknownArgument => format!("unexpected argument '{argument}'{suggestion}{see}"),
        ErrorKind::InvalidSubcommand => {
            let command = context(ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("unknown command `{command}`{suggestion}{see}")
        }
        ErrorKind::MissingRequiredArgument => format!("missing {argument}{see}"),
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            format!("{}{see}", first.trim_start_matches("error: "))
        }
    }
}

/// The command an error's usage line is about (`cloture merge`), for pointing at its `--help`.
fn usage_command(error: &clap::Error) -> Option<String> {
    let Some(ContextValue::StyledStr(usage)) = error.get(ContextKind::Usage) else { return None };
    let usage = usage.to_string();
    let line = usage.lines().next()?.trim_start_matches("Usage:");
    let words: Vec<&str> = line.split_whitespace().take_while(|word| !word.starts_with(['-', '[', '<'])).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Runs the command: explores (or replays), prints the summary, writes the reports, and returns the exit
/// code ([`EXIT_CODES`]): 0 when the exploration completed (its findings are its output), 1 under
/// `--strict` when any execution failed, 2 when the exploration itself could not run.
pub async fn run<T, F>(command: &Command, args: &ExploreArgs, config: &Config, test: T) -> ExitCode
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    run_with(command, args, config, test, None).await
}

/// [`run`] with a given coverage probe (e.g. one for services in other processes); without one, a probe
/// for this process is made when `config.coverage_paths` is set.
pub async fn run_with<T, F>(
    command: &Command,
    args: &ExploreArgs,
    config: &Config,
    test: T,
    probe: Option<CoverageProbe>,
) -> ExitCode
where
    T: Fn() -> F,
    F: Future,
    F::Output: Verdict,
{
    // Programs install the listener first thing (start-up included); this covers those that did not.
    let _signals = match crate::signals::Listener::start(config.cancel.clone()) {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "signals cannot be handled: Ctrl-C ends the program at once");
            None
        }
    };
    let result = match command {
        Command::Replay { id } => crate::explore::replay(config, id, test).await,
        Command::Explore => {
            let mut probe = probe.or_else(|| {
                (!config.coverage_paths.is_empty())
                    .then(|| CoverageProbe::new(&workspace_root(), config.coverage_paths.clone()))
            });
            match probe.as_mut() {
                None => crate::explore::explore(config, test).await,
                Some(probe) => {
                    let result = crate::explore::explore_with(config, test, Some(probe)).await;
                    if probe.snapshots > 0 && !args.quiet {
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
    let report = match result {
        Ok(report) => report,
        Err(crate::Error::ReportNotWritten { why, fallback, summary }) => {
            // The findings are shown even though the file could not be written where asked.
            print!("{summary}");
            let error = crate::Error::ReportNotWritten { why, fallback, summary: String::new() };
            eprintln!("cloture: {error}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
        Err(error) => {
            eprintln!("cloture: {error}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    if !args.quiet {
        print!("{}", report.terminal_summary());
    }
    if let (Command::Explore, Some(dir)) = (command, &config.report_dir) {
        if !args.quiet {
            println!("report: {}", dir.join("report.json").display());
        }
    }
    if let Command::Replay { id } = command {
        let outcome = report.executions.first().map(|e| e.outcome);
        println!("replay of {id}: {}", if outcome == Some(crate::report::Outcome::Pass) { "pass" } else { "fail" });
    }
    if let Some(status) = config.cancel.signal_exit_status() {
        return ExitCode::from(status);
    }
    if args.strict && report.summary.failed > 0 {
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}

pub use crate::files::workspace_root;
pub use crate::text::shell_quote;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A program as `cinema-faulty` is one: its own global flag, the explorer's options, the commands.
    #[derive(Debug, clap::Parser)]
    #[command(name = "program")]
    struct Program {
        #[command(subcommand)]
        command: Option<Command>,
        #[arg(long, global = true)]
        edition: Option<String>,
        #[command(flatten)]
        explore: ExploreArgs,
    }

    fn parse(line: &str) -> Result<Program, clap::Error> {
        Program::try_parse_from(std::iter::once("program").chain(line.split_whitespace()))
    }

    fn error(line: &str) -> String {
        error_line(&parse(line).expect_err("a usage error"))
    }

    #[test]
    fn a_full_command_line_parses_into_typed_values() {
        let program = parse(
            "explore --max-faults 3 --order bfs --faults timeout,status:503 --strict --edition hardened --jobs 4 \
             --partition 2/3 --deadline 2.5 --max-time 60 --max-executions 100 --no-reduce --quiet",
        )
        .unwrap();
        assert_eq!(program.command, Some(Command::Explore));
        assert_eq!(program.edition.as_deref(), Some("hardened"));
        let args = &program.explore;
        assert_eq!(args.max_faults, Some(3));
        assert_eq!(args.order, Some(Order::Breadth));
        assert_eq!(args.faults, vec![Fault::Timeout, Fault::Status(503)]);
        assert_eq!((args.jobs, args.partition), (Some(4), Partition::new(2, 3)));
        assert_eq!((args.deadline, args.max_time), (Some(Duration::from_millis(2500)), Some(Duration::from_secs(60))));
        assert!(args.strict && args.quiet && args.no_reduce);
        let config = args.configure(Config::default()).unwrap();
        assert_eq!((config.jobs, config.partition, config.max_faults), (4, Partition::new(2, 3), 3));
        assert_eq!((config.order, config.reduce, config.progress), (Order::Breadth, false, false));
        assert_eq!((config.max_executions, config.deadline), (Some(100), Duration::from_millis(2500)));
    }

    #[test]
    fn options_go_before_or_after_the_command_which_may_be_left_out() {
        let replay = parse("--edition hardened replay 0123456789ab --deadline 2").unwrap();
        assert_eq!(replay.command, Some(Command::Replay { id: "0123456789ab".into() }));
        assert_eq!(replay.edition.as_deref(), Some("hardened"));
        assert_eq!(replay.explore.deadline, Some(Duration::from_secs(2)));
        let bare = parse("--order breadth --faults connect --faults status:500").unwrap();
        assert_eq!(bare.command, None);
        assert_eq!(bare.explore.order, Some(Order::Breadth));
        assert_eq!(bare.explore.faults, vec![Fault::Connect, Fault::Status(500)]);
    }

    #[test]
    fn options_not_given_leave_the_programs_config_as_it_is() {
        let program = Config { max_faults: 1, jobs: 3, report_dir: Some("reports".into()), ..Config::default() };
        let config = parse("").unwrap().explore.configure(program.clone()).unwrap();
        assert_eq!((config.max_faults, config.jobs, config.report_dir), (1, 3, program.report_dir));
        assert_eq!((config.order, config.deadline, config.reduce), (program.order, program.deadline, true));
    }

    #[test]
    fn replay_commands_repeat_the_report_dir_and_the_deadline() {
        assert_eq!(parse("explore").unwrap().explore.replay_flags(), "");
        let program =
            Program::try_parse_from(["program", "--report-dir", "/tmp/my reports", "--deadline", "2.5"]).unwrap();
        let flags = program.explore.replay_flags();
        assert_eq!(flags, " --report-dir '/tmp/my reports' --deadline 2.5");
        let again = Program::try_parse_from(["program", "--report-dir", "/tmp/my reports", "--deadline", "2.5"]);
        assert_eq!(again.unwrap().explore, program.explore, "the flags parse back to the same options");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn bad_values_get_one_line_naming_the_flag_and_the_value() {
        for (line, expected) in [
            (
                "--faults tiemout",
                "--faults: unknown fault `tiemout`: expected `connect`, `timeout`, `slow`, `delay:D`, `status:NNN` or \
                 `grpc:CODE`",
            ),
            (
                "--faults timeout,",
                "--faults: a fault name is empty (a stray comma?): expected `connect`, `timeout`, `slow`, `delay:D`, \
                 `status:NNN` or `grpc:CODE`",
            ),
            ("--order sideways", "--order: unknown order `sideways`; expected one of: coverage, bfs, dfs"),
            (
                "--order covrage",
                "--order: unknown order `covrage`; expected one of: coverage, bfs, dfs; did you mean `coverage`?",
            ),
            ("--max-faults many", "--max-faults: `many` is not a whole number"),
            ("--max-faults 0", "--max-faults: `0` is not at least 1"),
            ("--jobs 0", "--jobs: `0` is not at least 1"),
            ("--jobs some", "--jobs: `some` is not a whole number"),
            ("--deadline -1", "--deadline: `-1` is not a positive number of seconds"),
            ("--max-faults -1", "--max-faults: `-1` is not a whole number"),
            ("--deadline 0", "--deadline: `0` is not a positive number of seconds"),
            ("--deadline 0.0000001", "--deadline: `0.0000001` is too short: at least 0.001 s (one millisecond)"),
            ("--deadline 1e30", "--deadline: `1e30` is too long: at most 31536000 s (a year)"),
            ("--max-time 1e300", "--max-time: `1e300` is too long: at most 31536000 s (a year)"),
            ("--max-time NaN", "--max-time: `NaN` is not a positive number of seconds"),
            ("--max-time soon", "--max-time: `soon` is not a number of seconds"),
            ("--partition 3/2", "--partition: `3/2` is not a share of the plan: K/N needs 1 ≤ K ≤ N"),
            ("--partition 0/2", "--partition: `0/2` is not a share of the plan: K/N needs 1 ≤ K ≤ N"),
            ("--partition 1/0", "--partition: `1/0` is not a share of the plan: K/N needs 1 ≤ K ≤ N"),
            ("--partition x", "--partition: `x` is not of the form K/N, e.g. 1/2"),
            ("--stirct", "invalid option '--stirct'; did you mean `--strict`? (see program --help)"),
            ("frobnicate", "unknown command `frobnicate` (see program --help)"),
            ("replay", "missing <ID> (see program replay --help)"),
            ("--deadline", "--deadline <SECONDS> needs a value"),
            ("--order", "--order <ORDER> needs a value; expected one of: coverage, bfs, dfs"),
        ] {
            assert_eq!(error(line), expected, "{line}");
        }
    }

    #[test]
    fn every_order_is_named_on_the_command_line_as_the_report_names_it() {
        use clap::ValueEnum;
        for order in Order::value_variants() {
            assert_eq!(order.to_possible_value().unwrap().get_name(), order.to_string());
        }
    }

    #[test]
    fn a_catalog_that_cannot_be_read_is_named() {
        let args = parse("--catalog /nonexistent/faults.catalog").unwrap().explore;
        let error = args.configure(Config::default()).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/faults.catalog"), "{error}");
    }
}
