//! `cinema-faulty`: fault exploration of the cinema's users service, in one process (`make faulty`).
//!
//! Starts the four services on free loopback ports, then lets cloture run the faulty functional test
//! `GET /users/{user}/bookings` with faults injected at every call users makes. Prints the vulnerabilities
//! and writes `target/cloture/report.json` and `report.html`. Exit status 0 when the exploration completed
//! (its findings are its output), 1 under `--strict` when any execution failed, 2 on bad input.

use std::ffi::OsString;
use std::process::ExitCode;

use cinema::{CinemaConfig, Edition, Service};
use cinema_tests::scenario::{Oracle, UserBookingsTest};
use cloture::cli::{self, Command};
use cloture::{Catalog, Config};

const HELP: &str = "\
cinema-faulty: explore faults in the cinema's users service

usage: cinema-faulty [explore | replay <id>] [--edition recitation|hardened] [--user NAME]
                     [--oracle accepting|strict] [options]

  --edition E             users service edition (default recitation, or $CINEMA_EDITION)
  --user NAME             whose bookings the test asks for (default chris_rivers)
  --oracle O              accepting: 503/404 accepted when a fault was injected (default);
                          strict: only the fault-free answer is accepted";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let options = match cli::parse(args, &["edition", "user", "oracle"]) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("cinema-faulty: {error} (try --help)");
            return ExitCode::from(2);
        }
    };
    if options.command == Command::Help {
        println!("{HELP}\n\n{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    match settings(&options) {
        Ok((edition, user, oracle, config)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            runtime.block_on(explore(&options, edition, &user, oracle, config))
        }
        Err(error) => {
            eprintln!("cinema-faulty: {error}");
            ExitCode::from(2)
        }
    }
}

fn settings(options: &cli::Options) -> Result<(Edition, String, Oracle, Config), String> {
    let edition_text = match options.extra("edition") {
        Some(text) => text.to_string(),
        None => std::env::var("CINEMA_EDITION").unwrap_or_else(|_| "recitation".to_string()),
    };
    let edition: Edition = edition_text.parse().map_err(|error: cinema::UnknownName| error.to_string())?;
    let user = options.extra("user").unwrap_or("chris_rivers").to_string();
    if !cinema::Data::embedded().users.contains_key(&user) {
        return Err(format!("unknown user `{user}`"));
    }
    let oracle: Oracle = options.extra("oracle").unwrap_or("accepting").parse()?;
    let root = cli::workspace_root();
    let mut config = Config {
        name: "test_cinema_user_user_faulty_bookings".to_string(),
        report_dir: Some(root.join("target").join("cloture")),
        coverage_paths: vec!["cinema/src/".to_string()],
        ..Config::default()
    };
    let catalog = root.join("cinema").join("faults.catalog");
    if catalog.exists() {
        config.catalog = Catalog::load(&catalog).map_err(|error| error.to_string())?;
    }
    let mut replay = format!("cargo run -p cinema-tests --bin cinema-faulty -- replay {{id}} --edition {edition}");
    if user != "chris_rivers" {
        replay.push_str(&format!(" --user {user}"));
    }
    if oracle != Oracle::Accepting {
        replay.push_str(&format!(" --oracle {oracle}"));
    }
    replay.push_str(&options.replay_flags());
    config.replay_command = replay;
    config.labels.insert("edition".to_string(), edition.to_string());
    config.labels.insert("user".to_string(), user.clone());
    config.labels.insert("oracle".to_string(), oracle.to_string());
    let config = options.configure(config)?;
    Ok((edition, user, oracle, config))
}

async fn explore(options: &cli::Options, edition: Edition, user: &str, oracle: Oracle, config: Config) -> ExitCode {
    let cinema = match cinema::start(CinemaConfig::new(edition)).await {
        Ok(cinema) => cinema,
        Err(error) => {
            eprintln!("cinema-faulty: cannot start the cinema: {error}");
            return ExitCode::from(2);
        }
    };
    let test = UserBookingsTest::new(&cinema.url(Service::Users), user, oracle);
    let code = cli::run(options, &config, || test.clone().run()).await;
    // A clean shutdown, so the coverage profile of the whole run is written at exit.
    if let Err(error) = cinema.shutdown().await {
        eprintln!("cinema-faulty: shutting the cinema down: {error}");
    }
    code
}
