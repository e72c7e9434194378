//! Administrative areas: a tree of units (province › commune › village, any depth) keyed by
//! official code ([`AreaCode`]).
//!
//! - [`Area`] and the bodies that create ([`NewArea`]) and change ([`AreaPatch`]) one, with their
//!   checks that need no database (code, non-empty fields, parent rules).
//! - [`parse_csv`] (in `domain::area_csv`, re-exported here): the area CSV import
//!   (`code,name,parent,level`), which reports every bad line; [`parent_cycles`] is the one parent
//!   loop check of PATCH, the CSV import and the registry import.
//! - [`AreaTree`]: the tree as plain maps, loaded once (`store::areas::tree`) and walked in
//!   memory: the one walk behind scope expansion, target resolution, the dispatcher's per-device
//!   lookups and the console's tree view ([`chain_with`] is the same upward walk over any parent
//!   lookup). Every walk is safe against cycles (a parent loop stored by hand cannot hang the
//!   server).

use std::collections::{HashMap, HashSet};

use nguon_protocol::AreaCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::domain::area_csv::{ImportSummary, LineError, parse_csv};
use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Areas and their checks

/// An administrative unit.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Area {
    /// Official code, e.g. `08003`.
    pub code: String,
    /// Display name, e.g. `Xã Sa Pa`.
    pub name: String,
    /// Parent code; null for a root (province).
    pub parent: Option<String>,
    /// `province`, `commune`, `village`, ... (free text).
    pub level: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Body of `POST /api/v1/areas`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArea {
    /// Official code (`[A-Za-z0-9._-]`, at most 32 characters).
    pub code: String,
    /// Display name.
    pub name: String,
    /// Parent code (must exist); omit for a root.
    #[serde(default)]
    pub parent: Option<String>,
    /// Level name.
    pub level: String,
}

/// Body of `PATCH /api/v1/areas/{code}`; absent fields are unchanged. `parent: null` makes a root.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaPatch {
    /// New name.
    pub name: Option<String>,
    /// New level.
    pub level: Option<String>,
    /// New parent (must exist and not be the area or one of its descendants).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent: Option<Option<String>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The stored fields of an area (what a create or an update writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaFields {
    /// Code.
    pub code: String,
    /// Display name (trimmed, not empty).
    pub name: String,
    /// Parent code.
    pub parent: Option<String>,
    /// Level (trimmed, not empty).
    pub level: String,
}

/// Validate an area code, as a 400 `invalid_code` naming it.
pub fn parse_code(code: &str) -> Result<AreaCode> {
    AreaCode::parse(code).map_err(|e| Error::bad("invalid_code", format!("area code `{code}`: {e}")))
}

/// The trimmed value, or a 400 `invalid_field` naming the empty field.
pub fn non_empty(field: &'static str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Error::bad(
            "invalid_field",
            format!("`{field}` must not be empty"),
        ));
    }
    Ok(v.to_string())
}

fn unknown_parent(p: &str) -> Error {
    Error::unprocessable("unknown_parent", format!("parent area `{p}` does not exist"))
}

impl NewArea {
    /// The checks that need no database, in the order the API reports them: code, name, level,
    /// then the parent (a valid code, not the area itself; an empty parent is none).
    pub fn validate(&self) -> Result<AreaFields> {
        let code = parse_code(self.code.trim())?;
        let name = non_empty("name", &self.name)?;
        let level = non_empty("level", &self.level)?;
        let parent = self.parent.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if let Some(p) = parent {
            parse_code(p)?;
            if p == code.as_str() {
                return Err(Error::unprocessable(
                    "invalid_parent",
                    "an area cannot be its own parent",
                ));
            }
        }
        Ok(AreaFields {
            code: code.to_string(),
            name,
            parent: parent.map(str::to_string),
            level,
        })
    }
}

impl AreaPatch {
    /// The fields of `area` after this patch (checked as far as no database is needed: a new
    /// parent's code; that it exists and is not below the area is [`check_parent`]'s).
    pub fn apply(&self, area: &Area) -> Result<AreaFields> {
        let name = match &self.name {
            Some(n) => non_empty("name", n)?,
            None => area.name.clone(),
        };
        let level = match &self.level {
            Some(l) => non_empty("level", l)?,
            None => area.level.clone(),
        };
        let parent = match &self.parent {
            None => area.parent.clone(),
            Some(None) => None,
            Some(Some(p)) => {
                let p = p.trim().to_string();
                parse_code(&p)?;
                Some(p)
            }
        };
        Ok(AreaFields {
            code: area.code.clone(),
            name,
            parent,
            level,
        })
    }
}

