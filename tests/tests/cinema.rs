//! Functional tests of the cinema through real sockets on free ports of 127.0.0.1: every endpoint of every
//! service in both editions, 404s and 405s included, and how each edition's users service answers when
//! bookings or movies refuse connections, never answer, or answer with an error status.
//!
//! A test that holds for both editions is written once, as `async fn name(edition)`, and run as
//! `name::in_the_recitation_edition` and `name::in_the_hardened_edition`.

use std::time::Duration;

use anyhow::ensure;
use cinema::{start, Cinema, CinemaConfig, Edition, Service};
use cinema_tests::{closed_port, failing, get, request, silent, users_alone, Fetched, CHRIS_RIVERS_BOOKINGS};
use serde_json::{json, Value};

/// Runs each named `async fn(Edition) -> anyhow::Result<()>` once per edition.
macro_rules! in_both_editions {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn in_the_recitation_edition() -> anyhow::Result<()> {
                super::$test(cinema::Edition::Recitation).await
            }

            #[tokio::test]
            async fn in_the_hardened_edition() -> anyhow::Result<()> {
                super::$test(cinema::Edition::Hardened).await
            }
        }
    )*};
}

in_both_editions!(
    test_cinema_user_user_bookings,
    every_service_answers_its_index_and_its_health_check,
    users_lists_every_user_and_finds_one_by_name,
    movies_lists_every_movie_and_adds_its_uri_to_one,
    showtimes_lists_every_date_and_finds_one,
    bookings_lists_everyone_s_bookings_and_finds_one_user_s,
    users_reports_bookings_on_several_dates_movie_by_movie,
    users_knows_no_bookings_of_an_unknown_user,
    users_suggests_the_three_top_rated_movies_not_booked,
    every_route_answers_get_only_and_an_unknown_path_is_a_404,
    a_refused_connection_to_bookings_is_a_503,
    a_refused_connection_to_movies_is_a_503,
    suggestions_time_out_and_report_a_malfunctioning_service_in_both_editions,
);

const CREED: &str = "267eedb8-0f5d-42d5-8f43-72426b9fb3e6";
const USERS_JSON: &str = include_str!("../../cinema/data/users.json");
const MOVIES_JSON: &str = include_str!("../../cinema/data/movies.json");
const SHOWTIMES_JSON: &str = include_str!("../../cinema/data/showtimes.json");
const BOOKINGS_JSON: &str = include_str!("../../cinema/data/bookings.json");

/// The time limit users gets in tests that make it time out.
const SHORT: Duration = Duration::from_millis(100);

async fn cinema(edition: Edition) -> anyhow::Result<Cinema> {
    Ok(start(CinemaConfig::new(edition)).await?)
}

async fn fetch(cinema: &Cinema, service: Service, path: &str) -> anyhow::Result<Fetched> {
    get(format!("{}{path}", cinema.url(service))).await
}

/// Asserts a 200 with exactly `body`.
fn assert_ok(fetched: &Fetched, body: &str) {
    assert_eq!((fetched.status, fetched.body.as_str()), (200, body));
}

/// Asserts an error status with `{"error": message}`.
fn assert_error(fetched: &Fetched, status: u16, message: &str) {
    assert_eq!(fetched.status, status, "{}", fetched.body);
    assert_eq!(fetched.error().expect("an error body"), message);
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON")
}

fn movie(rating: f64, title: &str, id: &str) -> Value {
    json!({ "rating": rating, "title": title, "uri": format!("/movies/{id}") })
}

async fn test_cinema_user_user_bookings(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let users_bookings = fetch(&cinema, Service::Users, "/users/chris_rivers/bookings").await?;
    assert_eq!(users_bookings.status, 200);
    assert_eq!(users_bookings.body, CHRIS_RIVERS_BOOKINGS);
    assert_eq!(users_bookings.json()?, json!({ "20151201": [movie(8.8, "Creed", CREED)] }));
    cinema.shutdown().await?;
    Ok(())
}

