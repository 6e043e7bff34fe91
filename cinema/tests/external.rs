//! The cinema as four separate processes, explored by cloture with an external test command (the original
//! functional test, in Python, stdlib only): the same three vulnerabilities as in-process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloture::external::{ServicesFile, System};
use cloture::report::{FailureClass, Outcome};
use cloture::Config;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the cinema crate is in the workspace").to_path_buf()
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("address").port()).collect()
}

fn services(edition: &str) -> (ServicesFile, u16) {
    let ports = free_ports(4);
    let cinema = env!("CARGO_BIN_EXE_cinema");
    let [users, movies, showtimes, bookings] = [ports[0], ports[1], ports[2], ports[3]];
    let json = serde_json::json!({ "services": [
        { "name": "movies", "command": format!("{cinema} movies --port {movies}"), "port": movies, "ready": "/health-check" },
        { "name": "showtimes", "command": format!("{cinema} showtimes --port {showtimes}"), "port": showtimes, "ready": "/health-check" },
        { "name": "bookings", "command": format!("{cinema} bookings --port {bookings}"), "port": bookings, "ready": "/health-check" },
        { "name": "users", "command": format!(
            "{cinema} users --port {users} --edition {edition} --bookings-url http://127.0.0.1:{bookings} --movies-url http://127.0.0.1:{movies}"),
          "port": users, "ready": "/health-check" },
    ]});
    let file: ServicesFile = serde_json::from_value(json).expect("a valid services file");
    (file, users)
}

fn config(dir: &Path) -> Config {
    Config {
        name: "cinema in four processes".into(),
        deadline: Duration::from_secs(20),
        catalog: cloture::Catalog::load(&workspace().join("cinema/faults.catalog")).expect("catalog"),
        report_dir: Some(dir.to_path_buf()),
        ..Config::default()
    }
}

/// Starts the system `make` describes on free ports; a port taken between choosing and binding it (tests run
/// in parallel, and every connection takes an ephemeral port) means new ports and another try.
async fn start_on_free_ports<T>(dir: &Path, config: &Config, make: impl Fn() -> (ServicesFile, T)) -> (System, T) {
    let mut last = String::new();
    for _ in 0..5 {
        let (file, extra) = make();
        match System::start(&file, &dir.join("services"), config.cancel.clone()).await {
            Ok(system) => return (system, extra),
            Err(error) => {
                eprintln!("retrying on other ports: {error}");
                last = error;
            }
        }
    }
    panic!("the services did not start: {last}");
}

async fn explore(edition: &str) -> cloture::Report {
    let dir = std::env::temp_dir().join(format!("cloture-external-{edition}-{}", std::process::id()));
    let config = config(&dir);
    let (mut system, users) = start_on_free_ports(&dir, &config, || services(edition)).await;
    let script = workspace().join("tests/external/test_user_bookings.py");
    let command = format!("python3 {} http://127.0.0.1:{users}", script.display());
    let report = cloture::explore(&config, system.command_test(&command)).await;
    system.stop().await;
    let report = report.expect("the exploration completes");
    assert!(dir.join("report.json").exists() && dir.join("report.html").exists());
    std::fs::remove_dir_all(&dir).ok();
    report
}

