//! The movies service: the movie database, as a list and one record at a time. It calls no other service.
//!
//! `GET /` (index), `GET /health-check`, `GET /movies` (every movie by id) and `GET /movies/{id}` (one
//! movie, with its `uri` added; 404 for an unknown id).

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::data::{Data, Movies};
use crate::error::AppError;
use crate::web::{self, Reply};

/// The name movies registers with cloture.
pub const NAME: &str = "movies";

/// What the movies service serves from.
#[derive(Clone, Debug)]
pub struct State {
    pub movies: Arc<Movies>,
}

impl State {
    pub fn new(data: &Data) -> State {
        State { movies: Arc::clone(&data.movies) }
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
            ["movies"] => Some(Route::List),
            ["movies", id] => Some(Route::Record(id)),
            _ => None,
        }
    }
}

/// Answers one request.
pub async fn route(state: &State, request: Request<Bytes>) -> Response<Bytes> {
    let reply = match web::resolve(&request, Route::parse) {
        Ok(Route::Index) => web::index(&[("movies", "/movies"), ("movie", "/movies/<id>")]),
        Ok(Route::HealthCheck) => web::health_check(),
        Ok(Route::List) => Ok(web::json(&*state.movies)),
        Ok(Route::Record(id)) => movie_record(state, id),
        Err(error) => Err(error),
    };
    web::respond(reply)
}

/// Serves movies on `listener` until `shutdown` resolves.
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

/// `GET /movies/{id}`: the movie, with the `uri` it is found at.
fn movie_record(state: &State, id: &str) -> Reply {
    #[derive(Serialize)]
    struct Record<'a> {
        director: &'a str,
        id: &'a str,
        rating: f64,
        title: &'a str,
        uri: String,
    }
    let Some(movie) = state.movies.get(id) else {
        return Err(AppError::not_found(format!("Movie '{id}' not found.")));
    };
    Ok(web::json(&Record {
        director: &movie.director,
        id: &movie.id,
        rating: movie.rating,
        title: &movie.title,
        uri: format!("/movies/{id}"),
    }))
}
