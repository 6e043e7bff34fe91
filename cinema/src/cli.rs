//! The `cinema` binary's command line, read in two stages: lexopt reads the arguments into [`Raw`] strings
//! (unknown flags, missing values), then [`validate`] turns them into a [`Config`] or one line saying what is
//! wrong (bad numbers, names, URLs, flags that do not go together). Pure: the caller passes the arguments
//! and `CINEMA_EDITION`.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use cinema::{users, Edition, Service};

/// The first of the four conventional ports: users 5000, movies 5001, showtimes 5002, bookings 5003.
pub const DEFAULT_BASE_PORT: u16 = 5000;

pub const HELP: &str = "\
Usage: cinema <SERVICE> [OPTIONS]
       cinema all [OPTIONS]

Runs one service of the cinema example, or all four, until Ctrl-C or SIGTERM.

Services (and default ports):
  users      5000   calls bookings and movies
  movies     5001
  showtimes  5002
  bookings   5003
  all               the four together, users calling the other three

Options:
  --host ADDR           IP address to listen on [default: 127.0.0.1]
  --port N              port of the one service [default: its own, above]
  --base-port N         with `all`: first of four consecutive ports, 0 for any free ones [default: 5000]
  --edition NAME        users' bookings endpoint: recitation or hardened [default: $CINEMA_EDITION,
                        else recitation]
  --data DIR            read the databases (users.json, movies.json, ...) from DIR instead of the
                        embedded ones
  --bookings-url URL    where users calls bookings [default: http://127.0.0.1:5003]
  --movies-url URL      where users calls movies [default: http://127.0.0.1:5001]
  --timeout-ms N        users' time limit for one call, hardened edition and suggestions [default: 2000]
  -h, --help            print this help

Environment:
  CINEMA_EDITION        the edition when --edition is not given
  RUST_LOG              log filter (tracing-subscriber syntax) [default: warn]
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Help,
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

/// The arguments as given, before any of them is checked.
#[derive(Debug, Default)]
struct Raw {
    help: bool,
    target: Option<String>,
    host: Option<String>,
    port: Option<String>,
    base_port: Option<String>,
    edition: Option<String>,
    data: Option<PathBuf>,
    bookings_url: Option<String>,
    movies_url: Option<String>,
    timeout_ms: Option<String>,
}

/// Reads the arguments (the program name first) and `CINEMA_EDITION`'s value.
pub fn parse(args: impl IntoIterator<Item = OsString>, env_edition: Option<OsString>) -> Result<Parsed, String> {
    let raw = read(lexopt::Parser::from_iter(args)).map_err(|error| format!("{error} (see cinema --help)"))?;
    validate(raw, env_edition)
}

fn read(mut parser: lexopt::Parser) -> Result<Raw, lexopt::Error> {
    use lexopt::prelude::*;
    let mut raw = Raw::default();
    while let Some(argument) = parser.next()? {
        match argument {
            Short('h') | Long("help") => raw.help = true,
            Long("host") => raw.host = Some(parser.value()?.string()?),
            Long("port") => raw.port = Some(parser.value()?.string()?),
            Long("base-port") => raw.base_port = Some(parser.value()?.string()?),
            Long("edition") => raw.edition = Some(parser.value()?.string()?),
            Long("data") => raw.data = Some(parser.value()?.into()),
            Long("bookings-url") => raw.bookings_url = Some(parser.value()?.string()?),
            Long("movies-url") => raw.movies_url = Some(parser.value()?.string()?),
            Long("timeout-ms") => raw.timeout_ms = Some(parser.value()?.string()?),
            Value(value) if raw.target.is_none() => raw.target = Some(value.string()?),
            _ => return Err(argument.unexpected()),
        }
    }
    Ok(raw)
}

fn validate(raw: Raw, env_edition: Option<OsString>) -> Result<Parsed, String> {
    if raw.help {
        return Ok(Parsed::Help);
    }
    let Some(target) = raw.target else {
        return Err("missing the service to run: users, movies, showtimes, bookings or all (see cinema --help)".into());
    };
    let host = match raw.host.as_deref() {
        None | Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(host) => host.parse().map_err(|_| format!("--host: `{host}` is not an IP address"))?,
    };
    let edition = match (raw.edition, env_edition.filter(|value| !value.is_empty())) {
        (Some(edition), _) => edition.parse().map_err(|error| format!("--edition: {error}"))?,
        (None, Some(edition)) => {
            let edition = edition.into_string().map_err(|_| "CINEMA_EDITION is not valid UTF-8".to_string())?;
            edition.parse().map_err(|error| format!("CINEMA_EDITION: {error}"))?
        }
        (None, None) => Edition::default(),
    };
    let timeout = match raw.timeout_ms {
        None => users::DEFAULT_TIMEOUT,
        Some(text) => match text.parse::<u64>() {
            Ok(milliseconds) if milliseconds > 0 => Duration::from_millis(milliseconds),
            _ => return Err(format!("--timeout-ms: `{text}` is not a positive number of milliseconds")),
        },
    };
    let target = if target == "all" {
        if raw.port.is_some() {
            return Err("--port does not go with `all`: use --base-port".into());
        }
        for (flag, given) in [("--bookings-url", &raw.bookings_url), ("--movies-url", &raw.movies_url)] {
            if given.is_some() {
                return Err(format!("{flag} does not go with `all`: users calls the services started with it"));
            }
        }
        let base_port = match raw.base_port {
            None => DEFAULT_BASE_PORT,
            Some(text) => port("--base-port", &text)?,
        };
        if base_port > u16::MAX - 3 {
            return Err(format!("--base-port: {base_port} leaves no room for four consecutive ports"));
        }
        Target::All { base_port }
    } else {
        let service: Service = target.parse().map_err(|error| format!("{error}, all"))?;
        if raw.base_port.is_some() {
            return Err("--base-port goes with `all` only: use --port".into());
        }
        if service != Service::Users {
            for (flag, given) in [("--bookings-url", &raw.bookings_url), ("--movies-url", &raw.movies_url)] {
                if given.is_some() {
                    return Err(format!("{flag} is an option of users, not of {service}"));
                }
            }
        }
        let port = match raw.port {
            None => default_port(service),
            Some(text) => port("--port", &text)?,
        };
        let bookings_url = match raw.bookings_url {
            None => format!("http://127.0.0.1:{}", default_port(Service::Bookings)),
            Some(url) => base_url("--bookings-url", url)?,
        };
        let movies_url = match raw.movies_url {
            None => format!("http://127.0.0.1:{}", default_port(Service::Movies)),
            Some(url) => base_url("--movies-url", url)?,
        };
        Target::One { service, port, bookings_url, movies_url }
    };
    Ok(Parsed::Run(Config { target, host, edition, data: raw.data, timeout }))
}

/// The conventional port of `service`.
pub fn default_port(service: Service) -> u16 {
    DEFAULT_BASE_PORT + u16::try_from(service.index()).expect("four services")
}

fn port(flag: &str, text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("{flag}: `{text}` is not a port number (0 to 65535)"))
}

/// An `http://host:port` URL, possibly with a path, without its trailing slash.
fn base_url(flag: &str, url: String) -> Result<String, String> {
    let bad = || format!("{flag}: `{url}` is not an http:// URL");
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() || uri.query().is_some() {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_string())
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
    fn help_wins_over_everything_else() {
        assert_eq!(parse_args(&["--help"]), Ok(Parsed::Help));
        assert_eq!(parse_args(&["users", "--port", "x", "-h"]), Ok(Parsed::Help));
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
            (&["users", "movies"], "unexpected argument \"movies\" (see cinema --help)"),
            (&["users", "--port"], "missing argument for option '--port' (see cinema --help)"),
            (&["users", "--port", "70000"], "--port: `70000` is not a port number (0 to 65535)"),
            (&["all", "--base-port", "65534"], "--base-port: 65534 leaves no room for four consecutive ports"),
            (&["all", "--port", "1"], "--port does not go with `all`: use --base-port"),
            (&["movies", "--base-port", "1"], "--base-port goes with `all` only: use --port"),
            (&["movies", "--bookings-url", "http://x"], "--bookings-url is an option of users, not of movies"),
            (&["users", "--movies-url", "ftp://x"], "--movies-url: `ftp://x` is not an http:// URL"),
            (&["users", "--host", "example"], "--host: `example` is not an IP address"),
            (&["users", "--timeout-ms", "0"], "--timeout-ms: `0` is not a positive number of milliseconds"),
        ];
        for (args, expected) in cases {
            assert_eq!(parse_args(args), Err(expected.to_string()), "{args:?}");
        }
    }
}
