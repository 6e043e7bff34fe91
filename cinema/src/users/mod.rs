//! The users service: the user database, and the two endpoints that call other services. This file holds
//! what both editions share: the state, the routing, the index, health-check, list and record endpoints, and
//! the suggestions; each edition's bookings endpoint is in its own file (`recitation.rs`, `hardened.rs`), so
//! that its coverage page reads like the original handler.
//!
//! `GET /` (index), `GET /health-check`, `GET /users` (every user by name), `GET /users/{username}` (one
//! user; 404 for an unknown one), `GET /users/{username}/bookings` (the user's booked movies by date, from
//! the bookings and movies services) and `GET /users/{username}/suggested` (three top-rated movies the user
//! has not booked, from the same two).

mod hardened;
mod recitation;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloture::Client;
use http::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::data::{Data, UserBookings, Users};
use crate::error::AppError;
use crate::web::{self, Reply};
use crate::UnknownName;

/// The name users registers with cloture.
pub const NAME: &str = "users";

/// How long the hardened bookings endpoint and the suggestions wait for another service, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How many movies `/users/{username}/suggested` suggests.
pub const SUGGESTIONS: usize = 3;

/// Which bookings endpoint users runs. On command lines (`--edition`), by [`Edition::name`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Edition {
    /// What the course starts from: handles refused connections only; no timeout, no status check.
    #[default]
    Recitation,
    /// The original's error handling: a timeout, and a 503 or 404 for every failure of the services called.
    Hardened,
}

impl Edition {
    pub const ALL: [Edition; 2] = [Edition::Recitation, Edition::Hardened];

    pub fn name(self) -> &'static str {
        match self {
            Edition::Recitation => "recitation",
            Edition::Hardened => "hardened",
        }
    }
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Edition {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Edition::ALL
            .into_iter()
            .find(|edition| edition.name() == text)
            .ok_or_else(|| UnknownName::new("edition", text, &["recitation", "hardened"]))
    }
}

/// What the users service serves from and calls.
#[derive(Clone, Debug)]
pub struct State {
    pub users: Arc<Users>,
    /// The client for every outbound call: cloture observes and faults the calls made through it.
    pub client: Client,
    /// The bookings service's base URL, without a trailing slash.
    pub bookings_url: String,
    /// The movies service's base URL, without a trailing slash.
    pub movies_url: String,
    pub edition: Edition,
    /// The hardened edition's and the suggestions' time limit for one call (the recitation's bookings
    /// endpoint has none).
    pub timeout: Duration,
}

