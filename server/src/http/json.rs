//! [`ApiJson`]: a JSON body whose errors become `400 invalid_body` naming the field.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A JSON body whose errors become `400 invalid_body` naming the field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;
    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::bad("invalid_body", e.to_string()))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(ApiJson).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                Error::bad("invalid_body", inner.to_string())
            } else {
                Error::bad("invalid_body", format!("`{path}`: {inner}"))
            }
        })
    }
}
