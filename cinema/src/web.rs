//! HTTP plumbing shared by the four services: matching a request's path to a route (404 for none, 405 for
//! a method other than GET or HEAD), JSON responses, and the index and health-check endpoints every service
//! has.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::error::AppError;

/// What a handler answers: a response, or the error to answer with.
pub(crate) type Reply = Result<Response<Bytes>, AppError>;

/// Werkzeug's words for a path no route matches.
const NOT_FOUND: &str = "The requested URL was not found on the server.";

/// Finds the route for the request's path with `parse`, which gets the path's segments (none for `/`) and
/// answers `None` when no route matches. Paths with an empty segment (`/users/`, `//`) match nothing, as in
/// Flask. A matched route answers GET and HEAD only.
pub(crate) fn resolve<'r, R>(
    request: &'r Request<Bytes>,
    parse: impl FnOnce(&[&'r str]) -> Option<R>,
) -> Result<R, AppError> {
    let path = request.uri().path();
    let segments: Vec<&str> = match path.strip_prefix('/') {
        Some("") => Vec::new(),
        Some(rest) => rest.split('/').collect(),
        None => vec![""],
    };
    let route = if segments.iter().any(|segment| segment.is_empty()) { None } else { parse(&segments) };
    let route = route.ok_or_else(|| AppError::not_found(NOT_FOUND))?;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(AppError::MethodNotAllowed);
    }
    Ok(route)
}

/// The response to send: the handler's, or its error's.
pub(crate) fn respond(reply: Reply) -> Response<Bytes> {
    reply.unwrap_or_else(AppError::into_response)
}

/// A 200 response with `value` as compact JSON.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Response<Bytes> {
    json_with_status(StatusCode::OK, value)
}

/// `{"error": message}` with `status`.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response<Bytes> {
    json_with_status(status, &serde_json::json!({ "error": message }))
}

fn json_with_status<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Bytes> {
    let body = serde_json::to_vec(value).expect("the services' values are maps with string keys: always JSON");
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /`: `{"subresource_uris": {name: uri, ...}, "uri": "/"}`.
pub(crate) fn index(subresources: &[(&str, &str)]) -> Reply {
    #[derive(Serialize)]
    struct Index<'a> {
        subresource_uris: BTreeMap<&'a str, &'a str>,
        uri: &'a str,
    }
    Ok(json(&Index { subresource_uris: subresources.iter().copied().collect(), uri: "/" }))
}

/// `GET /health-check`: `{"status": "OK"}`.
pub(crate) fn health_check() -> Reply {
    Ok(json(&serde_json::json!({ "status": "OK" })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str) -> Request<Bytes> {
        Request::builder().method(method).uri(path).body(Bytes::new()).unwrap()
    }

    fn segments(path: &str) -> Result<Vec<String>, StatusCode> {
        let request = request(Method::GET, path);
        resolve(&request, |segments| Some(segments.iter().map(|s| s.to_string()).collect()))
            .map_err(|error| error.status())
    }

    #[test]
    fn paths_split_into_segments_and_empty_segments_match_nothing() {
        assert_eq!(segments("/"), Ok(vec![]));
        assert_eq!(segments("/users"), Ok(vec!["users".to_string()]));
        assert_eq!(segments("/users/chris_rivers/bookings?x=1").unwrap(), ["users", "chris_rivers", "bookings"]);
        assert_eq!(segments("/users/"), Err(StatusCode::NOT_FOUND));
        assert_eq!(segments("//users"), Err(StatusCode::NOT_FOUND));
    }

    #[test]
    fn a_matched_route_answers_get_and_head_only_and_an_unmatched_one_is_404_first() {
        let any = |_: &[&str]| Some(());
        let none = |_: &[&str]| None::<()>;
        assert!(resolve(&request(Method::HEAD, "/"), any).is_ok());
        let post = request(Method::POST, "/");
        assert_eq!(resolve(&post, any).unwrap_err().status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resolve(&post, none).unwrap_err().status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_index_lists_subresources_with_sorted_keys() {
        let response = index(&[("users", "/users"), ("user", "/users/<username>")]).unwrap();
        assert_eq!(
            response.body().as_ref(),
            br#"{"subresource_uris":{"user":"/users/<username>","users":"/users"},"uri":"/"}"#
        );
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], "application/json");
    }
}
