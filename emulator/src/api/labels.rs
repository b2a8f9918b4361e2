//! URI labels, percent-decoded (the SDK sends ARNs with `%3A` and `%2F`), with refusals as
//! restJson1 errors instead of axum's plain-text ones.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The decoded path labels of the matched route (`String`, or a tuple for several).
#[derive(Debug)]
pub(crate) struct Labels<T>(pub T);

impl<S, T> FromRequestParts<S> for Labels<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(labels)) => Ok(Labels(labels)),
            Err(rejection) => Err(ApiError::validation(format!("Invalid URI label: {}", rejection.body_text()))),
        }
    }
}
