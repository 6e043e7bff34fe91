//! The users service's bookings endpoint as the course starts from it: the recitation edition.
//!
//! It handles the one failure its author thought of, a service that refuses connections, and trusts the
//! rest: there is no time limit, and a response is decoded before anyone looks at its status. So an error
//! status from bookings (its 404 for a user who has booked nothing included: the body is `{"error": ...}`,
//! not bookings) or from movies ends as a 500 through one of the `?` below, and a slow bookings or movies
//! makes the handler wait forever. `hardened.rs` beside this file is the same handler with the three fixed.

use std::collections::BTreeMap;

use super::{unavailable, user_not_found, MovieSummary, State};
use crate::data::UserBookings;
use crate::web::{self, Reply};

/// `GET /users/{username}/bookings`: the user's booked movies by date, each with its rating, title and uri.
pub(super) async fn user_bookings(state: &State, username: &str) -> Reply {
    if !state.users.contains_key(username) {
        return Err(user_not_found(username));
    }

    let url = format!("{}/bookings/{}", state.bookings_url, username);
    let response = match state.client.get(url).send().await {
        Err(error) if error.is_connect() => return unavailable("The Bookings service is unavailable."),
        other => other?,
    };
    let bookings: UserBookings = response.json()?;

    let mut result = BTreeMap::new();
    for (date, movies) in bookings {
        let mut booked = Vec::new();
        for movie_id in movies {
            let url = format!("{}/movies/{}", state.movies_url, movie_id);
            let response = match state.client.get(url).send().await {
                Err(error) if error.is_connect() => return unavailable("The Movie service is unavailable."),
                other => other?,
            };
            let movie: MovieSummary = response.json()?;
            booked.push(movie);
        }
        result.insert(date, booked);
    }
    Ok(web::json(&result))
}