#[tokio::test(flavor = "current_thread")]
async fn four_processes_of_the_recitation_edition_show_the_three_vulnerabilities() {
    let report = explore("recitation").await;
    let summary = report.terminal_summary();
    assert_eq!(report.vulnerabilities.len(), 3, "{summary}");
    let mut kinds = std::collections::BTreeSet::new();
    for execution in report.executions.iter().filter(|e| e.outcome == Outcome::Fail) {
        let failure = execution.failure.as_ref().expect("failure");
        let slow = execution.faults[0].fault == cloture::Fault::Slow;
        assert_eq!(failure.class, if slow { FailureClass::Hang } else { FailureClass::Crash }, "{summary}");
        assert!(failure.location.as_ref().is_some_and(|l| l.file == "cinema/src/users/recitation.rs"), "{summary}");
        kinds.insert((execution.faults[0].fault.family(), execution.faults[0].to.clone()));
    }
    let expected: std::collections::BTreeSet<(&str, String)> = [
        ("status", "bookings".to_string()),
        ("status", "movies".to_string()),
        ("slow", "bookings".to_string()),
        ("slow", "movies".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds, expected, "{summary}");
}

#[tokio::test(flavor = "current_thread")]
async fn four_processes_of_the_hardened_edition_pass_every_execution() {
    let report = explore("hardened").await;
    assert_eq!(report.summary.failed, 0, "{}", report.terminal_summary());
    // The two reference runs, then seven faults on each of users' two calls (connect, timeout, slow, three
    // error statuses and the 404 of the catalog).
    assert_eq!(report.summary.executions, 16, "{}", report.terminal_summary());
}

#[tokio::test(flavor = "current_thread")]
async fn a_port_in_use_is_reported_with_the_service_and_nothing_is_left_running() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = taken.local_addr().expect("address").port();
    let cinema = env!("CARGO_BIN_EXE_cinema");
    let file: ServicesFile = serde_json::from_value(serde_json::json!({ "services": [
        { "name": "movies", "command": format!("{cinema} movies --port {port}"), "port": port },
    ]}))
    .expect("valid");
    let dir = std::env::temp_dir().join(format!("cloture-port-{}", std::process::id()));
    let error = System::start(&file, &dir, Default::default()).await.err().expect("refused");
    assert!(error.contains(&format!("port {port}")) && error.contains("movies"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_malformed_services_file_names_the_file_and_the_problem() {
    let dir = std::env::temp_dir().join(format!("cloture-services-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (text, needle) in [
        ("{", "not a services file"),
        (r#"{"services": []}"#, "no services"),
        (r#"{"services": [{"name": "a b", "port": 1}]}"#, "not a service name"),
        (r#"{"services": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}"#, "twice"),
        (r#"{"services": [{"name": "a", "port": 1, "colour": "red"}]}"#, "colour"),
    ] {
        let path = dir.join("services.json");
        std::fs::write(&path, text).unwrap();
        let error = ServicesFile::load(&path).unwrap_err();
        assert!(error.contains("services.json") && error.contains(needle), "{text}: {error}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "current_thread")]
async fn a_service_that_dies_mid_run_stops_the_exploration_and_the_report_says_why() {
    let dir = std::env::temp_dir().join(format!("cloture-dies-{}", std::process::id()));
    let cinema = env!("CARGO_BIN_EXE_cinema");
    let config = config(&dir);
    // Bookings lives 3 s; the exploration, slowed down below, needs far longer (14 executions of 0.5 s).
    let (mut system, users) = start_on_free_ports(&dir, &config, || {
        let ports = free_ports(3);
        let (bookings, movies, users) = (ports[0], ports[1], ports[2]);
        let file: ServicesFile = serde_json::from_value(serde_json::json!({ "services": [
            { "name": "bookings", "command": format!("timeout 3 {cinema} bookings --port {bookings}"),
              "port": bookings, "ready": "/health-check" },
            { "name": "movies", "command": format!("{cinema} movies --port {movies}"), "port": movies,
              "ready": "/health-check" },
            { "name": "users", "command": format!(
                "{cinema} users --port {users} --edition hardened --bookings-url http://127.0.0.1:{bookings} --movies-url http://127.0.0.1:{movies}"),
              "port": users, "ready": "/health-check" },
        ]}))
        .expect("valid");
        (file, users)
    })
    .await;
    let url = format!("http://127.0.0.1:{users}/users/chris_rivers/bookings");
    let client = cloture::Client::new();
    let test = || {
        let (client, url) = (client.clone(), url.clone());
        system.in_execution(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let response = client.get(url).send().await.map_err(|e| e.to_string())?;
            match response.status().as_u16() {
                200 => Ok(()),
                503 | 404 if cloture::fault_injected() => Ok(()),
                other => Err(format!("status {other}")),
            }
        })
    };
    let report = cloture::explore(&config, test).await;
    system.stop().await;
    let report = report.expect("the exploration ends cleanly");
    assert!(!report.summary.complete, "{}", report.terminal_summary());
    let stopped = report.summary.stopped.clone().unwrap_or_default();
    assert!(stopped.contains("service `bookings` exited"), "{stopped}");
    assert!(report.summary.executions < 14, "{}", report.terminal_summary());
    let written = cloture::Report::read(&dir.join("report.json")).expect("the report is intact");
    assert_eq!(written.summary.executions, report.summary.executions);
    std::fs::remove_dir_all(&dir).ok();
}
