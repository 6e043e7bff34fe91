//! The cinema example, the system under test of the chaos-engineering course: four small HTTP services
//! (users, movies, showtimes and bookings) ported from the Flask originals in umermansoor/microservices as
//! Filibuster used them. This file is the crate map and names the four services; [`start`] runs all four in
//! this process for tests and the fault explorer, and the `cinema` binary runs them from the command line.
//!
//! Every service is a module with a `State`, a `route` function that answers one request (testable without
//! a socket) and a `run` function that serves it through [`cloture::serve`], so that cloture sees every
//! request and every outbound call. Only users calls other services; its bookings endpoint comes in two
//! [`Edition`]s chosen at start-up.

use std::fmt;
use std::str::FromStr;

pub mod bookings;
pub mod data;
pub mod error;
pub mod movies;
pub mod showtimes;
mod start;
pub mod users;
mod web;

pub use data::{Data, DataError};
pub use error::AppError;
pub use start::{start, Cinema, CinemaConfig};
pub use users::Edition;

/// One of the four services. The name is the one each registers with cloture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Users,
    Movies,
    Showtimes,
    Bookings,
}

impl Service {
    /// The four services in their conventional port order (users first, bookings last).
    pub const ALL: [Service; 4] = [Service::Users, Service::Movies, Service::Showtimes, Service::Bookings];

    /// The service's name: `users`, `movies`, `showtimes` or `bookings`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Users => users::NAME,
            Service::Movies => movies::NAME,
            Service::Showtimes => showtimes::NAME,
            Service::Bookings => bookings::NAME,
        }
    }

    /// The position of the service in [`Service::ALL`]: its offset from the first of four consecutive ports.
    pub fn index(self) -> usize {
        match self {
            Service::Users => 0,
            Service::Movies => 1,
            Service::Showtimes => 2,
            Service::Bookings => 3,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Service {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .into_iter()
            .find(|service| service.name() == text)
            .ok_or_else(|| UnknownName::new("service", text, &["users", "movies", "showtimes", "bookings"]))
    }
}

/// A name that is not one of the valid ones: an unknown service or edition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`; expected one of: {}", .valid.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub valid: &'static [&'static str],
}

impl UnknownName {
    pub(crate) fn new(what: &'static str, value: &str, valid: &'static [&'static str]) -> UnknownName {
        UnknownName { what, value: value.to_string(), valid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_round_trip_and_follow_the_port_order() {
        for (index, service) in Service::ALL.into_iter().enumerate() {
            assert_eq!(service.name().parse::<Service>(), Ok(service));
            assert_eq!(service.index(), index);
        }
    }

    #[test]
    fn an_unknown_service_name_is_reported_with_the_valid_ones() {
        let error = "cinemas".parse::<Service>().unwrap_err();
        assert_eq!(error.to_string(), "unknown service `cinemas`; expected one of: users, movies, showtimes, bookings");
    }
}
