//! restJson1 error answers: `x-amzn-ErrorType` header plus a JSON body with `message` and the
//! error's other modelled members set to `null`, as the service sends them (reference §A.8).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// One error answer of the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: Option<String>,
    nulls: &'static [&'static str],
}

const RESOURCE_MEMBERS: &[&str] = &["resourceId", "resourceType"];

impl ApiError {
    /// 404 ResourceNotFoundException (`resourceId`/`resourceType` null, as recorded).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", Some(message.into()), RESOURCE_MEMBERS)
    }

    /// 409 ConflictException (`resourceId`/`resourceType` null).
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ConflictException", Some(message.into()), RESOURCE_MEMBERS)
    }

    /// 400 ValidationException.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", Some(message.into()), &[])
    }

    /// 400 ValidationException with `"message": null` (the service's answer to a raw `=` cursor).
    pub(crate) fn validation_without_message() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", None, &[])
    }

    /// 403 AccessDeniedException.
    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDeniedException", Some(message.into()), &[])
    }

    /// 400 SerializationException: the body is not the JSON the operation expects.
    pub(crate) fn serialization(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SerializationException", Some(message.into()), &[])
    }

    /// UNVERIFIED: the control plane's answer to a request without a SigV4 `Authorization`
    /// header was never recorded; this is the generic AWS front-door refusal.
    pub(crate) fn missing_authentication() -> Self {
        let msg = Some("Missing Authentication Token".to_owned());
        Self::new(StatusCode::FORBIDDEN, "MissingAuthenticationTokenException", msg, &[])
    }

    /// 501: an operation the service has but this emulator does not implement (yet).
    pub(crate) fn not_implemented(operation: &str) -> Self {
        let msg = format!("whim-emulator does not implement {operation} yet");
        Self::new(StatusCode::NOT_IMPLEMENTED, "NotImplementedException", Some(msg), &[])
    }

    /// 501: a request signed for a service this emulator does not serve (yet).
    pub(crate) fn service_not_implemented(service: &str) -> Self {
        let msg = format!("whim-emulator does not implement the AWS service '{service}' yet");
        Self::new(StatusCode::NOT_IMPLEMENTED, "NotImplementedException", Some(msg), &[])
    }

    /// 404 UnknownOperationException: no operation has this method and path.
    pub(crate) fn unknown_operation(method: &str, path: &str) -> Self {
        let msg = format!("No operation matches {method} {path}; check the path against the API reference");
        Self::new(StatusCode::NOT_FOUND, "UnknownOperationException", Some(msg), &[])
    }

    fn new(status: StatusCode, kind: &'static str, message: Option<String>, nulls: &'static [&'static str]) -> Self {
        Self { status, kind, message, nulls }
    }

    /// The error type (`x-amzn-ErrorType`).
    #[cfg(test)]
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("message".into(), json!(self.message));
        for member in self.nulls {
            body.insert((*member).into(), Value::Null);
        }
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        response.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_body_has_the_recorded_nulls() {
        let e = ApiError::not_found("MicroVM not found: microvm-1");
        assert_eq!(e.body(), json!({"message": "MicroVM not found: microvm-1", "resourceId": null, "resourceType": null}));
        assert_eq!(ApiError::validation("x").body(), json!({"message": "x"}));
        assert_eq!(ApiError::validation_without_message().body(), json!({"message": null}));
    }
}