impl State {
    /// Users of `edition` calling bookings and movies at these base URLs, with [`DEFAULT_TIMEOUT`].
    pub fn new(data: &Data, edition: Edition, bookings_url: impl Into<String>, movies_url: impl Into<String>) -> State {
        let base = |url: String| url.trim_end_matches('/').to_string();
        State {
            users: Arc::clone(&data.users),
            client: Client::new(),
            bookings_url: base(bookings_url.into()),
            movies_url: base(movies_url.into()),
            edition,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> State {
        self.timeout = timeout;
        self
    }
}

/// A movie as users reports it: what movies says of it, cut down to rating, title and uri.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MovieSummary {
    pub rating: f64,
    pub title: String,
    pub uri: String,
}

enum Route<'a> {
    Index,
    HealthCheck,
    List,
    Record(&'a str),
    Bookings(&'a str),
    Suggested(&'a str),
}

impl<'a> Route<'a> {
    fn parse(segments: &[&'a str]) -> Option<Route<'a>> {
        match *segments {
            [] => Some(Route::Index),
            ["health-check"] => Some(Route::HealthCheck),
            ["users"] => Some(Route::List),
            ["users", username] => Some(Route::Record(username)),
            ["users", username, "bookings"] => Some(Route::Bookings(username)),
            ["users", username, "suggested"] => Some(Route::Suggested(username)),
            _ => None,
        }
    }
}

/// Answers one request.
pub async fn route(state: &State, request: Request<Bytes>) -> Response<Bytes> {
    let reply = match web::resolve(&request, Route::parse) {
        Ok(Route::Index) => web::index(&[
            ("users", "/users"),
            ("user", "/users/<username>"),
            ("bookings", "/users/<username>/bookings"),
            ("suggested", "/users/<username>/suggested"),
        ]),
        Ok(Route::HealthCheck) => web::health_check(),
        Ok(Route::List) => Ok(web::json(&*state.users)),
        Ok(Route::Record(username)) => user_record(state, username),
        Ok(Route::Bookings(username)) => match state.edition {
            Edition::Recitation => recitation::user_bookings(state, username).await,
            Edition::Hardened => hardened::user_bookings(state, username).await,
        },
        Ok(Route::Suggested(username)) => user_suggested(state, username).await,
        Err(error) => Err(error),
    };
    web::respond(reply)
}

/// Serves users on `listener` until `shutdown` resolves.
///
/// The service registers its name with cloture when this is called, not when the future first runs, so the
/// calls made right after spawning it already name their target.
pub fn run(
    listener: TcpListener,
    state: State,
    shutdown: impl Future<Output = ()>,
) -> impl Future<Output = io::Result<()>> {
    let handler = move |request| {
        let state = state.clone();
        async move { route(&state, request).await }
    };
    cloture::serve(listener, NAME, handler, shutdown)
}

/// A 503 with `message`: how users answers a failure of another service that it handles.
fn unavailable(message: &str) -> Reply {
    Err(AppError::unavailable(message))
}

fn user_not_found(username: &str) -> AppError {
    AppError::not_found(format!("User '{username}' not found."))
}

/// `GET /users/{username}`.
fn user_record(state: &State, username: &str) -> Reply {
    match state.users.get(username) {
        Some(user) => Ok(web::json(user)),
        None => Err(user_not_found(username)),
    }
}

/// `GET /users/{username}/suggested`: the [`SUGGESTIONS`] top-rated movies the user has not booked, best
/// first (by title among equals). A user bookings knows nothing of (404) has booked nothing. Every failure
/// of the two calls is handled as in the hardened edition, in both editions.
async fn user_suggested(state: &State, username: &str) -> Reply {
    /// What suggestions need of a movie in movies' list.
    #[derive(Deserialize)]
    struct Listed {
        rating: f64,
        title: String,
    }

    if !state.users.contains_key(username) {
        return Err(user_not_found(username));
    }

    let url = format!("{}/bookings/{}", state.bookings_url, username);
    let response = match state.client.get(url).timeout(state.timeout).send().await {
        Err(error) if error.is_connect() => return unavailable("The Bookings service is unavailable."),
        Err(error) if error.is_timeout() => return unavailable("The Bookings service timed out."),
        other => other?,
    };
    let booked: BTreeSet<String> = match response.status() {
        StatusCode::OK => response.json::<UserBookings>()?.into_values().flatten().collect(),
        StatusCode::NOT_FOUND => BTreeSet::new(),
        _ => return unavailable("The Bookings service is malfunctioning."),
    };

    let url = format!("{}/movies", state.movies_url);
    let response = match state.client.get(url).timeout(state.timeout).send().await {
        Err(error) if error.is_connect() => return unavailable("The Movie service is unavailable."),
        Err(error) if error.is_timeout() => return unavailable("The Movie service timed out."),
        other => other?,
    };
    if response.status() != StatusCode::OK {
        return unavailable("The Movie service is malfunctioning.");
    }
    let movies: BTreeMap<String, Listed> = response.json()?;

    let mut suggested: Vec<MovieSummary> = movies
        .into_iter()
        .filter(|(id, _)| !booked.contains(id))
        .map(|(id, movie)| MovieSummary { rating: movie.rating, title: movie.title, uri: format!("/movies/{id}") })
        .collect();
    suggested.sort_by(|a, b| b.rating.total_cmp(&a.rating).then_with(|| a.title.cmp(&b.title)));
    suggested.truncate(SUGGESTIONS);
    Ok(web::json(&suggested))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editions_parse_from_their_names_only() {
        assert_eq!("recitation".parse::<Edition>(), Ok(Edition::Recitation));
        assert_eq!("hardened".parse::<Edition>(), Ok(Edition::Hardened));
        assert_eq!(Edition::default(), Edition::Recitation);
        let error = "Hardened".parse::<Edition>().unwrap_err();
        assert_eq!(error.to_string(), "unknown edition `Hardened`; expected one of: recitation, hardened");
    }

    #[test]
    fn command_lines_name_the_editions_as_they_parse() {
        use clap::ValueEnum;
        let names: Vec<String> =
            Edition::value_variants().iter().map(|e| e.to_possible_value().unwrap().get_name().to_string()).collect();
        assert_eq!(names, Edition::ALL.map(|edition| edition.name().to_string()));
    }

    #[test]
    fn base_urls_lose_their_trailing_slash() {
        let state = State::new(&Data::embedded(), Edition::Hardened, "http://b:1/", "http://m:2");
        assert_eq!((state.bookings_url.as_str(), state.movies_url.as_str()), ("http://b:1", "http://m:2"));
        assert_eq!(state.timeout, DEFAULT_TIMEOUT);
        assert_eq!(state.with_timeout(Duration::from_millis(5)).timeout, Duration::from_millis(5));
    }
}
