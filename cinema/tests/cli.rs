//! The `cinema` binary as a user meets it: bad input gets one line on stderr saying what is wrong and a
//! non-zero exit, never a panic; `--help` prints the usage (a snapshot under `snapshots/`); and a running
//! cinema stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cinema(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cinema"));
    command.args(args).env_remove("CINEMA_EDITION").env_remove("RUST_LOG");
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("the cinema binary runs")
}

/// Asserts the run failed with `code` and exactly one line on stderr, `cinema: {message}`.
fn assert_one_line(output: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, format!("cinema: {message}\n"));
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
}

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("cinema-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_unknown_edition_is_named_with_the_valid_ones() {
    let output = run(cinema(&["users", "--edition", "tough"]).env("CINEMA_EDITION", "hardened"));
    assert_one_line(&output, 2, "--edition: unknown edition `tough`; expected one of: recitation, hardened");
    let output = run(cinema(&["all"]).env("CINEMA_EDITION", "Hardened"));
    assert_one_line(&output, 2, "CINEMA_EDITION: unknown edition `Hardened`; expected one of: recitation, hardened");
}

#[test]
fn an_unknown_service_or_flag_is_named() {
    let output = run(&mut cinema(&["theatre"]));
    assert_one_line(&output, 2, "unknown service `theatre`; expected one of: users, movies, showtimes, bookings, all");
    let output = run(&mut cinema(&["movies", "--verbose"]));
    assert_one_line(&output, 2, "invalid option '--verbose' (see cinema --help)");
    let output = run(&mut cinema(&[]));
    assert_one_line(
        &output,
        2,
        "missing the service to run: users, movies, showtimes, bookings or all (see cinema --help)",
    );
}

#[test]
fn a_port_in_use_is_named_with_its_address() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(&mut cinema(&["movies", "--port", &port]));
    assert_one_line(&output, 1, &format!("cannot listen on 127.0.0.1:{port}: address already in use"));
    let output = run(&mut cinema(&["all", "--base-port", &port]));
    assert_one_line(&output, 1, &format!("cannot listen on 127.0.0.1:{port}: address already in use"));
}

#[test]
fn a_malformed_data_file_is_named_with_its_line_and_column() {
    let dir = TempDir::new("malformed");
    std::fs::write(dir.0.join("movies.json"), "{\n  \"x\": {\"title\": \"Creed\",}\n}\n").unwrap();
    let output = run(&mut cinema(&["movies", "--port", "0", "--data", dir.0.to_str().unwrap()]));
    let file = dir.0.join("movies.json");
    assert_one_line(&output, 1, &format!("{}: trailing comma at line 2 column 26", file.display()));
}

#[test]
fn a_missing_data_file_is_named() {
    let dir = TempDir::new("empty");
    let output = run(&mut cinema(&["all", "--base-port", "0", "--data", dir.0.to_str().unwrap()]));
    let file = dir.0.join("users.json");
    assert_one_line(&output, 1, &format!("cannot read {}: No such file or directory (os error 2)", file.display()));
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    let output = run(&mut cinema(&["--help"]));
    assert!(output.status.success());
    let usage = String::from_utf8(output.stdout).unwrap();
    assert!(usage.starts_with("Usage: cinema <SERVICE> [OPTIONS]\n"), "{usage}");
    for option in ["--port", "--host", "--edition", "--data", "--bookings-url", "--movies-url", "--timeout-ms"] {
        assert!(usage.contains(option), "{option} is documented");
    }
    insta::assert_snapshot!("help", usage);
    let short = run(&mut cinema(&["-h"]));
    assert!(short.status.success());
    insta::assert_snapshot!("help-short", String::from_utf8(short.stdout).unwrap());
}

/// Waits up to ten seconds for `child` to exit.
fn wait(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("cinema did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[tokio::test]
async fn all_four_serve_until_sigterm_then_exit_cleanly() {
    let mut child = cinema(&["all", "--base-port", "0", "--edition", "hardened"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cinema binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut announced = Vec::new();
    for _ in 0..4 {
        announced.push(lines.next().expect("a line per service").unwrap());
    }
    assert!(announced[0].starts_with("users (hardened edition) listening on http://127.0.0.1:"), "{announced:?}");
    assert!(announced[3].starts_with("bookings listening on http://127.0.0.1:"), "{announced:?}");
    let users = announced[0].rsplit(' ').next().unwrap();

    let response = cloture::Client::new()
        .get(format!("{users}/users/chris_rivers/bookings"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("users answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().as_ref(),
        br#"{"20151201":[{"rating":8.8,"title":"Creed","uri":"/movies/267eedb8-0f5d-42d5-8f43-72426b9fb3e6"}]}"#
    );

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = wait(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}
