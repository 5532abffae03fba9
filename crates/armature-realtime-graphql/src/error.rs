//! [`RequestError`]: why an HTTP request to a GraphQL endpoint could not be read, with the
//! status it is answered with.

use http::StatusCode;

/// Why a GraphQL over HTTP (or SSE) request could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The method is neither `GET` nor `POST` (`405`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A mutation was asked for over `GET` (`405`; GraphQL over HTTP allows only `POST`).
    #[error("mutations need POST")]
    MutationOverGet,
    /// The body is larger than the configured limit (`413`).
    #[error("request body too large")]
    BodyTooLarge,
    /// The body could not be read from the connection (`400`).
    #[error("request body could not be read")]
    BodyUnreadable,
    /// The body or query string is not a GraphQL request (`400`); the text says why.
    #[error("bad GraphQL request: {0}")]
    BadRequest(String),
    /// The `Content-Type` of a `POST` is not JSON (`415`).
    #[error("unsupported content type (use application/json)")]
    UnsupportedMediaType,
}

impl RequestError {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::MethodNotAllowed | RequestError::MutationOverGet => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            RequestError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BodyUnreadable | RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RequestError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }
}
