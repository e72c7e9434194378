//! A database constraint violation as a request error a user understands: a unique violation is
//! a 409 saying what already exists, a foreign-key violation a 422 saying what is missing (or a
//! 409 saying what still uses the row), a check or not-null violation a 422 naming the rule.
//! Works from PostgreSQL's SQLSTATE codes and details and SQLite's extended codes and messages.
//!
//! ```ignore
//! insert_area(&mut tx, &area).await.name_violation(&format!("area `{}`", area.code))?;
//! ```

use crate::error::Error;

/// Which kind of constraint a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// UNIQUE or PRIMARY KEY.
    Unique,
    /// FOREIGN KEY.
    ForeignKey,
    /// CHECK.
    Check,
    /// NOT NULL.
    NotNull,
}

/// The kind of violation from a driver's code (PostgreSQL SQLSTATE or SQLite extended result
/// code) or, failing that, its message.
pub fn classify(code: Option<&str>, message: &str) -> Option<Violation> {
    let by_code = match code {
        Some("23505") | Some("2067") | Some("1555") => Some(Violation::Unique),
        Some("23503") | Some("787") => Some(Violation::ForeignKey),
        Some("23514") | Some("275") => Some(Violation::Check),
        Some("23502") | Some("1299") => Some(Violation::NotNull),
        _ => None,
    };
    by_code.or_else(|| {
        let m = message.to_ascii_lowercase();
        if m.contains("unique constraint") || m.contains("duplicate key") {
            Some(Violation::Unique)
        } else if m.contains("foreign key constraint") {
            Some(Violation::ForeignKey)
        } else if m.contains("check constraint") {
            Some(Violation::Check)
        } else if m.contains("not null constraint") || m.contains("not-null constraint") {
            Some(Violation::NotNull)
        } else {
            None
        }
    })
}

/// What the database said about a violation, as far as it said it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// `Key (col)=(value)` of PostgreSQL's detail, as (`col`, `value`).
    pub key: Option<(String, String)>,
    /// The table a foreign key points to (insert) or is referenced from (delete).
    pub table: Option<String>,
    /// Whether a foreign-key violation is a delete of a row still referenced.
    pub still_referenced: bool,
    /// The constraint or column named (`areas.code` on SQLite, the constraint on PostgreSQL).
    pub constraint: Option<String>,
}

/// Read PostgreSQL's detail (`Key (code)=(08003) already exists.`, `... is not present in table
/// "areas".`, `... is still referenced from table "devices".`) and SQLite's message
/// (`UNIQUE constraint failed: areas.code`).
pub fn detail(message: &str, pg_detail: Option<&str>, constraint: Option<&str>) -> Detail {
    let mut d = Detail {
        constraint: constraint.map(str::to_string),
        ..Detail::default()
    };
    if let Some(text) = pg_detail {
        if let Some(rest) = text.strip_prefix("Key (")
            && let Some((col, rest)) = rest.split_once(")=(")
            && let Some((value, _)) = rest.split_once(')')
        {
            d.key = Some((col.to_string(), value.to_string()));
        }
        for (marker, still) in [
            ("is not present in table \"", false),
            ("is still referenced from table \"", true),
        ] {
            if let Some((_, rest)) = text.split_once(marker)
                && let Some((table, _)) = rest.split_once('"')
            {
                d.table = Some(table.to_string());
                d.still_referenced = still;
            }
        }
    }
    if d.constraint.is_none()
        && let Some((_, named)) = message.split_once("constraint failed: ")
    {
        d.constraint = Some(named.trim().to_string());
    }
    if let Some((_, rest)) = message.split_once("null value in column \"")
        && let Some((column, _)) = rest.split_once('"')
    {
        d.constraint = Some(column.to_string());
    }
    d
}

/// The request error for a `kind` violation by a write to `subject` (e.g. ``area `08003` ``).
pub fn refusal(kind: Violation, subject: &str, d: &Detail) -> Error {
    let key = d.key.as_ref().map(|(c, v)| format!("`{c}` `{v}`"));
    match kind {
        Violation::Unique => Error::Conflict(match &key {
            Some(k) => format!("{subject} already exists ({k} is taken)"),
            None => format!("{subject} already exists"),
        }),
        Violation::ForeignKey if d.still_referenced => Error::Conflict(match &d.table {
            Some(t) => format!("{subject} is still used by `{t}`; remove or change those first"),
            None => format!("{subject} is still used elsewhere; remove or change those first"),
        }),
        Violation::ForeignKey => match (&key, &d.table) {
            (Some(k), Some(t)) => Error::unprocessable(
                "missing_reference",
                format!("{subject} refers to {k}, which does not exist in `{t}`"),
            ),
            (Some(k), None) => Error::unprocessable(
                "missing_reference",
                format!("{subject} refers to {k}, which does not exist"),
            ),
            // SQLite says neither which key nor whether the row was missing or still used.
            _ => Error::Conflict(format!(
                "{subject}: another record it refers to is missing, or one that refers to it remains"
            )),
        },
        Violation::Check => Error::unprocessable(
            "invalid_value",
            match &d.constraint {
                Some(c) => format!("{subject}: a value breaks the rule `{c}`"),
                None => format!("{subject}: a value breaks a rule of the database"),
            },
        ),
        Violation::NotNull => Error::unprocessable(
            "missing_value",
            match &d.constraint {
                Some(c) => format!("{subject}: `{c}` is required"),
                None => format!("{subject}: a required value is missing"),
            },
        ),
    }
}

