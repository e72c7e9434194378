//! Organisations (issue 15): the bodies that answer citizens' feedback and submit content to the
//! Department — sở/ngành (`department`), UBND huyện (`district`), UBND xã (`commune`), press
//! (`press`), central agencies in the province (`central`), or `other`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// Kinds of organisation.
pub const KINDS: &[&str] = &["department", "district", "commune", "press", "central", "other"];

/// One organisation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Organisation {
    /// Id (uuid v7).
    pub id: String,
    /// Name, unique.
    pub name: String,
    /// One of [`KINDS`].
    pub kind: String,
    /// Area it works in.
    pub area: Option<String>,
    /// Where its notices go.
    pub email: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Body of `POST /api/v1/organisations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    /// Name (1–200 characters, unique).
    pub name: String,
    /// One of department, district, commune, press, central, other.
    pub kind: String,
    /// Area it works in (an existing area code).
    #[serde(default)]
    pub area: Option<String>,
    /// E-mail address of its notices.
    #[serde(default)]
    pub email: Option<String>,
}

impl NewOrganisation {
    /// Trimmed and checked; a 422 names the field.
    pub fn check(&self) -> Result<NewOrganisation> {
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Error::unprocessable(
                "invalid_name",
                "`name` must be 1–200 characters",
            ));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(Error::unprocessable(
                "invalid_kind",
                format!("`kind`: `{}` is not one of {}", self.kind, KINDS.join(", ")),
            ));
        }
        let email = self
            .email
            .as_ref()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty());
        if let Some(e) = &email
            && (!e.contains('@') || e.contains(char::is_whitespace) || e.len() > 200)
        {
            return Err(Error::unprocessable(
                "invalid_email",
                format!("`email`: `{e}` is not an address"),
            ));
        }
        Ok(NewOrganisation {
            name,
            kind: self.kind.clone(),
            area: self
                .area
                .as_ref()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty()),
            email,
        })
    }
}