async fn every_service_answers_its_index_and_its_health_check(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let indexes = [
        (
            Service::Users,
            r#"{"subresource_uris":{"bookings":"/users/<username>/bookings","suggested":"/users/<username>/suggested","user":"/users/<username>","users":"/users"},"uri":"/"}"#,
        ),
        (Service::Movies, r#"{"subresource_uris":{"movie":"/movies/<id>","movies":"/movies"},"uri":"/"}"#),
        (
            Service::Showtimes,
            r#"{"subresource_uris":{"showtime":"/showtimes/<date>","showtimes":"/showtimes"},"uri":"/"}"#,
        ),
        (
            Service::Bookings,
            r#"{"subresource_uris":{"booking":"/bookings/<username>","bookings":"/bookings"},"uri":"/"}"#,
        ),
    ];
    for (service, index) in indexes {
        assert_ok(&fetch(&cinema, service, "/").await?, index);
        assert_ok(&fetch(&cinema, service, "/health-check").await?, r#"{"status":"OK"}"#);
    }
    cinema.shutdown().await?;
    Ok(())
}

async fn users_lists_every_user_and_finds_one_by_name(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let users = fetch(&cinema, Service::Users, "/users").await?;
    assert_eq!(users.status, 200);
    assert_eq!(users.json()?, parse(USERS_JSON));
    assert!(users.body.starts_with(r#"{"chris_rivers":{"id":"chris_rivers","last_active":1360031010,"#));
    assert_ok(
        &fetch(&cinema, Service::Users, "/users/peter_curley").await?,
        r#"{"id":"peter_curley","last_active":1360031222,"name":"Peter Curley"}"#,
    );
    assert_error(&fetch(&cinema, Service::Users, "/users/nobody").await?, 404, "User 'nobody' not found.");
    cinema.shutdown().await?;
    Ok(())
}

async fn movies_lists_every_movie_and_adds_its_uri_to_one(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let movies = fetch(&cinema, Service::Movies, "/movies").await?;
    assert_eq!(movies.status, 200);
    assert_eq!(movies.json()?, parse(MOVIES_JSON));
    assert_ok(
        &fetch(&cinema, Service::Movies, &format!("/movies/{CREED}")).await?,
        &format!(
            r#"{{"director":"Ryan Coogler","id":"{CREED}","rating":8.8,"title":"Creed","uri":"/movies/{CREED}"}}"#
        ),
    );
    assert_error(&fetch(&cinema, Service::Movies, "/movies/nope").await?, 404, "Movie 'nope' not found.");
    cinema.shutdown().await?;
    Ok(())
}

async fn showtimes_lists_every_date_and_finds_one(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let showtimes = fetch(&cinema, Service::Showtimes, "/showtimes").await?;
    assert_eq!(showtimes.status, 200);
    assert_eq!(showtimes.json()?, parse(SHOWTIMES_JSON));
    assert_ok(
        &fetch(&cinema, Service::Showtimes, "/showtimes/20151203").await?,
        r#"["720d006c-3a57-4b6a-b18f-9b713b073f3c","39ab85e5-5e8e-4dc5-afea-65dc368bd7ab"]"#,
    );
    let unknown = fetch(&cinema, Service::Showtimes, "/showtimes/20990101").await?;
    assert_error(&unknown, 404, "No showtimes were found for 20990101");
    cinema.shutdown().await?;
    Ok(())
}

async fn bookings_lists_everyone_s_bookings_and_finds_one_user_s(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let bookings = fetch(&cinema, Service::Bookings, "/bookings").await?;
    assert_eq!(bookings.status, 200);
    assert_eq!(bookings.json()?, parse(BOOKINGS_JSON));
    assert_ok(
        &fetch(&cinema, Service::Bookings, "/bookings/chris_rivers").await?,
        &format!(r#"{{"20151201":["{CREED}"]}}"#),
    );
    let none = fetch(&cinema, Service::Bookings, "/bookings/peter_curley").await?;
    assert_error(&none, 404, "No bookings were found for peter_curley");
    cinema.shutdown().await?;
    Ok(())
}

async fn users_reports_bookings_on_several_dates_movie_by_movie(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let bookings = fetch(&cinema, Service::Users, "/users/dwight_schrute/bookings").await?;
    assert_eq!(bookings.status, 200, "{}", bookings.body);
    let expected = json!({
        "20151201": [
            movie(6.4, "Victor Frankenstein", "7daf7208-be4d-4944-a3ae-c1c2f516f3e6"),
            movie(8.8, "Creed", CREED),
        ],
        "20151205": [
            movie(8.2, "The Martian", "a8034f44-aee4-44cf-b32c-74cf452aaaae"),
            movie(5.3, "The Danish Girl", "276c79ec-a26a-40a6-b3d3-fb242a5947b6"),
        ],
    });
    assert_eq!(bookings.json()?, expected);
    assert_eq!(bookings.body, expected.to_string(), "keys sorted, booking order kept");
    cinema.shutdown().await?;
    Ok(())
}

async fn users_knows_no_bookings_of_an_unknown_user(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let unknown = fetch(&cinema, Service::Users, "/users/nobody/bookings").await?;
    assert_error(&unknown, 404, "User 'nobody' not found.");
    cinema.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_user_who_booked_nothing_has_a_404_in_the_hardened_edition() -> anyhow::Result<()> {
    let cinema = cinema(Edition::Hardened).await?;
    let none = fetch(&cinema, Service::Users, "/users/peter_curley/bookings").await?;
    assert_error(&none, 404, "No bookings were found for peter_curley");
    cinema.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_user_who_booked_nothing_crashes_the_recitation_edition() -> anyhow::Result<()> {
    let cinema = cinema(Edition::Recitation).await?;
    let none = fetch(&cinema, Service::Users, "/users/peter_curley/bookings").await?;
    assert_error(&none, 500, "Internal Server Error");
    cinema.shutdown().await?;
    Ok(())
}

async fn users_suggests_the_three_top_rated_movies_not_booked(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let martian = movie(8.2, "The Martian", "a8034f44-aee4-44cf-b32c-74cf452aaaae");
    let dinosaur = movie(7.4, "The Good Dinosaur", "720d006c-3a57-4b6a-b18f-9b713b073f3c");
    let night = movie(7.4, "The Night Before", "96798c08-d19b-4986-a05d-7da856efb697");
    let spectre = movie(7.1, "Spectre", "39ab85e5-5e8e-4dc5-afea-65dc368bd7ab");
    let cases = [
        ("chris_rivers", json!([martian, dinosaur, night])),
        ("peter_curley", json!([movie(8.8, "Creed", CREED), martian, dinosaur])),
        ("dwight_schrute", json!([dinosaur, night, spectre])),
    ];
    for (user, expected) in cases {
        let suggested = fetch(&cinema, Service::Users, &format!("/users/{user}/suggested")).await?;
        assert_ok(&suggested, &expected.to_string());
    }
    let unknown = fetch(&cinema, Service::Users, "/users/nobody/suggested").await?;
    assert_error(&unknown, 404, "User 'nobody' not found.");
    cinema.shutdown().await?;
    Ok(())
}

async fn every_route_answers_get_only_and_an_unknown_path_is_a_404(edition: Edition) -> anyhow::Result<()> {
    const NOT_FOUND: &str = "The requested URL was not found on the server.";
    let cinema = cinema(edition).await?;
    let routes = [
        (Service::Users, "/users/chris_rivers/bookings"),
        (Service::Users, "/users/chris_rivers/suggested"),
        (Service::Movies, "/movies"),
        (Service::Showtimes, "/showtimes/20151130"),
        (Service::Bookings, "/bookings/chris_rivers"),
        (Service::Bookings, "/health-check"),
    ];
    for (service, path) in routes {
        for method in ["POST", "PUT", "DELETE"] {
            let answer = request(cinema.address(service), method, path).await?;
            assert_error(&answer, 405, "The method is not allowed for the requested URL.");
        }
        let head = request(cinema.address(service), "HEAD", path).await?;
        ensure!(head.status == 200 && head.body.is_empty(), "HEAD {path}: {head:?}");
    }
    let unknown = [
        (Service::Users, "/users/"),
        (Service::Users, "/users/chris_rivers/bookings/20151201"),
        (Service::Users, "/bookings"),
        (Service::Movies, "/movie"),
        (Service::Showtimes, "/showtimes/20151130/x"),
        (Service::Bookings, "//bookings"),
    ];
    for (service, path) in unknown {
        assert_error(&fetch(&cinema, service, path).await?, 404, NOT_FOUND);
        assert_error(&request(cinema.address(service), "POST", path).await?, 404, NOT_FOUND);
    }
    cinema.shutdown().await?;
    Ok(())
}

async fn a_refused_connection_to_bookings_is_a_503(edition: Edition) -> anyhow::Result<()> {
    let closed = closed_port().await?;
    let users = users_alone(edition, &closed, &closed, SHORT).await?;
    let bookings = get(format!("{}/users/chris_rivers/bookings", users.url)).await?;
    assert_error(&bookings, 503, "The Bookings service is unavailable.");
    let suggested = get(format!("{}/users/chris_rivers/suggested", users.url)).await?;
    assert_error(&suggested, 503, "The Bookings service is unavailable.");
    Ok(())
}

async fn a_refused_connection_to_movies_is_a_503(edition: Edition) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let users = users_alone(edition, &cinema.url(Service::Bookings), &closed_port().await?, SHORT).await?;
    let bookings = get(format!("{}/users/chris_rivers/bookings", users.url)).await?;
    assert_error(&bookings, 503, "The Movie service is unavailable.");
    let suggested = get(format!("{}/users/chris_rivers/suggested", users.url)).await?;
    assert_error(&suggested, 503, "The Movie service is unavailable.");
    drop(users);
    cinema.shutdown().await?;
    Ok(())
}

async fn suggestions_time_out_and_report_a_malfunctioning_service_in_both_editions(
    edition: Edition,
) -> anyhow::Result<()> {
    let cinema = cinema(edition).await?;
    let bookings = cinema.url(Service::Bookings);
    let movies = cinema.url(Service::Movies);
    let silent = silent().await?;
    let failing = failing("500 Internal Server Error").await?;
    let cases = [
        (&silent.url, &movies, "The Bookings service timed out."),
        (&bookings, &silent.url, "The Movie service timed out."),
        (&failing.url, &movies, "The Bookings service is malfunctioning."),
        (&bookings, &failing.url, "The Movie service is malfunctioning."),
    ];
    for (bookings, movies, message) in cases {
        let users = users_alone(edition, bookings, movies, SHORT).await?;
        let suggested = get(format!("{}/users/chris_rivers/suggested", users.url)).await?;
        assert_error(&suggested, 503, message);
    }
    cinema.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_hardened_edition_answers_a_timeout_with_a_503() -> anyhow::Result<()> {
    let cinema = cinema(Edition::Hardened).await?;
    let silent = silent().await?;
    let cases = [
        (&silent.url, &cinema.url(Service::Movies), "The Bookings service timed out."),
        (&cinema.url(Service::Bookings), &silent.url, "The Movie service timed out."),
    ];
    for (bookings, movies, message) in cases {
        let users = users_alone(Edition::Hardened, bookings, movies, SHORT).await?;
        let answer = get(format!("{}/users/chris_rivers/bookings", users.url)).await?;
        assert_error(&answer, 503, message);
    }
    cinema.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_hardened_edition_answers_an_error_status_with_a_503() -> anyhow::Result<()> {
    let cinema = cinema(Edition::Hardened).await?;
    for status in ["500 Internal Server Error", "503 Service Unavailable", "429 Too Many Requests"] {
        let failing = failing(status).await?;
        let cases = [
            (&failing.url, &cinema.url(Service::Movies), "The Bookings service is malfunctioning."),
            (&cinema.url(Service::Bookings), &failing.url, "The Movie service is malfunctioning."),
        ];
        for (bookings, movies, message) in cases {
            let users = users_alone(Edition::Hardened, bookings, movies, SHORT).await?;
            let answer = get(format!("{}/users/chris_rivers/bookings", users.url)).await?;
            assert_error(&answer, 503, message);
        }
    }
    cinema.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_recitation_edition_crashes_on_an_error_status_from_bookings_or_movies() -> anyhow::Result<()> {
    let cinema = cinema(Edition::Recitation).await?;
    let failing = failing("503 Service Unavailable").await?;
    let cases = [(&failing.url, &cinema.url(Service::Movies)), (&cinema.url(Service::Bookings), &failing.url)];
    for (bookings, movies) in cases {
        let users = users_alone(Edition::Recitation, bookings, movies, SHORT).await?;
        let answer = get(format!("{}/users/chris_rivers/bookings", users.url)).await?;
        assert_error(&answer, 500, "Internal Server Error");
    }
    cinema.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_cinema_shuts_down_and_frees_its_ports() -> anyhow::Result<()> {
    let cinema = cinema(Edition::Hardened).await?;
    let address = cinema.address(Service::Movies);
    assert_eq!(cinema.edition(), Edition::Hardened);
    assert_eq!(fetch(&cinema, Service::Movies, "/health-check").await?.status, 200);
    cinema.shutdown().await?;
    ensure!(get(format!("http://{address}/health-check")).await.is_err(), "movies still answers after shutdown");
    Ok(())
}
