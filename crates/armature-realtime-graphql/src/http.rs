//! GraphQL over HTTP: reading a request from a query string (`GET`) or a JSON body
//! (`POST`), and the JSON response of a single result.

use async_graphql::parser::types::OperationType;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};

use crate::Body;
use crate::error::RequestError;

/// The boxed error of a request body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the GraphQL request of an HTTP request.
pub(crate) async fn read_request<B>(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: B,
    max_body_bytes: usize,
) -> Result<async_graphql::Request, RequestError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    if method == Method::GET {
        let request = from_query(uri.query().unwrap_or(""))?;
        if operation_type(&request) == Some(OperationType::Mutation) {
            return Err(RequestError::MutationOverGet);
        }
        return Ok(request);
    }
    if method != Method::POST {
        return Err(RequestError::MethodNotAllowed);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.eq_ignore_ascii_case("application/graphql+json")
        })
        .unwrap_or(true);
    if !json {
        return Err(RequestError::UnsupportedMediaType);
    }
    let bytes = match Limited::new(body, max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return Err(
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    RequestError::BodyTooLarge
                } else {
                    RequestError::BodyUnreadable
                },
            );
        }
    };
    serde_json::from_slice(&bytes).map_err(|err| RequestError::BadRequest(err.to_string()))
}

fn from_query(query: &str) -> Result<async_graphql::Request, RequestError> {
    let mut map = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = match &*key {
            "query" | "operationName" => serde_json::Value::String(value.into_owned()),
            "variables" | "extensions" => serde_json::from_str(&value)
                .map_err(|err| RequestError::BadRequest(format!("{key} is not JSON: {err}")))?,
            _ => continue,
        };
        map.insert(key.into_owned(), value);
    }
    if !map.contains_key("query") {
        return Err(RequestError::BadRequest("no query parameter".into()));
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|err| RequestError::BadRequest(err.to_string()))
}

/// The type of the operation the request will run, when its document parses.
pub(crate) fn operation_type(request: &async_graphql::Request) -> Option<OperationType> {
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    let name = request.operation_name.as_deref();
    doc.operations
        .iter()
        .find(|(op_name, _)| name.is_none() || op_name.map(|n| n.as_str()) == name)
        .map(|(_, op)| op.node.ty)
}

/// A JSON response with one execution result.
pub(crate) fn json_response(
    response: &async_graphql::Response,
    headers: &HeaderMap,
) -> Response<Body> {
    let graphql_json = accepts(headers, "application/graphql-response+json");
    let body = serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec());
    let mut out = Response::new(crate::body::full(body));
    if graphql_json && crate::operation::is_request_error(response) {
        *out.status_mut() = StatusCode::BAD_REQUEST;
    }
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if graphql_json {
            "application/graphql-response+json; charset=utf-8"
        } else {
            "application/json"
        }),
    );
    out
}

/// True when the `Accept` header lists `media`.
pub(crate) fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|part| {
                part.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case(media)
            })
        })
    })
}

/// The answer to a request that could not be read.
pub(crate) fn error_response(err: &RequestError) -> Response<Body> {
    let mut out = Response::new(crate::body::full(err.to_string()));
    *out.status_mut() = err.status();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if matches!(
        err,
        RequestError::MethodNotAllowed | RequestError::MutationOverGet
    ) {
        out.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static(if matches!(err, RequestError::MutationOverGet) {
                "POST"
            } else {
                "GET, POST"
            }),
        );
    }
    out
}
