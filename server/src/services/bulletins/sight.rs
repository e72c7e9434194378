//! Which bulletins a caller sees ([`Sight`]): the one rule behind the console's bulletin pages
//! and the files of bulletins that are not on any board yet (`GET /files/{sha256}`, [`file_access`]).

use std::collections::HashSet;

use crate::domain::bulletin::Bulletin;
use crate::domain::scope::Caller;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::media::Fetch;
use crate::store::{self, Store};

/// What decides which bulletins a caller sees.
pub struct Sight {
    /// Areas whose bulletins reach the caller's subtree: the scope and the ancestors of its roots
    /// (a province-wide bulletin reaches a commune's staff); `None` = unrestricted.
    reach: Option<HashSet<String>>,
    /// Bulletins the caller created (the `bulletin.create` entries of the audit log).
    mine: HashSet<String>,
}

impl Sight {
    /// The sight of `caller`.
    pub async fn of(store: &Store, caller: &Caller) -> Result<Sight> {
        let mine = store::audit::entities(store, "bulletin.create", &caller.username)
            .await?
            .iter()
            .map(|e| e.trim_start_matches("bulletin:").to_string())
            .collect();
        let Some(scope) = &caller.scope_areas else {
            return Ok(Sight { reach: None, mine });
        };
        let tree = store::areas::tree(store).await?;
        let mut reach: HashSet<String> = scope.iter().cloned().collect();
        for code in scope {
            for above in tree.chain(code).into_iter().skip(1) {
                if scope.contains(&above) || !reach.insert(above) {
                    break;
                }
            }
        }
        Ok(Sight {
            reach: Some(reach),
            mine,
        })
    }

    /// Whether the caller sees a bulletin: unrestricted, a target reaching the scope, or its creator.
    pub fn sees(&self, b: &Bulletin) -> bool {
        self.sees_targets(&b.id, &b.areas)
    }

    /// [`Sight::sees`] of the bulletin `id` targeting `areas`.
    pub fn sees_targets(&self, id: &str, areas: &[String]) -> bool {
        match &self.reach {
            None => true,
            Some(r) => self.mine.contains(id) || areas.iter().any(|a| r.contains(a)),
        }
    }
}

/// Whether the bulletin file `sha` may be served to `caller` (`None`: no credentials). A file of
/// a bulletin on the boards is public by its hash (boards and third-party players fetch what
/// their feed names without credentials; the boards show it in public places); any other file
/// (a draft's, one in review, one taken off the boards) only to a signed-in caller who sees one
/// of the bulletins holding it. Anything else is 404, exactly as for a file that does not exist.
pub async fn file_access(state: &AppState, caller: Option<&Caller>, sha: &str) -> Result<Fetch> {
    let absent = || Error::NotFound(format!("file {sha}"));
    let holders = store::bulletins::file_holders(&state.store, sha).await?;
    if holders.iter().any(|h| h.published) {
        return Ok(Fetch::Public);
    }
    let Some(caller) = caller else {
        return Err(absent());
    };
    let sight = Sight::of(&state.store, caller).await?;
    // An unrestricted caller also sees a file no bulletin holds any more.
    if caller.scope_areas.is_none() || holders.iter().any(|h| sight.sees_targets(&h.id, &h.areas)) {
        Ok(Fetch::Private)
    } else {
        Err(absent())
    }
}
