//! Runs the four services together in this process: [`start`] on free loopback ports for tests and the
//! fault explorer, [`Cinema::spawn`] on listeners bound by the caller (the binary's `cinema all`). Users is
//! pointed at the bookings and movies started with it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::data::Data;
use crate::users::{self, Edition};
use crate::{bookings, movies, showtimes, Service};

/// How to run the cinema.
#[derive(Clone, Debug)]
pub struct CinemaConfig {
    /// Which bookings endpoint users runs.
    pub edition: Edition,
    /// Users' time limit for one call (hardened bookings endpoint and suggestions).
    pub timeout: Duration,
    /// The databases served.
    pub data: Data,
}

impl Default for CinemaConfig {
    /// The recitation edition, [`users::DEFAULT_TIMEOUT`], the embedded databases.
    fn default() -> Self {
        CinemaConfig::new(Edition::default())
    }
}

impl CinemaConfig {
    /// `edition` with [`users::DEFAULT_TIMEOUT`] and the embedded databases.
    pub fn new(edition: Edition) -> CinemaConfig {
        CinemaConfig { edition, timeout: users::DEFAULT_TIMEOUT, data: Data::embedded() }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> CinemaConfig {
        self.timeout = timeout;
        self
    }

    pub fn with_data(mut self, data: Data) -> CinemaConfig {
        self.data = data;
        self
    }
}

/// The four services running on the current tokio runtime. Dropping it stops them too, without waiting.
#[derive(Debug)]
pub struct Cinema {
    addresses: [SocketAddr; 4],
    edition: Edition,
    stop: watch::Sender<bool>,
    tasks: Vec<(Service, JoinHandle<io::Result<()>>)>,
}

/// Starts the four services on free ports of 127.0.0.1, on the current tokio runtime.
pub async fn start(config: CinemaConfig) -> io::Result<Cinema> {
    let mut listeners = Vec::with_capacity(Service::ALL.len());
    for _ in Service::ALL {
        listeners.push(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?);
    }
    let listeners: [TcpListener; 4] = listeners.try_into().expect("one listener per service");
    Cinema::spawn(listeners, config)
}

impl Cinema {
    /// Serves the four services on `listeners`, given in the order of [`Service::ALL`], on the current tokio
    /// runtime. Users calls the others at their listeners' addresses (loopback for a wildcard address).
    pub fn spawn(listeners: [TcpListener; 4], config: CinemaConfig) -> io::Result<Cinema> {
        let mut addresses = [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); 4];
        for (address, listener) in addresses.iter_mut().zip(&listeners) {
            *address = reachable(listener.local_addr()?);
        }
        let url = |service: Service| format!("http://{}", addresses[service.index()]);
        let (stop, stopped) = watch::channel(false);
        let data = &config.data;
        let tasks = Service::ALL
            .into_iter()
            .zip(listeners)
            .map(|(service, listener)| {
                let shutdown = signalled(stopped.clone());
                let task = match service {
                    Service::Users => {
                        let state =
                            users::State::new(data, config.edition, url(Service::Bookings), url(Service::Movies))
                                .with_timeout(config.timeout);
                        tokio::spawn(users::run(listener, state, shutdown))
                    }
                    Service::Movies => tokio::spawn(movies::run(listener, movies::State::new(data), shutdown)),
                    Service::Showtimes => tokio::spawn(showtimes::run(listener, showtimes::State::new(data), shutdown)),
                    Service::Bookings => tokio::spawn(bookings::run(listener, bookings::State::new(data), shutdown)),
                };
                (service, task)
            })
            .collect();
        Ok(Cinema { addresses, edition: config.edition, stop, tasks })
    }

    /// Where `service` listens: `http://127.0.0.1:PORT`.
    pub fn url(&self, service: Service) -> String {
        format!("http://{}", self.address(service))
    }

    pub fn address(&self, service: Service) -> SocketAddr {
        self.addresses[service.index()]
    }

    pub fn edition(&self) -> Edition {
        self.edition
    }

    /// Stops the four services: each stops accepting, lets its requests in flight finish and returns. The
    /// first error a service stopped with, if any.
    pub async fn shutdown(self) -> io::Result<()> {
        // Sending fails only when every service has stopped already.
        let _ = self.stop.send(true);
        let mut outcome = Ok(());
        for (service, task) in self.tasks {
            let result = match task.await {
                Ok(result) => result,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => Err(io::Error::other(format!("the {service} service was cancelled: {error}"))),
            };
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }
}

/// Resolves when `true` is sent, or when the sender is gone.
async fn signalled(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// The address to call a listener at: loopback for a wildcard address.
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, address.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, address.port())),
        _ => address,
    }
}