/// `e` as a named 409/422 when it is a constraint violation; any other error unchanged.
pub fn named(e: impl Into<Error>, subject: &str) -> Error {
    let e = e.into();
    let Error::Db(sqlx::Error::Database(db)) = &e else {
        return e;
    };
    let kind = match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => Some(Violation::Unique),
        sqlx::error::ErrorKind::ForeignKeyViolation => Some(Violation::ForeignKey),
        sqlx::error::ErrorKind::CheckViolation => Some(Violation::Check),
        sqlx::error::ErrorKind::NotNullViolation => Some(Violation::NotNull),
        _ => None,
    }
    .or_else(|| classify(db.code().as_deref(), db.message()));
    let Some(kind) = kind else { return e };
    let pg_detail = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|p| p.detail());
    let d = detail(db.message(), pg_detail, db.constraint());
    refusal(kind, subject, &d)
}

/// [`named`] on a result: `.name_violation("area `08003`")?`.
pub trait NameViolation<T> {
    /// The error as a named 409/422 when it is a constraint violation.
    fn name_violation(self, subject: &str) -> Result<T, Error>;
}

impl<T, E: Into<Error>> NameViolation<T> for Result<T, E> {
    fn name_violation(self, subject: &str) -> Result<T, Error> {
        self.map_err(|e| named(e, subject))
    }
}

#[cfg(test)]
mod tests {
    use super::{Violation, classify, detail, refusal};

    #[test]
    fn codes_and_messages_of_both_backends_are_recognised() {
        assert_eq!(classify(Some("23505"), ""), Some(Violation::Unique));
        assert_eq!(classify(Some("2067"), ""), Some(Violation::Unique));
        assert_eq!(classify(Some("1555"), ""), Some(Violation::Unique));
        assert_eq!(classify(Some("787"), ""), Some(Violation::ForeignKey));
        assert_eq!(classify(Some("23514"), ""), Some(Violation::Check));
        assert_eq!(classify(Some("1299"), ""), Some(Violation::NotNull));
        assert_eq!(
            classify(Some("19"), "UNIQUE constraint failed: areas.code"),
            Some(Violation::Unique)
        );
        assert_eq!(
            classify(
                None,
                "duplicate key value violates unique constraint \"users_username_key\""
            ),
            Some(Violation::Unique)
        );
        assert_eq!(
            classify(
                None,
                "insert or update on table \"devices\" violates foreign key constraint \"x\""
            ),
            Some(Violation::ForeignKey)
        );
        assert_eq!(
            classify(None, "CHECK constraint failed: volume_range"),
            Some(Violation::Check)
        );
        assert_eq!(classify(Some("42P01"), "relation does not exist"), None);
    }

    #[test]
    fn messages_name_what_exists_or_is_missing() {
        let d = detail("", Some("Key (code)=(08003) already exists."), Some("areas_pkey"));
        assert_eq!(
            refusal(Violation::Unique, "area `08003`", &d).to_string(),
            "area `08003` already exists (`code` `08003` is taken)"
        );
        let d = detail("UNIQUE constraint failed: users.username", None, None);
        assert_eq!(d.constraint.as_deref(), Some("users.username"));
        assert_eq!(
            refusal(Violation::Unique, "user `ana`", &d).to_string(),
            "user `ana` already exists"
        );
        let d = detail(
            "",
            Some("Key (area)=(99) is not present in table \"areas\"."),
            None,
        );
        let e = refusal(Violation::ForeignKey, "device `d1`", &d);
        assert!(matches!(
            e,
            crate::error::Error::Unprocessable {
                code: "missing_reference",
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "device `d1` refers to `area` `99`, which does not exist in `areas`"
        );
        let d = detail(
            "",
            Some("Key (code)=(01) is still referenced from table \"devices\"."),
            None,
        );
        let e = refusal(Violation::ForeignKey, "area `01`", &d);
        assert!(matches!(e, crate::error::Error::Conflict(_)));
        assert_eq!(
            e.to_string(),
            "area `01` is still used by `devices`; remove or change those first"
        );
        let d = detail(
            "null value in column \"parent\" of relation \"t\" violates not-null constraint",
            None,
            None,
        );
        assert_eq!(
            refusal(Violation::NotNull, "area `x`", &d).to_string(),
            "area `x`: `parent` is required"
        );
        let d = detail("CHECK constraint failed: volume_range", None, None);
        assert_eq!(
            refusal(Violation::Check, "device `d1`", &d).to_string(),
            "device `d1`: a value breaks the rule `volume_range`"
        );
    }
}