/// 422 unless `parent` may become the parent of `code`: stored (`unknown_parent`), and neither
/// `code` nor one of its descendants (`invalid_parent`, a cycle).
pub fn check_parent(tree: &AreaTree, code: &str, parent: &str) -> Result<()> {
    if !tree.contains(parent) {
        return Err(unknown_parent(parent));
    }
    if tree.is_within(parent, code) {
        return Err(Error::unprocessable(
            "invalid_parent",
            format!("`{parent}` is `{code}` or one of its descendants"),
        ));
    }
    Ok(())
}

/// The one cycle check of a batch of area rows (the CSV import, the registry import), the same
/// rule as a PATCH: `rows` replace the stored areas of the same codes, and each row whose parent
/// would be the row itself or one of its descendants is returned (its index and the 422 of
/// [`check_parent`]). A parent that is neither stored nor in `rows` is left to the caller's own
/// check.
pub fn parent_cycles(stored: &AreaTree, rows: &[AreaFields]) -> Vec<(usize, Error)> {
    let replaced: HashSet<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let kept = stored
        .order
        .iter()
        .filter(|c| !replaced.contains(c.as_str()))
        .map(|c| (c.clone(), stored.parent(c).map(str::to_string)));
    let after = AreaTree::new(kept.chain(rows.iter().map(|r| (r.code.clone(), r.parent.clone()))));
    rows.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let p = r.parent.as_deref().filter(|p| after.contains(p))?;
            check_parent(&after, &r.code, p).err().map(|e| (i, e))
        })
        .collect()
}

/// 422 `unknown_parent` for a parent that is not stored.
pub fn require_parent(parent: &str, stored: bool) -> Result<()> {
    if stored {
        Ok(())
    } else {
        Err(unknown_parent(parent))
    }
}

/// What still refers to an area (counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dependents {
    /// Child areas.
    pub children: i64,
    /// Devices in it.
    pub devices: i64,
    /// Schedules targeting it.
    pub schedules: i64,
    /// Media files it owns.
    pub media: i64,
}

impl Dependents {
    /// 409 naming the first thing that keeps area `code` from being deleted (children, devices,
    /// schedules, media, in that order); `Ok` when nothing does.
    pub fn check_delete(&self, code: &str) -> Result<()> {
        let refusal = if self.children > 0 {
            format!(
                "area `{code}` has {} child area(s); delete or move them first",
                self.children
            )
        } else if self.devices > 0 {
            format!("area `{code}` has {} device(s); move them first", self.devices)
        } else if self.schedules > 0 {
            format!(
                "area `{code}` is the target of {} schedule(s); change or delete them first",
                self.schedules
            )
        } else if self.media > 0 {
            format!(
                "area `{code}` owns {} media file(s); they would lose their owner",
                self.media
            )
        } else {
            return Ok(());
        };
        Err(Error::Conflict(refusal))
    }
}

// ---------------------------------------------------------------------------------------------
// The tree

/// The one upward walk of the area tree: `area`, then the parent `parent_of` names for it, then
/// that one's parent, ... as far as parents are named (the first element is `area` even when it
/// is unknown). Stops at a repeated code, so a parent loop ends the walk.
pub fn chain_with<'a>(area: &str, parent_of: impl Fn(&str) -> Option<&'a str>) -> Vec<String> {
    let mut out = vec![area.to_string()];
    while let Some(p) = out.last().and_then(|c| parent_of(c)) {
        if out.iter().any(|o| o == p) {
            break;
        }
        out.push(p.to_string());
    }
    out
}

/// Areas by code with their parent and children.
#[derive(Debug, Clone, Default)]
pub struct AreaTree {
    parent: HashMap<String, Option<String>>,
    children: HashMap<String, Vec<String>>,
    order: Vec<String>,
}

impl AreaTree {
    /// A tree from `(code, parent)` rows; children keep the rows' order.
    pub fn new(rows: impl IntoIterator<Item = (String, Option<String>)>) -> AreaTree {
        let mut t = AreaTree::default();
        for (code, parent) in rows {
            if let Some(p) = &parent {
                t.children.entry(p.clone()).or_default().push(code.clone());
            }
            if t.parent.insert(code.clone(), parent).is_none() {
                t.order.push(code);
            }
        }
        t
    }

    /// Whether the area is stored.
    pub fn contains(&self, code: &str) -> bool {
        self.parent.contains_key(code)
    }

    /// Number of areas.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there is no area.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The stored parent of an area (`None` for a root or an unknown area).
    pub fn parent(&self, code: &str) -> Option<&str> {
        self.parent.get(code).and_then(|p| p.as_deref())
    }

    /// The direct children of an area, in stored order.
    pub fn children(&self, code: &str) -> &[String] {
        self.children.get(code).map_or(&[], |c| c.as_slice())
    }

