//! Console forms: [`CsrfForm`] reads an `application/x-www-form-urlencoded` body, refuses it with
//! 403 unless its `csrf` field is the session's CSRF token, and then decodes it into `T` (a
//! struct, or [`Fields`] to keep repeated fields). It replaces the parse-then-check code every
//! console handler used to repeat.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::http::auth::session_caller;
use crate::services::AppState;

/// The refusal of a form without the session's CSRF token.
pub const CSRF_REFUSAL: &str = "missing or wrong CSRF token; reload the page and try again";

/// A urlencoded form kept as its pairs, so that repeated fields (`<select multiple>`) keep every
/// value in order.
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Vec::<(String, String)>::deserialize(d).map(Fields)
    }
}

impl Fields {
    /// Decode a urlencoded body (a bad `%` escape is kept as written).
    pub fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed ("" if absent).
    pub fn one(&self, name: &str) -> String {
        self.raw(name).trim().to_string()
    }

    /// The first value of `name` as sent, untrimmed ("" if absent): passwords, pasted CSV.
    pub fn raw(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The first non-empty value of `name`, trimmed.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.one(name)).filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`, trimmed, in order, each once.
    pub fn all(&self, name: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| seen.insert(v.clone()))
            .collect()
    }

    /// Whether the field was sent at all (a checked checkbox).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Every pair in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Every pair in order, owned.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
}

/// A console form whose `csrf` field matched the session's token, decoded into `T`. Without a
/// session: 401; with a missing or wrong token: 403 (nothing of the form is looked at); a body
/// that does not decode into `T`: 422 `invalid_form`.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let (mut parts, body) = req.into_parts();
        let caller = session_caller(&mut parts, state)
            .await?
            .ok_or(Error::Unauthorized)?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| Error::bad("invalid_body", e.to_string()))?;
        caller.check_csrf(&Fields::parse(&bytes).one("csrf"), CSRF_REFUSAL)?;
        serde_urlencoded::from_bytes(&bytes)
            .map(CsrfForm)
            .map_err(|e| Error::unprocessable("invalid_form", format!("the form is incomplete: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::Fields;

    #[test]
    fn repeated_fields_keep_every_value_and_decode() {
        let f = Fields::parse(
            "csrf=a%2Bb&media=x&media=y&media=x&title=Th%C3%B4ng+b%C3%A1o&bad=%zz&end=%4&pw=+a+".as_bytes(),
        );
        assert_eq!(f.one("csrf"), "a+b");
        assert_eq!(f.all("media"), vec!["x", "y"]);
        assert_eq!(f.one("title"), "Thông báo");
        assert_eq!(f.one("bad"), "%zz");
        assert_eq!(f.one("end"), "%4");
        assert_eq!(f.raw("pw"), " a ");
        assert!(!f.has("enabled"));
        let typed: Fields = serde_urlencoded::from_str("a=1&a=2").unwrap();
        assert_eq!(typed.all("a"), vec!["1", "2"]);
    }
}
