//! The one SQL form of the scope rule (`domain::scope`): a condition keeping rows whose area
//! column is inside the caller's scope, with the values it binds.

use crate::domain::scope::Caller;
use crate::store::placeholders;

/// Most scope codes bound one by one in [`scope_sql`]; past it the subtree is expanded in SQL.
pub const SCOPE_INLINE_MAX: usize = 500;

/// An SQL condition and the values it binds, in order (see [`scope_sql`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSql {
    /// The condition, e.g. `d.area IN ($1, $2)`.
    pub sql: String,
    /// Values for its placeholders.
    pub binds: Vec<String>,
}

impl ScopeSql {
    /// The number of the placeholder after this condition's last one, given it started at `start`.
    pub fn next(&self, start: usize) -> usize {
        start + self.binds.len()
    }
}

/// A condition keeping rows whose `column` (an area code) is inside the caller's scope, with
/// placeholders numbered from `$start` and the values to bind in order. Unrestricted callers get
/// `1 = 1` and nothing to bind. The subtree codes (computed once per request when the caller was
/// built) are bound one by one while there are at most [`SCOPE_INLINE_MAX`]; a larger subtree is
/// expanded inside the query from the few scope roots (recursive CTE on `areas.parent`), which
/// keeps under SQLite's and PostgreSQL's limits on bound parameters.
pub fn scope_sql(caller: &Caller, column: &str, start: usize) -> ScopeSql {
    let (Some(codes), roots) = (&caller.scope_areas, &caller.scope_roots) else {
        return ScopeSql {
            sql: "1 = 1".into(),
            binds: Vec::new(),
        };
    };
    if codes.is_empty() {
        return ScopeSql {
            sql: "1 = 0".into(),
            binds: Vec::new(),
        };
    }
    match roots {
        Some(roots) if codes.len() > SCOPE_INLINE_MAX && !roots.is_empty() => ScopeSql {
            sql: format!(
                "{column} IN (WITH RECURSIVE scope_sub(code) AS (SELECT code FROM areas WHERE code IN ({}) \
                 UNION SELECT a.code FROM areas a JOIN scope_sub s ON a.parent = s.code) SELECT code FROM scope_sub)",
                placeholders(start, roots.len())
            ),
            binds: roots.clone(),
        },
        _ => ScopeSql {
            sql: format!("{column} IN ({})", placeholders(start, codes.len())),
            binds: codes.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::scope::{Caller, Role, Via};

    fn caller(areas: Option<Vec<String>>, roots: Option<Vec<String>>) -> Caller {
        Caller {
            user_id: "u".into(),
            username: "u".into(),
            role: Role::Operator,
            extra_roles: Vec::new(),
            scope_areas: areas,
            scope_roots: roots,
            via: Via::ApiToken,
            csrf: None,
        }
    }

    #[test]
    fn the_scope_condition_binds_codes_or_expands_the_roots_in_sql() {
        let all = super::scope_sql(&caller(None, None), "d.area", 1);
        assert_eq!((all.sql.as_str(), all.binds.len()), ("1 = 1", 0));
        let small = super::scope_sql(
            &caller(Some(vec!["a".into(), "a1".into()]), Some(vec!["a".into()])),
            "d.area",
            3,
        );
        assert_eq!(small.sql, "d.area IN ($3, $4)");
        assert_eq!(small.binds, vec!["a", "a1"]);
        assert_eq!(small.next(3), 5);
        let many: Vec<String> = (0..=super::SCOPE_INLINE_MAX).map(|i| format!("c{i}")).collect();
        let big = super::scope_sql(&caller(Some(many), Some(vec!["c0".into()])), "d.area", 1);
        assert!(big.sql.starts_with("d.area IN (WITH RECURSIVE"), "{}", big.sql);
        assert_eq!(big.binds, vec!["c0"]);
        let none = super::scope_sql(&caller(Some(vec![]), Some(vec![])), "d.area", 1);
        assert_eq!(none.sql, "1 = 0");
    }
}
