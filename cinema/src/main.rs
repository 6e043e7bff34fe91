//! The `cinema` binary: runs one service of the cinema example, or all four, until Ctrl-C or SIGTERM, then
//! shuts down gracefully and returns from `main` (a coverage profile is written only on such an exit).
//!
//! Whatever goes wrong before serving (bad arguments, unreadable data, a port in use) is one line on stderr,
//! `cinema: ...`, and a non-zero exit: 2 for the command line, 1 for the rest.

mod cli;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use cinema::{bookings, movies, showtimes, users, Cinema, CinemaConfig, Data, Service};
use tokio::net::TcpListener;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

use crate::cli::{Config, Parsed, Target};

fn main() -> ExitCode {
    let filter = EnvFilter::builder().with_default_directive(LevelFilter::WARN.into()).from_env_lossy();
    let ansi = io::IsTerminal::is_terminal(&io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).with_ansi(ansi).init();

    let env_edition = std::env::var_os("CINEMA_EDITION");
    let config = match cli::parse(std::env::args_os(), env_edition) {
        Ok(Parsed::Run(config)) => config,
        Ok(Parsed::Help(help)) => {
            print!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("cinema: {message}");
            return ExitCode::from(2);
        }
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
        .and_then(|runtime| runtime.block_on(run(config)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cinema: {}", cloture::text::error_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal().context("cannot listen for Ctrl-C and SIGTERM")?;
    match config.target {
        Target::One { service, port, bookings_url, movies_url } => {
            let data = match &config.data {
                Some(dir) => Data::load_for(dir, &[service])?,
                None => Data::embedded(),
            };
            let listener = bind(SocketAddr::new(config.host, port)).await?;
            announce(service, &listener, config.edition)?;
            match service {
                Service::Users => {
                    let state =
                        users::State::new(&data, config.edition, bookings_url, movies_url).with_timeout(config.timeout);
                    users::run(listener, state, shutdown).await
                }
                Service::Movies => movies::run(listener, movies::State::new(&data), shutdown).await,
                Service::Showtimes => showtimes::run(listener, showtimes::State::new(&data), shutdown).await,
                Service::Bookings => bookings::run(listener, bookings::State::new(&data), shutdown).await,
            }
            .with_context(|| format!("{service} failed"))
        }
        Target::All { base_port } => {
            let data = match &config.data {
                Some(dir) => Data::load(dir)?,
                None => Data::embedded(),
            };
            let mut listeners = Vec::with_capacity(Service::ALL.len());
            for service in Service::ALL {
                let offset = u16::try_from(service.index()).expect("four services");
                let port = if base_port == 0 { 0 } else { base_port + offset };
                let listener = bind(SocketAddr::new(config.host, port)).await?;
                announce(service, &listener, config.edition)?;
                listeners.push(listener);
            }
            let listeners: [TcpListener; 4] = listeners.try_into().expect("one listener per service");
            let config = CinemaConfig::new(config.edition).with_timeout(config.timeout).with_data(data);
            let cinema = Cinema::spawn(listeners, config)?;
            shutdown.await;
            cinema.shutdown().await.context("a service failed")
        }
    }
}

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|error| {
        let why = match error.kind() {
            io::ErrorKind::AddrInUse => "address already in use".to_string(),
            io::ErrorKind::AddrNotAvailable => "address not available on this machine".to_string(),
            io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => error.to_string(),
        };
        anyhow!("cannot listen on {address}: {why}")
    })
}

fn announce(service: Service, listener: &TcpListener, edition: cinema::Edition) -> io::Result<()> {
    let address = listener.local_addr()?;
    match service {
        Service::Users => println!("{service} ({edition} edition) listening on http://{address}"),
        _ => println!("{service} listening on http://{address}"),
    }
    Ok(())
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM. The handlers are installed at once, so a signal that
/// arrives before the future is polled still counts.
#[cfg(unix)]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("interrupted: shutting down"),
            _ = terminate.recv() => tracing::info!("terminated: shutting down"),
        }
    })
}

/// Resolves on the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    Ok(async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C; stop the process another way");
            std::future::pending::<()>().await;
        }
    })
}
