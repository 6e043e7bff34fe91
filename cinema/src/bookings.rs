//! The bookings service: which user booked which movies on which date. It calls no other service.
//!
//! `GET /` (index), `GET /health-check`, `GET /bookings` (everyone's bookings by user name) and
//! `GET /bookings/{username}` (one user's movie ids by date; 404 for a user who has booked nothing, whose
//! body, like every error's, is `{"error": ...}`).

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use tokio::net::TcpListener;

use crate::data::{Bookings, Data};
use crate::error::AppError;
use crate::web::{self, Reply};

/// The name bookings registers with cloture.
pub const NAME: &str = "bookings";

/// What the bookings service serves from.
#[derive(Clone, Debug)]
pub struct State {
    pub bookings: Arc<Bookings>,
}

impl State {
    pub fn new(data: &Data) -> State {
        State { bookings: Arc::clone(&data.bookings) }
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
            ["bookings"] => Some(Route::List),
            ["bookings", username] => Some(Route::Record(username)),
            _ => None,
        }
    }
}

/// Answers one request.
pub async fn route(state: &State, request: Request<Bytes>) -> Response<Bytes> {
    let reply = match web::resolve(&request, Route::parse) {
        Ok(Route::Index) => web::index(&[("bookings", "/bookings"), ("booking", "/bookings/<username>")]),
        Ok(Route::HealthCheck) => web::health_check(),
        Ok(Route::List) => Ok(web::json(&*state.bookings)),
        Ok(Route::Record(username)) => booking_record(state, username),
        Err(error) => Err(error),
    };
    web::respond(reply)
}

/// Serves bookings on `listener` until `shutdown` resolves.
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

/// `GET /bookings/{username}`: the user's movie ids by date.
fn booking_record(state: &State, username: &str) -> Reply {
    match state.bookings.get(username) {
        Some(bookings) => Ok(web::json(bookings)),
        None => Err(AppError::not_found(format!("No bookings were found for {username}"))),
    }
}
