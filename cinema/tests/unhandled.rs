//! Where the recitation edition lets errors escape: each of its three faults ends as a 500 carrying a
//! `cloture::Unhandled` whose location is the `?` in `cinema/src/users/recitation.rs` the error escaped
//! through, which is what links the crash to coverage. Calls users' `route` directly (no socket for users);
//! bookings and movies are real services on free ports, or a listener that never answers.

use std::future::pending;
use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use cinema::{bookings, movies, users, Data, Edition};
use http::{Request, Response, StatusCode};
use tokio::net::TcpListener;

const RECITATION: &str = include_str!("../src/users/recitation.rs");

/// The line numbers of `recitation.rs` that contain `text`, in order.
fn lines_with(text: &str) -> Vec<u32> {
    RECITATION
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains(text))
        .map(|(index, _)| u32::try_from(index + 1).unwrap())
        .collect()
}

/// Line of the `?` of the bookings call, of the movies call; of the bookings decoding, of the movie decoding.
fn escapes() -> ([u32; 2], [u32; 2]) {
    let calls = lines_with("other => other?,");
    let decodings = lines_with("response.json()?;");
    assert_eq!((calls.len(), decodings.len()), (2, 2), "two calls, two decodings in recitation.rs");
    ([calls[0], calls[1]], [decodings[0], decodings[1]])
}

async fn serve_bookings() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(bookings::run(listener, bookings::State::new(&Data::embedded()), pending()));
    url
}

async fn serve_movies() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(movies::run(listener, movies::State::new(&Data::embedded()), pending()));
    url
}

async fn user_bookings(state: &users::State, username: &str) -> Response<Bytes> {
    let request = Request::get(format!("/users/{username}/bookings")).body(Bytes::new()).unwrap();
    users::route(state, request).await
}

/// Asserts a 500 marked unhandled at `line` of recitation.rs, and returns its message.
fn assert_escaped_at(response: &Response<Bytes>, line: u32) -> String {
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.body().as_ref(), br#"{"error":"Internal Server Error"}"#);
    let unhandled = response.extensions().get::<cloture::Unhandled>().expect("a 500 marked unhandled");
    assert_eq!(unhandled.location.file().replace('\\', "/"), "cinema/src/users/recitation.rs");
    assert_eq!(unhandled.location.line(), line, "{}", unhandled.message);
    unhandled.message.clone()
}

#[tokio::test]
async fn an_error_status_from_bookings_escapes_where_bookings_are_decoded() {
    let (_, [bookings_decoded, _]) = escapes();
    let state = users::State::new(&Data::embedded(), Edition::Recitation, serve_bookings().await, serve_movies().await);
    // Bookings answers 404 `{"error": ...}` for a user who booked nothing.
    let message = assert_escaped_at(&user_bookings(&state, "peter_curley").await, bookings_decoded);
    assert!(message.starts_with("unhandled decode error: "), "{message}");
}

#[tokio::test]
async fn an_error_status_from_movies_escapes_where_the_movie_is_decoded() {
    let (_, [_, movie_decoded]) = escapes();
    // Asked for /movies/{id}, bookings answers 404 `{"error": ...}`: movies with an error status.
    let bookings = serve_bookings().await;
    let state = users::State::new(&Data::embedded(), Edition::Recitation, &bookings, &bookings);
    let message = assert_escaped_at(&user_bookings(&state, "chris_rivers").await, movie_decoded);
    assert!(message.starts_with("unhandled decode error: "), "{message}");
}

#[tokio::test]
async fn a_timeout_escapes_where_each_call_is_made() {
    let ([bookings_called, movies_called], _) = escapes();
    // The recitation edition sets no time limit; a client with one makes its timeouts real.
    let client = cloture::Client::new().with_timeout(Duration::from_millis(100));
    // Never accepts: connections complete in the kernel's backlog and requests are never answered.
    let never_answers = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let silent = format!("http://{}", never_answers.local_addr().unwrap());
    let cases =
        [(silent.clone(), serve_movies().await, bookings_called), (serve_bookings().await, silent, movies_called)];
    for (bookings, movies, line) in cases {
        let mut state = users::State::new(&Data::embedded(), Edition::Recitation, bookings, movies);
        state.client = client.clone();
        let message = assert_escaped_at(&user_bookings(&state, "chris_rivers").await, line);
        assert!(message.starts_with("unhandled timeout error: "), "{message}");
    }
}

#[tokio::test]
async fn the_hardened_edition_lets_none_of_them_escape() {
    let bookings = serve_bookings().await;
    let state = users::State::new(&Data::embedded(), Edition::Hardened, &bookings, &bookings);
    for username in ["peter_curley", "chris_rivers"] {
        let response = user_bookings(&state, username).await;
        assert!(response.extensions().get::<cloture::Unhandled>().is_none());
        assert!([StatusCode::NOT_FOUND, StatusCode::SERVICE_UNAVAILABLE].contains(&response.status()));
    }
}
