//! The users service's bookings endpoint with the original's error handling: the hardened edition.
//!
//! The recitation edition (`recitation.rs` beside this file) with its three faults fixed: every call has a
//! time limit, and a timeout or an error status from bookings or movies is answered with a 503 naming the
//! service (a 404 from bookings, with the 404 it means: the user has booked nothing), in the original's words.

use std::collections::BTreeMap;

use http::StatusCode;

use super::{unavailable, user_not_found, MovieSummary, State};
use crate::data::UserBookings;
use crate::error::AppError;
use crate::web::{self, Reply};

/// `GET /users/{username}/bookings`: the user's booked movies by date, each with its rating, title and uri.
pub(super) async fn user_bookings(state: &State, username: &str) -> Reply {
    if !state.users.contains_key(username) {
        return Err(user_not_found(username));
    }

    let url = format!("{}/bookings/{}", state.bookings_url, username);
    let response = match state.client.get(url).timeout(state.timeout).send().await {
        Err(error) if error.is_connect() => return unavailable("The Bookings service is unavailable."),
        Err(error) if error.is_timeout() => return unavailable("The Bookings service timed out."),
        other => other?,
    };
    if response.status() == StatusCode::NOT_FOUND {
        let message = format!("No bookings were found for {username}");
        return Err(AppError::not_found(message));
    }
    if response.status() != StatusCode::OK {
        return unavailable("The Bookings service is malfunctioning.");
    }
    let bookings: UserBookings = response.json()?;

    let mut result = BTreeMap::new();
    for (date, movies) in bookings {
        let mut booked = Vec::new();
        for movie_id in movies {
            let url = format!("{}/movies/{}", state.movies_url, movie_id);
            let response = match state.client.get(url).timeout(state.timeout).send().await {
                Err(error) if error.is_connect() => return unavailable("The Movie service is unavailable."),
                Err(error) if error.is_timeout() => return unavailable("The Movie service timed out."),
                other => other?,
            };
            if response.status() != StatusCode::OK {
                return unavailable("The Movie service is malfunctioning.");
            }
            let movie: MovieSummary = response.json()?;
            booked.push(movie);
        }
        result.insert(date, booked);
    }
    Ok(web::json(&result))
}
