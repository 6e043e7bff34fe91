//! The `cinema` binary's command line, read in two stages: clap reads the arguments into typed [`Args`]
//! (unknown flags, missing values, values that are not ports, addresses, URLs or editions), then
//! [`validate`] checks what goes together and makes a [`Config`]. Pure: the caller passes the arguments
//! and `CINEMA_EDITION`; errors are one line (`cloture::cli::error_line`).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use cinema::{users, Edition, Service};
use clap::Parser;

/// The first of the four conventional ports: users 5000, movies 5001, showtimes 5002, bookings 5003.
pub const DEFAULT_BASE_PORT: u16 = 5000;

const ABOUT: &str = "\
Runs one service of the cinema example, or all four, until Ctrl-C or SIGTERM.

Services (and default ports):
  users      5000   calls bookings and movies
  movies     5001
  showtimes  5002
  bookings   5003
  all               the four together, users calling the other three";

const AFTER_HELP: &str = "\
Environment:
  CINEMA_EDITION  the edition when --edition is not given
  RUST_LOG        log filter (tracing-subscriber syntax) [default: warn]

Exit status:
  0  stopped by Ctrl-C or SIGTERM, after a clean shutdown
  1  could not serve (an address in use, unreadable data) or a service failed
  2  bad arguments";

/// The arguments, typed, before the checks of what goes together.
#[derive(Debug, Parser)]
#[command(
    name = "cinema",
    about = ABOUT,
    override_usage = "cinema <SERVICE> [OPTIONS]\n       cinema all [OPTIONS]",
    help_template = "{usage-heading} {usage}\n\n{about-with-newline}\n{all-args}{after-help}",
    after_help = AFTER_HELP
)]
struct Args {
    /// users, movies, showtimes, bookings, or all
    #[arg(value_name = "SERVICE", value_parser = target)]
    target: Option<Which>,
    /// IP address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = host)]
    host: IpAddr,
    /// Port of the one service [default: its own, above]
    #[arg(long, value_name = "N", value_parser = port)]
    port: Option<u16>,
    /// With `all`: first of four consecutive ports, 0 for any free ones [default: 5000]
    #[arg(long, value_name = "N", value_parser = port)]
    base_port: Option<u16>,
    /// users' bookings endpoint [default: $CINEMA_EDITION, else recitation]
    #[arg(long, value_enum)]
    edition: Option<Edition>,
    /// Read the databases (users.json, movies.json, ...) from DIR instead of the embedded ones
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where users calls bookings [default: http://127.0.0.1:5003]
    #[arg(long, value_name = "URL", value_parser = base_url)]
    bookings_url: Option<String>,
    /// Where users calls movies [default: http://127.0.0.1:5001]
    #[arg(long, value_name = "URL", value_parser = base_url)]
    movies_url: Option<String>,
    /// users' time limit for one call, hardened edition and suggestions [default: 2000]
    #[arg(long, value_name = "N", value_parser = milliseconds, allow_negative_numbers = true)]
    timeout_ms: Option<Duration>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// `--help`: the text to print.
    Help(String),
    Run(Config),
}

/// A validated configuration.
#[derive(Debug, PartialEq)]
pub struct Config {
    pub target: Target,
    pub host: IpAddr,
    pub edition: Edition,
    pub data: Option<PathBuf>,
    pub timeout: Duration,
}

/// Which services to run.
#[derive(Debug, PartialEq)]
pub enum Target {
    One { service: Service, port: u16, bookings_url: String, movies_url: String },
    All { base_port: u16 },
}

/// `SERVICE`: one of the four, or all.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Which {
    One(Service),
    All,
}

/// Reads the arguments (the program name first) and `CINEMA_EDITION`'s value.
pub fn parse(args: impl IntoIterator<Item = OsString>, env_edition: Option<OsString>) -> Result<Parsed, String> {
    match Args::try_parse_from(args) {
        Ok(args) => validate(args, env_edition).map(Parsed::Run),
        Err(error) if !error.use_stderr() => Ok(Parsed::Help(error.render().to_string())),
        Err(error) => Err(cloture::cli::error_line(&error)),
    }
}

fn target(text: &str) -> Result<Which, String> {
    match text {
        "all" => Ok(Which::All),
        service => service.parse().map(Which::One).map_err(|error| format!("{error}, all")),
    }
}