    /// The area followed by its parent, grandparent, ... as far as parents are named (the first
    /// element is `area` even when it is not stored). Stops at a repeated code.
    pub fn chain(&self, area: &str) -> Vec<String> {
        chain_with(area, |c| self.parent(c))
    }

    /// The stored area followed by its stored ancestors up to the root; empty if the area is
    /// unknown (a dangling parent code ends the walk).
    pub fn ancestors(&self, code: &str) -> Vec<String> {
        if !self.contains(code) {
            return Vec::new();
        }
        self.chain(code)
            .into_iter()
            .take_while(|c| self.contains(c))
            .collect()
    }

    /// The given roots (each once, in order; they need not be stored) followed by all their
    /// descendants, each once, breadth first.
    pub fn subtree(&self, roots: &[String]) -> Vec<String> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for r in roots {
            if seen.insert(r.as_str()) {
                out.push(r.clone());
            }
        }
        let mut i = 0;
        while i < out.len() {
            let code = out[i].clone();
            for ch in self.children(&code) {
                if seen.insert(ch.as_str()) {
                    out.push(ch.clone());
                }
            }
            i += 1;
        }
        out
    }

    /// Whether `code` is `root` or one of its descendants.
    pub fn is_within(&self, code: &str, root: &str) -> bool {
        self.chain(code).iter().any(|c| c == root)
    }

    /// Every area reachable from a root (an area whose parent is none or not stored), depth
    /// first, each with its depth (0 for a root); roots and children in the rows' order. Areas
    /// on a parent loop are not reachable from a root and are left out.
    pub fn depth_first(&self) -> Vec<(String, usize)> {
        let mut stack: Vec<(&str, usize)> = self
            .order
            .iter()
            .filter(|c| self.parent(c).is_none_or(|p| !self.contains(p)))
            .rev()
            .map(|c| (c.as_str(), 0))
            .collect();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        while let Some((code, depth)) = stack.pop() {
            if !seen.insert(code) {
                continue;
            }
            out.push((code.to_string(), depth));
            for ch in self.children(code).iter().rev() {
                stack.push((ch.as_str(), depth + 1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn tree() -> AreaTree {
        AreaTree::new(
            [
                ("p", None),
                ("c1", Some("p")),
                ("c2", Some("p")),
                ("v1", Some("c1")),
                ("v2", Some("c1")),
                ("orphan", Some("gone")),
            ]
            .map(|(c, p): (&str, Option<&str>)| (c.to_string(), p.map(str::to_string))),
        )
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_chain_runs_from_the_area_to_the_root() {
        let t = tree();
        assert_eq!(t.chain("v2"), v(&["v2", "c1", "p"]));
        assert_eq!(t.chain("unknown"), v(&["unknown"]));
        assert_eq!(t.chain("orphan"), v(&["orphan", "gone"]));
        assert_eq!(t.ancestors("v2"), v(&["v2", "c1", "p"]));
        assert_eq!(t.ancestors("orphan"), v(&["orphan"]));
        assert!(t.ancestors("unknown").is_empty());
        assert!(t.is_within("v1", "p") && !t.is_within("c2", "c1"));
    }

    #[test]
    fn a_subtree_lists_the_roots_then_every_descendant_once() {
        let t = tree();
        assert_eq!(t.subtree(&v(&["c1"])), v(&["c1", "v1", "v2"]));
        assert_eq!(
            t.subtree(&v(&["c1", "p", "c1"])),
            v(&["c1", "p", "v1", "v2", "c2"])
        );
        assert_eq!(t.subtree(&v(&["nowhere"])), v(&["nowhere"]));
        assert!(t.subtree(&[]).is_empty());
    }

    #[test]
    fn walks_end_on_a_parent_loop() {
        let t = AreaTree::new(
            [("a", "b"), ("b", "c"), ("c", "a")].map(|(c, p)| (c.to_string(), Some(p.to_string()))),
        );
        assert_eq!(t.chain("a"), v(&["a", "b", "c"]));
        assert_eq!(t.subtree(&v(&["a"])), v(&["a", "c", "b"]));
    }

    #[test]
    fn the_depth_first_view_lists_roots_then_their_children_with_depths() {
        let t = tree();
        let df: Vec<(String, usize)> = t.depth_first();
        let codes: Vec<(&str, usize)> = df.iter().map(|(c, d)| (c.as_str(), *d)).collect();
        // Rows are in code order as the store loads them; an area whose parent is unknown is a
        // root too.
        assert_eq!(
            codes,
            vec![
                ("p", 0),
                ("c1", 1),
                ("v1", 2),
                ("v2", 2),
                ("c2", 1),
                ("orphan", 0)
            ]
        );
        let looped = AreaTree::new(
            [("a", Some("b")), ("b", Some("a")), ("r", None)]
                .map(|(c, p): (&str, Option<&str>)| (c.to_string(), p.map(str::to_string))),
        );
        assert_eq!(looped.depth_first(), vec![("r".to_string(), 0)]);
    }

    #[test]
    fn the_upward_walk_works_over_any_parent_lookup() {
        let parents: std::collections::HashMap<&str, &str> = [("v", "c"), ("c", "p"), ("x", "x")].into();
        assert_eq!(chain_with("v", |c| parents.get(c).copied()), v(&["v", "c", "p"]));
        assert_eq!(chain_with("x", |c| parents.get(c).copied()), v(&["x"]));
        assert_eq!(chain_with("nope", |c| parents.get(c).copied()), v(&["nope"]));
    }

    fn new_area(code: &str, name: &str, parent: Option<&str>, level: &str) -> NewArea {
        NewArea {
            code: code.into(),
            name: name.into(),
            parent: parent.map(str::to_string),
            level: level.into(),
        }
    }

    fn code_of(e: crate::error::Error) -> String {
        match e {
            crate::error::Error::BadRequest { code, .. }
            | crate::error::Error::Unprocessable { code, .. } => code.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_new_area_is_trimmed_and_refused_for_a_bad_code_an_empty_field_or_itself_as_parent() {
        let ok = new_area(" 08003 ", " Xã Sa Pa ", Some(" 10 "), "commune")
            .validate()
            .unwrap();
        assert_eq!(
            ok,
            AreaFields {
                code: "08003".into(),
                name: "Xã Sa Pa".into(),
                parent: Some("10".into()),
                level: "commune".into()
            }
        );
        assert_eq!(
            new_area("10", "T", Some("  "), "p").validate().unwrap().parent,
            None
        );
        let refused = |a: NewArea| code_of(a.validate().unwrap_err());
        assert_eq!(refused(new_area("x/y", "n", None, "l")), "invalid_code");
        assert_eq!(refused(new_area("10", " ", None, "l")), "invalid_field");
        assert_eq!(refused(new_area("10", "n", None, "")), "invalid_field");
        assert_eq!(refused(new_area("10", "n", Some("a b"), "l")), "invalid_code");
        assert_eq!(refused(new_area("10", "n", Some("10"), "l")), "invalid_parent");
    }

    #[test]
    fn a_patch_keeps_absent_fields_and_a_parent_must_be_stored_and_not_below() {
        let area = Area {
            code: "c1".into(),
            name: "C".into(),
            parent: Some("p".into()),
            level: "commune".into(),
            created_at: 0,
            updated_at: 0,
        };
        let keep = AreaPatch {
            name: Some(" New ".into()),
            level: None,
            parent: None,
        };
        let f = keep.apply(&area).unwrap();
        assert_eq!(
            (f.name.as_str(), f.level.as_str(), f.parent.as_deref()),
            ("New", "commune", Some("p"))
        );
        let root = AreaPatch {
            name: None,
            level: None,
            parent: Some(None),
        };
        assert_eq!(root.apply(&area).unwrap().parent, None);
        let bad = AreaPatch {
            name: None,
            level: Some(" ".into()),
            parent: None,
        };
        assert_eq!(code_of(bad.apply(&area).unwrap_err()), "invalid_field");
        let t = tree();
        assert!(check_parent(&t, "c1", "c2").is_ok());
        assert_eq!(
            code_of(check_parent(&t, "c1", "gone").unwrap_err()),
            "unknown_parent"
        );
        assert_eq!(
            code_of(check_parent(&t, "c1", "v2").unwrap_err()),
            "invalid_parent"
        );
        assert_eq!(
            code_of(check_parent(&t, "c1", "c1").unwrap_err()),
            "invalid_parent"
        );
    }

    #[test]
    fn an_area_is_deleted_only_when_nothing_refers_to_it_and_the_first_reason_is_named() {
        assert!(Dependents::default().check_delete("a").is_ok());
        let msg = |d: Dependents| match d.check_delete("a").unwrap_err() {
            crate::error::Error::Conflict(m) => m,
            other => panic!("{other:?}"),
        };
        let all = Dependents {
            children: 2,
            devices: 1,
            schedules: 1,
            media: 1,
        };
        assert_eq!(
            msg(all),
            "area `a` has 2 child area(s); delete or move them first"
        );
        assert_eq!(
            msg(Dependents { children: 0, ..all }),
            "area `a` has 1 device(s); move them first"
        );
        assert!(
            msg(Dependents {
                children: 0,
                devices: 0,
                ..all
            })
            .contains("target of 1 schedule(s)")
        );
        assert!(
            msg(Dependents {
                media: 3,
                ..Dependents::default()
            })
            .contains("owns 3 media file(s)")
        );
    }
}
