//! The `cloture` binary's command line as a user meets it: every command answers `--help` with its options
//! (the help texts are snapshots under `snapshots/`), and bad input gets one line on stderr naming what is
//! wrong, and exit 2.

use std::process::{Command, Output};

fn cloture(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloture")).args(args).env_remove("RUST_LOG").output().expect("cloture runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn every_command_answers_help_with_its_options() {
    let explore_options = ["--functional-test", "--services", "--name", "--coverage", "--max-faults", "--order"];
    let explore_options =
        [&explore_options[..], &["--deadline", "--partition", "--jobs", "--strict", "Exit status"]].concat();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--help"], &["explore", "replay", "summary", "dot", "milestones", "catalog", "merge", "RUST_LOG"]),
        (&["explore", "--help"], &explore_options),
        (&["replay", "--help"], &[&["<ID>"][..], &explore_options].concat()),
        (&["summary", "--help"], &["[REPORT]", "target/cloture/report.json"]),
        (&["dot", "--help"], &["[REPORT]"]),
        (&["milestones", "--help"], &["<REPORT>", "[PREFIX]"]),
        (&["catalog", "--help"], &["scan", "check"]),
        (&["catalog", "scan", "--help"], &["<SERVICE=FILE>...", "--output <OUT>"]),
        (&["catalog", "check", "--help"], &["<FILE>"]),
        (&["merge", "--help"], &["<REPORT>...", "--output <OUT>"]),
    ];
    for (args, mentioned) in cases {
        let output = cloture(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        let help = stdout(&output);
        for option in *mentioned {
            assert!(help.contains(option), "{args:?} mentions {option}:\n{help}");
        }
        insta::assert_snapshot!(format!("help-{}", args[..args.len() - 1].join("-")).trim_end_matches('-'), help);
    }
}

#[test]
fn no_command_or_help_prints_the_commands() {
    let bare = cloture(&[]);
    assert_eq!(bare.status.code(), Some(0));
    assert_eq!(stdout(&bare), stdout(&cloture(&["-h"])));
    let help = cloture(&["help", "merge"]);
    assert_eq!(help.status.code(), Some(0));
    assert_eq!(stdout(&help), stdout(&cloture(&["merge", "--help"])));
}

#[test]
fn bad_input_gets_one_line_naming_it_and_exit_2() {
    let explore = ["explore", "--functional-test", "true", "--services", "/nonexistent/services.json"];
    let with = |extra: &[&'static str]| [&explore[..], extra].concat();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["frobnicate"], "cloture: unknown command `frobnicate` (see cloture --help)"),
        (vec!["merge", "a.json"], "cloture: missing --output <OUT> (see cloture merge --help)"),
        (vec!["merge", "-o", "out.json"], "cloture: missing <REPORT>... (see cloture merge --help)"),
        (vec!["merge", "--frobnicate"], "cloture: invalid option '--frobnicate' (see cloture merge --help)"),
        (vec!["catalog", "scan", "bookings"], "cloture: `bookings` is not of the form SERVICE=FILE"),
        (
            vec!["explore", "--services", "s.json"],
            "cloture: missing <--functional-test <COMMAND>|--runner <COMMAND>> (see cloture explore --help)",
        ),
        (
            vec!["explore", "--services", "s.json", "--functional-test", "a", "--runner", "b"],
            "cloture: the argument '--functional-test <COMMAND>' cannot be used with '--runner <COMMAND>'",
        ),
        (with(&["--partition", "1/0"]), "cloture: --partition: `1/0` is not a share of the plan: K/N needs 1 ≤ K ≤ N"),
        (with(&["--partition", "3/2"]), "cloture: --partition: `3/2` is not a share of the plan: K/N needs 1 ≤ K ≤ N"),
        (
            with(&["--deadline", "0.0000001"]),
            "cloture: --deadline: `0.0000001` is too short: at least 0.001 s (one millisecond)",
        ),
        (with(&["--deadline", "1e30"]), "cloture: --deadline: `1e30` is too long: at most 31536000 s (a year)"),
        (with(&["--jobs", "0"]), "cloture: --jobs: `0` is not at least 1"),
        (
            with(&["--faults", "timeout,tiemout"]),
            "cloture: --faults: unknown fault `tiemout`: expected `connect`, `timeout`, `slow`, `delay:D`, `status:NNN` \
             or `grpc:CODE`",
        ),
        (
            with(&["--order", "sideways"]),
            "cloture: --order: unknown order `sideways`; expected one of: coverage, bfs, dfs",
        ),
        (with(&[]), "cloture: cannot read /nonexistent/services.json"),
        (vec!["summary", "/nonexistent/report.json"], "cloture: cannot read report /nonexistent/report.json"),
    ];
    for (args, expected) in cases {
        let output = cloture(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

/// Audit defects about values on the command line: each one refused with the reason, exit 2, one line.
#[test]
fn d16_d18_d20_bad_values_are_refused_naming_them_once() {
    let dir = std::env::temp_dir().join(format!("cloture-cli-d20-{}", std::process::id()));
    let missing = dir.join("missing.catalog");
    let missing = missing.to_string_lossy();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // D16: a catalog scan never writes a name the catalog reader refuses.
        (vec!["catalog", "scan", "a b=cinema/src/movies.rs"], "cloture: `a b` is not a service name"),
        (vec!["catalog", "scan", "x#y=cinema/src/movies.rs"], "cloture: `x#y` is not a service name"),
        // D18: durations that round to nothing or overflow, budgets with no room for a fault.
        (
            vec!["explore", "--functional-test", "true", "--services", "s.json", "--deadline", "1e-300"],
            "cloture: --deadline: `1e-300` is too short",
        ),
        (
            vec!["explore", "--functional-test", "true", "--services", "s.json", "--max-time", "1e18"],
            "cloture: --max-time: `1e18` is too long",
        ),
        (
            vec!["explore", "--functional-test", "true", "--services", "s.json", "--max-executions", "1"],
            "cloture: --max-executions: `1` leaves no room for a fault",
        ),
    ];
    for (args, expected) in cases {
        let output = cloture(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    // D20: an I/O error says its cause once.
    let output = cloture(&["catalog", "check", &missing]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
}
