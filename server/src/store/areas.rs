//! Table `areas`: the tree loader ([`tree`]) behind every walk of the area tree. The CRUD and
//! import of areas are still in the root `area` module (step A moves them here).

use sqlx::Row;

use crate::domain::area::AreaTree;
use crate::error::Result;
use crate::store::Store;

/// The whole area tree, in one query.
pub async fn tree(store: &Store) -> Result<AreaTree> {
    let rows = sqlx::query("SELECT code, parent FROM areas ORDER BY code")
        .fetch_all(&store.pool)
        .await?;
    let mut pairs = Vec::with_capacity(rows.len());
    for r in rows {
        pairs.push((
            r.try_get::<String, _>("code")?,
            r.try_get::<Option<String>, _>("parent")?,
        ));
    }
    Ok(AreaTree::new(pairs))
}