fn host(text: &str) -> Result<IpAddr, String> {
    match text {
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => text.parse().map_err(|_| format!("`{text}` is not an IP address")),
    }
}

fn port(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("`{text}` is not a port number (0 to 65535)"))
}

fn milliseconds(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(milliseconds) if milliseconds > 0 => Ok(Duration::from_millis(milliseconds)),
        _ => Err(format!("`{text}` is not a positive number of milliseconds")),
    }
}

/// An `http://host:port` URL, possibly with a path, without its trailing slash.
fn base_url(url: &str) -> Result<String, String> {
    let bad = || format!("`{url}` is not an http:// URL");
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() || uri.query().is_some() {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The checks of what goes together, and the defaults.
fn validate(args: Args, env_edition: Option<OsString>) -> Result<Config, String> {
    let Some(target) = args.target else {
        return Err("missing the service to run: users, movies, showtimes, bookings or all (see cinema --help)".into());
    };
    let edition = match (args.edition, env_edition.filter(|value| !value.is_empty())) {
        (Some(edition), _) => edition,
        (None, Some(edition)) => {
            let edition = edition.into_string().map_err(|_| "CINEMA_EDITION is not valid UTF-8".to_string())?;
            edition.parse().map_err(|error| format!("CINEMA_EDITION: {error}"))?
        }
        (None, None) => Edition::default(),
    };
    let target = match target {
        Which::All => {
            if args.port.is_some() {
                return Err("--port does not go with `all`: use --base-port".into());
            }
            for (flag, given) in [("--bookings-url", &args.bookings_url), ("--movies-url", &args.movies_url)] {
                if given.is_some() {
                    return Err(format!("{flag} does not go with `all`: users calls the services started with it"));
                }
            }
            let base_port = args.base_port.unwrap_or(DEFAULT_BASE_PORT);
            if base_port > u16::MAX - 3 {
                return Err(format!("--base-port: {base_port} leaves no room for four consecutive ports"));
            }
            Target::All { base_port }
        }
        Which::One(service) => {
            if args.base_port.is_some() {
                return Err("--base-port goes with `all` only: use --port".into());
            }
            if service != Service::Users {
                for (flag, given) in [("--bookings-url", &args.bookings_url), ("--movies-url", &args.movies_url)] {
                    if given.is_some() {
                        return Err(format!("{flag} is an option of users, not of {service}"));
                    }
                }
            }
            let default_url = |service| format!("http://127.0.0.1:{}", default_port(service));
            Target::One {
                service,
                port: args.port.unwrap_or(default_port(service)),
                bookings_url: args.bookings_url.unwrap_or_else(|| default_url(Service::Bookings)),
                movies_url: args.movies_url.unwrap_or_else(|| default_url(Service::Movies)),
            }
        }
    };
    let timeout = args.timeout_ms.unwrap_or(users::DEFAULT_TIMEOUT);
    Ok(Config { target, host: args.host, edition, data: args.data, timeout })
}

/// The conventional port of `service`.
pub fn default_port(service: Service) -> u16 {
    DEFAULT_BASE_PORT + u16::try_from(service.index()).expect("four services")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Parsed, String> {
        parse_env(args, None)
    }

    fn parse_env(args: &[&str], env: Option<&str>) -> Result<Parsed, String> {
        let args = std::iter::once("cinema").chain(args.iter().copied()).map(OsString::from);
        parse(args, env.map(OsString::from))
    }

    fn config(args: &[&str]) -> Config {
        match parse_args(args) {
            Ok(Parsed::Run(config)) => config,
            other => panic!("expected a configuration, got {other:?}"),
        }
    }

    #[test]
    fn a_service_alone_runs_on_its_own_port_with_the_defaults() {
        let config = config(&["bookings"]);
        assert_eq!(
            config,
            Config {
                target: Target::One {
                    service: Service::Bookings,
                    port: 5003,
                    bookings_url: "http://127.0.0.1:5003".into(),
                    movies_url: "http://127.0.0.1:5001".into(),
                },
                host: IpAddr::V4(Ipv4Addr::LOCALHOST),
                edition: Edition::Recitation,
                data: None,
                timeout: Duration::from_secs(2),
            }
        );
    }

    #[test]
    fn every_option_of_users_is_read() {
        let args = [
            "users",
            "--port",
            "6000",
            "--host",
            "0.0.0.0",
            "--edition=hardened",
            "--data",
            "some/dir",
            "--bookings-url",
            "http://10.0.0.3:7003/",
            "--movies-url",
            "http://movies:7001",
            "--timeout-ms",
            "150",
        ];
        let config = config(&args);
        assert_eq!(
            config.target,
            Target::One {
                service: Service::Users,
                port: 6000,
                bookings_url: "http://10.0.0.3:7003".into(),
                movies_url: "http://movies:7001".into(),
            }
        );
        assert_eq!(config.host, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(config.edition, Edition::Hardened);
        assert_eq!(config.data, Some(PathBuf::from("some/dir")));
        assert_eq!(config.timeout, Duration::from_millis(150));
    }

    #[test]
    fn all_runs_on_four_ports_from_the_base_port() {
        assert_eq!(config(&["all"]).target, Target::All { base_port: 5000 });
        assert_eq!(config(&["all", "--base-port", "0"]).target, Target::All { base_port: 0 });
    }

    #[test]
    fn the_edition_flag_wins_over_the_environment_which_wins_over_the_default() {
        let edition = |args: &[&str], env| match parse_env(args, env) {
            Ok(Parsed::Run(config)) => config.edition,
            other => panic!("{other:?}"),
        };
        assert_eq!(edition(&["users"], None), Edition::Recitation);
        assert_eq!(edition(&["users"], Some("")), Edition::Recitation);
        assert_eq!(edition(&["users"], Some("hardened")), Edition::Hardened);
        assert_eq!(edition(&["users", "--edition", "recitation"], Some("hardened")), Edition::Recitation);
        assert_eq!(
            parse_env(&["users"], Some("tough")),
            Err("CINEMA_EDITION: unknown edition `tough`; expected one of: recitation, hardened".into())
        );
    }

    #[test]
    fn help_is_the_usage_then_every_option() {
        let Ok(Parsed::Help(help)) = parse_args(&["users", "--help"]) else { panic!("help") };
        assert!(help.starts_with("Usage: cinema <SERVICE> [OPTIONS]\n       cinema all [OPTIONS]\n"), "{help}");
        for option in ["--host", "--port", "--base-port", "--edition", "--data", "--bookings-url", "--timeout-ms"] {
            assert!(help.contains(option), "{option}: {help}");
        }
        assert_eq!(parse_args(&["-h"]), parse_args(&["all", "-h"]), "help wins over the rest");
    }

    #[test]
    fn bad_input_is_one_line_saying_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing the service to run: users, movies, showtimes, bookings or all (see cinema --help)"),
            (&["cinemas"], "unknown service `cinemas`; expected one of: users, movies, showtimes, bookings, all"),
            (
                &["users", "--edition", "tough"],
                "--edition: unknown edition `tough`; expected one of: recitation, hardened",
            ),
            (&["users", "--frobnicate"], "invalid option '--frobnicate' (see cinema --help)"),
            (&["users", "--prot", "1"], "invalid option '--prot'; did you mean `--port`? (see cinema --help)"),
            (&["users", "movies"], "unexpected argument 'movies' (see cinema --help)"),
            (&["users", "--port"], "--port <N> needs a value"),
            (
                &["users", "--edition", "hardend"],
                "--edition: unknown edition `hardend`; expected one of: recitation, hardened; did you mean `hardened`?",
            ),
            (&["users", "--port", "70000"], "--port: `70000` is not a port number (0 to 65535)"),
            (&["all", "--base-port", "65534"], "--base-port: 65534 leaves no room for four consecutive ports"),
            (&["all", "--port", "1"], "--port does not go with `all`: use --base-port"),
            (&["movies", "--base-port", "1"], "--base-port goes with `all` only: use --port"),
            (&["movies", "--bookings-url", "http://x"], "--bookings-url is an option of users, not of movies"),
            (&["users", "--movies-url", "ftp://x"], "--movies-url: `ftp://x` is not an http:// URL"),
            (&["users", "--host", "example"], "--host: `example` is not an IP address"),
            (&["users", "--timeout-ms", "0"], "--timeout-ms: `0` is not a positive number of milliseconds"),
            (&["users", "--timeout-ms", "-5"], "--timeout-ms: `-5` is not a positive number of milliseconds"),
        ];
        for (args, expected) in cases {
            assert_eq!(parse_args(args), Err(expected.to_string()), "{args:?}");
        }
    }
}
