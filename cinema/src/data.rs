//! The four JSON databases: their types, the copies embedded in the crate (`cinema/data/*.json`, from the
//! original example unchanged) and loading replacements from a directory.
//!
//! Maps are `BTreeMap`s and struct fields are declared in alphabetical order, so that the JSON the services
//! write has its keys sorted, as Flask's `jsonify` writes them.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Service;

/// Users by user name.
pub type Users = BTreeMap<String, User>;
/// Movies by id.
pub type Movies = BTreeMap<String, Movie>;
/// The ids of the movies shown, by date (`YYYYMMDD`).
pub type Showtimes = BTreeMap<String, Vec<String>>;
/// One user's bookings: the ids of the movies booked, by date.
pub type UserBookings = BTreeMap<String, Vec<String>>;
/// Bookings by user name.
pub type Bookings = BTreeMap<String, UserBookings>;

/// A record of `users.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub last_active: u64,
    pub name: String,
}

/// A record of `movies.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Movie {
    pub director: String,
    pub id: String,
    pub rating: f64,
    pub title: String,
}

/// The four databases. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Data {
    pub users: Arc<Users>,
    pub movies: Arc<Movies>,
    pub showtimes: Arc<Showtimes>,
    pub bookings: Arc<Bookings>,
}

/// A database file that could not be read or parsed. Displays as one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {source}", .path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
}

const USERS: &str = include_str!("../data/users.json");
const MOVIES: &str = include_str!("../data/movies.json");
const SHOWTIMES: &str = include_str!("../data/showtimes.json");
const BOOKINGS: &str = include_str!("../data/bookings.json");

/// The file name of the database `service` serves: `users.json` and so on.
pub fn file_name(service: Service) -> &'static str {
    match service {
        Service::Users => "users.json",
        Service::Movies => "movies.json",
        Service::Showtimes => "showtimes.json",
        Service::Bookings => "bookings.json",
    }
}

impl Data {
    /// The databases of the original example, embedded in the crate.
    pub fn embedded() -> Data {
        fn parse<T: DeserializeOwned>(service: Service, text: &str) -> Arc<T> {
            let path = Path::new("cinema/data").join(file_name(service));
            Arc::new(parse_json(&path, text).expect("the embedded databases are valid JSON of the right shape"))
        }
        Data {
            users: parse(Service::Users, USERS),
            movies: parse(Service::Movies, MOVIES),
            showtimes: parse(Service::Showtimes, SHOWTIMES),
            bookings: parse(Service::Bookings, BOOKINGS),
        }
    }

    /// Reads all four databases from `dir` (`users.json`, `movies.json`, `showtimes.json`, `bookings.json`).
    pub fn load(dir: &Path) -> Result<Data, DataError> {
        Data::load_for(dir, &Service::ALL)
    }

    /// Reads the databases of `services` from `dir` and takes the embedded ones for the others: a single
    /// service needs only its own file.
    pub fn load_for(dir: &Path, services: &[Service]) -> Result<Data, DataError> {
        let mut data = Data::embedded();
        for &service in services {
            let path = dir.join(file_name(service));
            let text =
                std::fs::read_to_string(&path).map_err(|source| DataError::Read { path: path.clone(), source })?;
            match service {
                Service::Users => data.users = Arc::new(parse_json(&path, &text)?),
                Service::Movies => data.movies = Arc::new(parse_json(&path, &text)?),
                Service::Showtimes => data.showtimes = Arc::new(parse_json(&path, &text)?),
                Service::Bookings => data.bookings = Arc::new(parse_json(&path, &text)?),
            }
        }
        Ok(data)
    }
}

fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, DataError> {
    serde_json::from_str(text).map_err(|source| DataError::Parse { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_databases_hold_the_original_records() {
        let data = Data::embedded();
        assert_eq!(data.users.len(), 7);
        assert_eq!(data.movies.len(), 7);
        assert_eq!(data.showtimes.len(), 6);
        assert_eq!(data.bookings.len(), 3);
        assert_eq!(data.movies["267eedb8-0f5d-42d5-8f43-72426b9fb3e6"].title, "Creed");
        assert_eq!(data.bookings["chris_rivers"]["20151201"], ["267eedb8-0f5d-42d5-8f43-72426b9fb3e6"]);
        assert_eq!(data.users["peter_curley"].last_active, 1360031222);
    }

    #[test]
    fn a_malformed_file_is_reported_with_its_path_line_and_column() {
        let dir = std::env::temp_dir().join(format!("cinema-data-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("movies.json"), "{\n  \"x\":\n}").unwrap();
        let error = Data::load_for(&dir, &[Service::Movies]).unwrap_err();
        let expected = format!("{}: ", dir.join("movies.json").display());
        let text = error.to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(text.starts_with(&expected), "{text}");
        assert!(text.ends_with("movies.json: expected value at line 3 column 1"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn a_missing_file_is_reported_with_its_path() {
        let dir = Path::new("/nonexistent/cinema-data");
        let error = Data::load(dir).unwrap_err();
        assert!(matches!(error, DataError::Read { .. }));
        assert!(error.to_string().starts_with("cannot read /nonexistent/cinema-data/users.json: "), "{error}");
    }

    #[test]
    fn loading_one_service_keeps_the_embedded_databases_of_the_others() {
        let dir = std::env::temp_dir().join(format!("cinema-data-one-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("showtimes.json"), r#"{"20250101": []}"#).unwrap();
        let data = Data::load_for(&dir, &[Service::Showtimes]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(data.showtimes.keys().collect::<Vec<_>>(), ["20250101"]);
        assert_eq!(data.users.len(), 7);
    }
}
