//! The showtimes service: which movies are shown on which date. It calls no other service.
//!
//! `GET /` (index), `GET /health-check`, `GET /showtimes` (movie ids by date) and `GET /showtimes/{date}`
//! (the ids shown that date, `YYYYMMDD`; 404 for a date without showtimes).

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use tokio::net::TcpListener;

use crate::data::{Data, Showtimes};
use crate::error::AppError;
use crate::web::{self, Reply};

/// The name showtimes registers with cloture.
pub const NAME: &str = "showtimes";

/// What the showtimes service serves from.
#[derive(Clone, Debug)]
pub struct State {
    pub showtimes: Arc<Showtimes>,
}

impl State {
    pub fn new(data: &Data) -> State {
        State { showtimes: Arc::clone(&data.showtimes) }
    }
}

enum Route<'a> {
    Index,
    HealthCheck,
    List,
    Record(&'a str),
}

impl<'a> Route<'a> {
    fn parse(segments: &[&'a str]) -> Option<Route<'a>> {
        match *segments {
            [] => Some(Route::Index),
            ["health-check"] => Some(Route::HealthCheck),
            ["showtimes"] => Some(Route::List),
            ["showtimes", date] => Some(Route::Record(date)),
            _ => None,
        }
    }
}

/// Answers one request.
pub async fn route(state: &State, request: Request<Bytes>) -> Response<Bytes> {
    let reply = match web::resolve(&request, Route::parse) {
        Ok(Route::Index) => web::index(&[("showtimes", "/showtimes"), ("showtime", "/showtimes/<date>")]),
        Ok(Route::HealthCheck) => web::health_check(),
        Ok(Route::List) => Ok(web::json(&*state.showtimes)),
        Ok(Route::Record(date)) => showtimes_record(state, date),
        Err(error) => Err(error),
    };
    web::respond(reply)
}

/// Serves showtimes on `listener` until `shutdown` resolves.
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

/// `GET /showtimes/{date}`: the ids of the movies shown that date.
fn showtimes_record(state: &State, date: &str) -> Reply {
    match state.showtimes.get(date) {
        Some(movies) => Ok(web::json(movies)),
        None => Err(AppError::not_found(format!("No showtimes were found for {date}"))),
    }
}
