//! The crate's one error type for request handling, and how each error becomes a JSON response
//! `{"error": "..."}` with its status.
//!
//! A failed outbound call that a handler does not handle reaches [`AppError`] through `?`. The conversion is
//! `#[track_caller]` and `?` passes its own location on, so the error remembers the `?` it escaped through;
//! the 500 it becomes carries that location to cloture as a [`cloture::Unhandled`] extension.

use std::panic::Location;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use crate::web;

/// Why a request was not answered with the resource asked for.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 404: the resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 405: the resource exists but answers only GET (and HEAD).
    #[error("The method is not allowed for the requested URL.")]
    MethodNotAllowed,
    /// 503: a service this one depends on failed, and the handler said so.
    #[error("{0}")]
    Unavailable(String),
    /// 500: an error no handler dealt with, and the place it escaped.
    #[error("{message}")]
    Internal { message: String, location: &'static Location<'static> },
}

impl AppError {
    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::NotFound(message.into())
    }

    pub fn unavailable(message: impl Into<String>) -> AppError {
        AppError::Unavailable(message.into())
    }

    /// An unhandled error, located at the caller.
    #[track_caller]
    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::Internal { message: message.into(), location: Location::caller() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response: `{"error": message}` with the error's status. An internal error's message and location
    /// go to the log and to cloture, not to the client, which reads `Internal Server Error`.
    pub fn into_response(self) -> Response<Bytes> {
        let status = self.status();
        match self {
            AppError::Internal { message, location } => {
                tracing::error!(%location, "unhandled error: {message}");
                let mut response = web::error_response(status, "Internal Server Error");
                response.extensions_mut().insert(cloture::Unhandled { message, location });
                response
            }
            AppError::MethodNotAllowed => {
                let mut response = web::error_response(status, &self.to_string());
                response.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                response
            }
            AppError::NotFound(message) | AppError::Unavailable(message) => web::error_response(status, &message),
        }
    }
}

impl From<cloture::client::Error> for AppError {
    /// A failed call nobody handled. Through `?`, the location is the `?`'s.
    #[track_caller]
    fn from(error: cloture::client::Error) -> AppError {
        AppError::Internal {
            message: format!("unhandled {} error: {error}", error.kind()),
            location: Location::caller(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of this file that holds `marker` in a trailing comment.
    fn line_of(marker: &str) -> u32 {
        let comment = format!("// {marker}");
        let index = include_str!("error.rs")
            .lines()
            .position(|line| line.trim_end().ends_with(&comment))
            .expect("the marker is in this file");
        u32::try_from(index + 1).expect("a short file")
    }

    /// A real client error without a network call: an unparsable URL fails before any I/O.
    async fn client_error() -> cloture::client::Error {
        cloture::Client::new().get("not a url").send().await.unwrap_err()
    }

    fn escapes(error: cloture::client::Error) -> Result<(), AppError> {
        Err(error)? // escape in a plain fn
    }

    #[tokio::test]
    async fn the_question_mark_conversion_records_the_location_of_the_question_mark() {
        let Err(AppError::Internal { location, message }) = escapes(client_error().await) else {
            panic!("expected an internal error")
        };
        assert_eq!(location.file(), file!());
        assert_eq!(location.line(), line_of("escape in a plain fn"));
        assert!(message.starts_with("unhandled request error: "), "{message}");
    }

    #[tokio::test]
    async fn the_question_mark_location_survives_an_async_fn() {
        async fn handler() -> Result<(), AppError> {
            let sent = cloture::Client::new().get("not a url").send().await;
            sent?; // escape in an async fn
            Ok(())
        }
        let Err(AppError::Internal { location, .. }) = handler().await else { panic!("expected internal") };
        assert_eq!(location.file(), file!());
        assert_eq!(location.line(), line_of("escape in an async fn"));
        assert_eq!(location.column(), 13, "the column of `sent?`");
    }

    #[test]
    fn an_internal_error_becomes_a_500_marked_unhandled() {
        let response = AppError::internal("boom").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.body().as_ref(), br#"{"error":"Internal Server Error"}"#);
        let unhandled = response.extensions().get::<cloture::Unhandled>().expect("marked unhandled");
        assert_eq!(unhandled.message, "boom");
        assert_eq!(unhandled.location.file(), file!());
    }

    #[test]
    fn handled_errors_keep_their_message_and_status() {
        let response = AppError::unavailable("The Bookings service is unavailable.").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.body().as_ref(), br#"{"error":"The Bookings service is unavailable."}"#);
        assert!(response.extensions().get::<cloture::Unhandled>().is_none());
        let response = AppError::MethodNotAllowed.into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[http::header::ALLOW], "GET, HEAD");
    }
}
