//! `cinema-faulty`: fault exploration of the cinema's users service, in one process (`make faulty`).
//!
//! Starts the four services on free loopback ports, then lets cloture run the faulty functional test
//! `GET /users/{user}/bookings` with faults injected at every call users makes. Prints the vulnerabilities
//! and writes `target/cloture/report.json` and `report.html`. The command line is cloture's
//! (`cloture::cli`: `explore`, `replay <id>`, the explorer's options, the exit codes) with the cinema's
//! own options next to it.

use std::process::ExitCode;

use cinema::{CinemaConfig, Edition, Service};
use cinema_tests::scenario::{Oracle, UserBookingsTest};
use clap::Parser;
use cloture::cli;
use cloture::{Catalog, Config};

/// Explore faults in the cinema's users service
#[derive(Debug, Parser)]
#[command(name = "cinema-faulty", after_help = cli::EXIT_CODES)]
struct Faulty {
    #[command(subcommand)]
    command: Option<cli::Command>,
    /// The users service's edition [default: $CINEMA_EDITION, else recitation]
    #[arg(long, value_enum, global = true)]
    edition: Option<Edition>,
    /// Whose bookings the test asks for
    #[arg(long, value_name = "NAME", global = true, default_value = DEFAULT_USER, value_parser = known_user)]
    user: String,
    /// What the test accepts
    #[arg(long, value_enum, global = true, default_value_t = Oracle::Accepting)]
    oracle: Oracle,
    #[command(flatten)]
    explore: cli::ExploreArgs,
}

const DEFAULT_USER: &str = "chris_rivers";

/// A user of the cinema's databases.
fn known_user(name: &str) -> Result<String, String> {
    match cinema::Data::embedded().users.contains_key(name) {
        true => Ok(name.to_string()),
        false => Err(format!("unknown user `{name}`")),
    }
}

fn main() -> ExitCode {
    cinema_tests::init_logging();
    let faulty: Faulty = match cli::parse() {
        Ok(faulty) => faulty,
        Err(code) => return code,
    };
    let edition = match faulty.edition {
        Some(edition) => edition,
        None => match std::env::var("CINEMA_EDITION") {
            Ok(text) if !text.is_empty() => match text.parse() {
                Ok(edition) => edition,
                Err(error) => {
                    eprintln!("cinema-faulty: CINEMA_EDITION: {error}");
                    return ExitCode::from(cli::EXIT_CANNOT_RUN);
                }
            },
            _ => Edition::default(),
        },
    };
    let config = match config(&faulty, edition) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("cinema-faulty: {error}");
            return ExitCode::from(cli::EXIT_CANNOT_RUN);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime builds");
    runtime.block_on(explore(&faulty, edition, config))
}

/// The explorer's settings: the cinema's, with the command line's options over them.
fn config(faulty: &Faulty, edition: Edition) -> Result<Config, cloture::Error> {
    let root = cli::workspace_root();
    let mut config = Config {
        name: "test_cinema_user_user_faulty_bookings".to_string(),
        report_dir: Some(root.join("target").join("cloture")),
        coverage_paths: vec!["cinema/src/".to_string()],
        ..Config::default()
    };
    let catalog = root.join("cinema").join("faults.catalog");
    if catalog.exists() {
        config.catalog = Catalog::load(&catalog)?;
    }
    let mut replay = format!("cargo run -p cinema-tests --bin cinema-faulty -- replay {{id}} --edition {edition}");
    if faulty.user != DEFAULT_USER {
        replay.push_str(&format!(" --user {}", cli::shell_quote(&faulty.user)));
    }
    if faulty.oracle != Oracle::Accepting {
        replay.push_str(&format!(" --oracle {}", faulty.oracle));
    }
    replay.push_str(&faulty.explore.replay_flags());
    config.replay_command = replay;
    config.labels.insert("edition".to_string(), edition.to_string());
    config.labels.insert("user".to_string(), faulty.user.clone());
    config.labels.insert("oracle".to_string(), faulty.oracle.to_string());
    faulty.explore.configure(config)
}

async fn explore(faulty: &Faulty, edition: Edition, config: Config) -> ExitCode {
    let _signals = cloture::signals::Listener::start(config.cancel.clone());
    let cinema = match cinema::start(CinemaConfig::new(edition)).await {
        Ok(cinema) => cinema,
        Err(error) => {
            eprintln!("cinema-faulty: cannot start the cinema: {error}");
            return ExitCode::from(cli::EXIT_CANNOT_RUN);
        }
    };
    let test = UserBookingsTest::new(&cinema.url(Service::Users), &faulty.user, faulty.oracle);
    let command = faulty.command.clone().unwrap_or(cli::Command::Explore);
    let code = cli::run(&command, &faulty.explore, &config, || test.clone().run()).await;
    // A clean shutdown, so the coverage profile of the whole run is written at exit.
    if let Err(error) = cinema.shutdown().await {
        eprintln!("cinema-faulty: shutting the cinema down: {error}");
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Faulty {
        Faulty::try_parse_from(std::iter::once("cinema-faulty").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_cinemas_options_go_before_or_after_the_command() {
        for args in [
            &["--edition", "hardened", "--user", "garret_heaton", "--oracle", "strict", "replay", "0123"][..],
            &["replay", "0123", "--edition", "hardened", "--user", "garret_heaton", "--oracle", "strict"],
            &["--oracle", "strict", "replay", "--user", "garret_heaton", "0123", "--edition", "hardened"],
        ] {
            let faulty = parse(args);
            assert_eq!(faulty.command, Some(cli::Command::Replay { id: "0123".into() }), "{args:?}");
            assert_eq!((faulty.edition, faulty.user.as_str()), (Some(Edition::Hardened), "garret_heaton"), "{args:?}");
            assert_eq!(faulty.oracle, Oracle::Strict, "{args:?}");
        }
        let plain = parse(&[]);
        assert_eq!((plain.command, plain.edition), (None, None));
        assert_eq!((plain.user.as_str(), plain.oracle), (DEFAULT_USER, Oracle::Accepting));
    }

    #[test]
    fn the_replay_command_repeats_what_the_exploration_was_given() {
        let faulty =
            parse(&["--user", "garret_heaton", "--oracle", "strict", "--deadline", "2", "--faults", "timeout"]);
        let config = config(&faulty, Edition::Hardened).unwrap();
        assert_eq!(
            config.replay_command,
            "cargo run -p cinema-tests --bin cinema-faulty -- replay {id} --edition hardened --user garret_heaton \
             --oracle strict --deadline 2"
        );
        let replay = config.replay_command.replace("{id}", "0123");
        let replayed = parse(&replay.split(" -- ").nth(1).unwrap().split(' ').collect::<Vec<_>>());
        assert_eq!(replayed.command, Some(cli::Command::Replay { id: "0123".into() }));
        assert_eq!((replayed.user, replayed.oracle), (faulty.user, faulty.oracle));
        assert_eq!(replayed.explore.deadline, faulty.explore.deadline);
    }
}
