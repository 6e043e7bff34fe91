//! `cinema-faulty`, the program behind `make faulty`, run as a user runs it: exit codes, reports, replay,
//! `--help` of every command (snapshots under `snapshots/`), and one clear line for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cinema-faulty")).args(args).output().expect("cinema-faulty runs")
}

fn report_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cloture-cli-{name}-{}", std::process::id()))
}

#[test]
fn an_exploration_exits_0_with_findings_and_1_under_strict() {
    let dir = report_dir("strict");
    let dir_text = dir.to_str().unwrap();
    let plain = run(&["explore", "--report-dir", dir_text]);
    assert_eq!(plain.status.code(), Some(0), "{}", String::from_utf8_lossy(&plain.stderr));
    let summary = String::from_utf8_lossy(&plain.stdout);
    assert!(summary.contains("3 vulnerabilities") && summary.contains("replay:"), "{summary}");
    for file in ["report.json", "report.html", "call_graph.dot"] {
        assert!(dir.join(file).exists(), "{file} is written");
    }
    let strict = run(&["explore", "--strict", "--quiet", "--report-dir", dir_text]);
    assert_eq!(strict.status.code(), Some(1));
    let hardened = run(&["--edition", "hardened", "--strict", "--quiet", "--report-dir", dir_text]);
    assert_eq!(hardened.status.code(), Some(0));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_printed_replay_command_reproduces_the_failure() {
    let dir = report_dir("replay");
    let dir_text = dir.to_str().unwrap();
    assert_eq!(run(&["--quiet", "--report-dir", dir_text]).status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let id = report["vulnerabilities"][0]["executions"][0].as_str().expect("an execution id").to_string();
    let replay = run(&["replay", &id, "--report-dir", dir_text]);
    let out = String::from_utf8_lossy(&replay.stdout);
    assert!(out.contains(&format!("replay of {id}: fail")), "{out}");
    let unknown = run(&["replay", "0000deadbeef", "--report-dir", dir_text]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no execution `0000deadbeef`"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    for (args, needle) in [
        (vec!["--edition", "vulnerable"], "unknown edition `vulnerable`"),
        (vec!["--faults", "tiemout"], "tiemout"),
        (vec!["--user", "nobody"], "unknown user `nobody`"),
        (vec!["--oracle", "lenient"], "unknown oracle `lenient`"),
        (vec!["--catalog", "/nonexistent.catalog"], "/nonexistent.catalog"),
        (vec!["--frobnicate"], "frobnicate"),
        (vec!["--edition", "hardend"], "did you mean `hardened`?"),
        (vec!["explore", "--partition", "1/0"], "--partition: `1/0` is not a share of the plan"),
        (vec!["--partition", "3/2", "explore"], "--partition: `3/2` is not a share of the plan"),
        (vec!["--deadline", "0.0000001"], "--deadline: `0.0000001` is too short"),
        (vec!["--deadline", "1e30"], "--deadline: `1e30` is too long"),
        (vec!["--max-time", "-3"], "--max-time: `-3` is not a positive number of seconds"),
        (vec!["--jobs", "0"], "--jobs: `0` is not at least 1"),
        (vec!["--order", "sideways"], "--order: unknown order `sideways`; expected one of: coverage, bfs, dfs"),
        (vec!["replay"], "missing <ID> (see cinema-faulty replay --help)"),
        (vec!["frobnicate"], "unknown command `frobnicate` (see cinema-faulty --help)"),
    ] {
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("cinema-faulty: ") && stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn every_command_answers_help_with_its_options() {
    let options =
        ["--edition", "--user", "--oracle", "--max-faults", "--order", "--faults", "--deadline", "--report-dir"];
    let options = [&options[..], &["--jobs", "--partition", "--strict", "--quiet", "Exit status"]].concat();
    for (args, name) in [
        (&["--help"][..], "help"),
        (&["explore", "--help"], "help-explore"),
        (&["replay", "--help"], "help-replay"),
        (&["help", "replay"], "help-replay"),
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        let help = String::from_utf8(output.stdout).expect("UTF-8 help");
        for option in &options {
            assert!(help.contains(option), "{args:?} mentions {option}:\n{help}");
        }
        insta::assert_snapshot!(name, help);
    }
}
