//! The area tree (province › commune › village, any depth) as plain maps, loaded once
//! (`store::areas::tree`) and walked in memory: the one walk behind scope expansion, target
//! resolution and the dispatcher's per-device lookups. Every walk is safe against cycles (a
//! parent loop stored by hand cannot hang the server).

use std::collections::{HashMap, HashSet};

/// Areas by code with their parent and children.
#[derive(Debug, Clone, Default)]
pub struct AreaTree {
    parent: HashMap<String, Option<String>>,
    children: HashMap<String, Vec<String>>,
}

impl AreaTree {
    /// A tree from `(code, parent)` rows; children keep the rows' order.
    pub fn new(rows: impl IntoIterator<Item = (String, Option<String>)>) -> AreaTree {
        let mut t = AreaTree::default();
        for (code, parent) in rows {
            if let Some(p) = &parent {
                t.children.entry(p.clone()).or_default().push(code.clone());
            }
            t.parent.insert(code, parent);
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
        let mut out = vec![area.to_string()];
        let mut cur = self.parent(area);
        while let Some(c) = cur {
            if out.iter().any(|o| o == c) {
                break;
            }
            out.push(c.to_string());
            cur = self.parent(c);
        }
        out
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
}

#[cfg(test)]
mod tests {
    use super::AreaTree;

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
}
