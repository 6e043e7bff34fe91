//! The cinema's faulty functional test, shared by the `faulty` integration tests, the `cinema-faulty`
//! program (`make faulty`) and the benchmark: `GET /users/{user}/bookings` against the users service, with
//! the oracle the recitation ends with (a 503 or 404 is accepted exactly when a fault was injected, and so is
//! the exact fault-free answer, a recovery) or the one it starts with (only the fault-free answer, only
//! without faults).

use std::str::FromStr;

use cinema::Data;
use cloture::Client;
use serde_json::{json, Value};

/// What the test accepts. On command lines (`--oracle`), by its `Display` name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Oracle {
    /// 200 with the expected body; or, when a fault was injected, 503 or 404, or exactly the answer the
    /// fault-free run got (a recovery).
    #[default]
    Accepting,
    /// Only 200 with the expected body: the test as it was before anyone thought of failures.
    Strict,
}

impl FromStr for Oracle {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "accepting" => Ok(Oracle::Accepting),
            "strict" => Ok(Oracle::Strict),
            other => Err(format!("unknown oracle `{other}`; expected one of: accepting, strict")),
        }
    }
}

impl std::fmt::Display for Oracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Oracle::Accepting => "accepting",
            Oracle::Strict => "strict",
        })
    }
}

/// What `GET /users/{user}/bookings` answers without faults, computed from the databases; `None` for a
/// user with no bookings (the hardened users service answers 404).
pub fn expected_bookings(data: &Data, user: &str) -> Option<Value> {
    let bookings = data.bookings.get(user)?;
    let mut result = serde_json::Map::new();
    for (date, movie_ids) in bookings {
        let movies: Vec<Value> = movie_ids
            .iter()
            .filter_map(|id| data.movies.get(id))
            .map(|movie| json!({"rating": movie.rating, "title": movie.title, "uri": format!("/movies/{}", movie.id)}))
            .collect();
        result.insert(date.clone(), Value::Array(movies));
    }
    Some(Value::Object(result))
}

/// One run of the functional test. The client is shared across executions (its connection pool with it).
#[derive(Clone)]
pub struct UserBookingsTest {
    pub client: Client,
    pub url: String,
    pub expected: Option<Value>,
    pub oracle: Oracle,
}

impl UserBookingsTest {
    pub fn new(users_url: &str, user: &str, oracle: Oracle) -> UserBookingsTest {
        UserBookingsTest {
            client: Client::new(),
            url: format!("{users_url}/users/{user}/bookings"),
            expected: expected_bookings(&Data::embedded(), user),
            oracle,
        }
    }

    /// The test: `Err` says why the answer was refused.
    pub async fn run(self) -> Result<(), String> {
        let response =
            self.client.get(&self.url).send().await.map_err(|error| format!("GET {} failed: {error}", self.url))?;
        let status = response.status().as_u16();
        let injected = cloture::fault_injected();
        if status == 200 {
            let body: Value = response.json().map_err(|error| error.to_string())?;
            // Under faults, only the exact fault-free answer is fine: something recovered (a retry, a cache).
            if injected && self.oracle == Oracle::Accepting && cloture::is_reference_answer(&response) {
                return Ok(());
            }
            if injected {
                return Err(format!("200 although a fault was injected, not the fault-free answer: {body}"));
            }
            if Some(&body) != self.expected.as_ref() {
                return Err(format!("unexpected body {body}"));
            }
            return Ok(());
        }
        let accepted = self.oracle == Oracle::Accepting && injected && [503, 404].contains(&status);
        let no_bookings = self.expected.is_none() && status == 404 && !injected;
        if accepted || no_bookings {
            Ok(())
        } else {
            Err(format!("status {status}: {}", String::from_utf8_lossy(response.bytes())))
        }
    }
}
