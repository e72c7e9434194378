//! A dispatch batch far larger than one step, with the leader lease lost in the middle (issue 14,
//! docs/benchmarks.md: at 100,000 devices the lease lapsed during one huge batch, which restarted
//! again and again). The batch advances a step (`ha.dispatch_chunk`) at a time: the steps
//! confirmed before the loss stay done, the deposed leader records nothing more, and the next
//! holder finishes the rest, every device getting exactly one manifest version for the change.
//!
//! The loss is made deterministic by the database itself: a trigger hands the lease to another
//! holder (`thief`, a new epoch) in the transaction that stamps the first confirmed manifest of
//! the batch, as an instance taking over at that moment would, and a second one keeps it the
//! thief's (on SQLite this instance would otherwise take it back at once: the data directory's
//! lock makes it the only possible holder) until the test lets the thief's lease lapse.

use crate::common::{self, TestApp};
use crate::dispatch_support::*;

use nguon_protocol::{DeviceId, topic};

const STEP: u64 = 40;
const DEVICES: usize = 400;

/// SQL that makes the first stamp of a confirmed manifest of a `prefix` device hand the lease to
/// `thief` under the next epoch, and keeps it the thief's until [`UNDO`].
fn steal_on_first_confirm(postgres: bool, prefix: &str) -> Vec<String> {
    let steal = "UPDATE leader_lease SET holder = 'thief', epoch = epoch + 1, expires_at = 9000000000000 \
                 WHERE name = 'leader' AND holder <> 'thief'";
    let when = format!("NEW.published_at > 0 AND NEW.device_id LIKE '{prefix}-%'");
    let kept = "OLD.holder = 'thief' AND NEW.holder <> 'thief'";
    if postgres {
        vec![
            format!(
                "CREATE FUNCTION steal_lease() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {steal}; RETURN NEW; END $$"
            ),
            format!(
                "CREATE TRIGGER steal_lease AFTER UPDATE OF published_at ON manifests FOR EACH ROW \
                 WHEN ({when}) EXECUTE FUNCTION steal_lease()"
            ),
            "CREATE FUNCTION keep_thief() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             RAISE EXCEPTION 'the lease is the thief''s'; END $$"
                .into(),
            format!(
                "CREATE TRIGGER keep_thief BEFORE UPDATE ON leader_lease FOR EACH ROW WHEN ({kept}) \
                 EXECUTE FUNCTION keep_thief()"
            ),
        ]
    } else {
        vec![
            format!(
                "CREATE TRIGGER steal_lease AFTER UPDATE OF published_at ON manifests FOR EACH ROW \
                 WHEN {when} BEGIN {steal}; END"
            ),
            format!(
                "CREATE TRIGGER keep_thief BEFORE UPDATE ON leader_lease FOR EACH ROW WHEN {kept} \
                 BEGIN SELECT RAISE(ABORT, 'the lease is the thief''s'); END"
            ),
        ]
    }
}

/// Drops what [`steal_on_first_confirm`] made (`{on}`: ` ON <table>` on PostgreSQL).
const UNDO: [(&str, &str); 2] = [("steal_lease", "manifests"), ("keep_thief", "leader_lease")];

async fn exec(app: &TestApp, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&app.state().store.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&app.state().store.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn a_batch_of_many_steps_survives_losing_the_lease_and_the_next_holder_finishes_it() {
    let app = common::spawn_app_with(|s| s.ha.dispatch_chunk = STEP).await;
    let postgres = app.state().store.backend == nguon_server::store::Backend::Postgres;
    let province = uid("p");
    area(&app, &province, None).await;
    let communes: Vec<String> = (0..8).map(|i| format!("{province}-{i}")).collect();
    for c in &communes {
        area(&app, c, Some(&province)).await;
    }
    // The start-up batch and the areas' changes are done once a device registered now has its
    // manifest confirmed and the outbox is empty: from then on only the change below dispatches.
    // The start-up batch and the changes so far are done once a device registered now (in an
    // area of its own: the change below must not cover it) has its manifest confirmed and the
    // outbox is empty: from then on only the change below dispatches.
    let sha = media(&app, "approved", 8_000).await;
    let elsewhere = uid("q");
    area(&app, &elsewhere, None).await;
    let first = uid("first");
    device(&app, &first, &elsewhere, "lease-password", None).await;
    eventually("the first device's manifest and an empty outbox", || async {
        let confirmed = count(
            &app,
            &format!("SELECT COUNT(*) FROM manifests WHERE device_id = '{first}' AND published_at > 0"),
        )
        .await;
        let outbox = count(&app, "SELECT COUNT(*) FROM dispatch_outbox").await;
        (confirmed == 1 && outbox == 0).then_some(())
    })
    .await;
    let epoch_before = count(&app, "SELECT epoch FROM leader_lease WHERE name = 'leader'").await;

    let prefix = uid("lease");
    bulk_devices(&app, &prefix, &communes, DEVICES).await;
    for sql in steal_on_first_confirm(postgres, &prefix) {
        exec(&app, &sql).await;
    }
    let sid = province_schedule(&app, &province, &sha).await;

    // The lease went to `thief` when the first step was confirmed: the next step's fence fails,
    // and this instance notices at its next renewal and stops its duties.
    eventually("the instance to become a follower", || async {
        (metric(&app, "nguon_leader").await == 0).then_some(())
    })
    .await;
    let of_prefix = format!("FROM manifests WHERE device_id LIKE '{prefix}-%'");
    let recorded = count(&app, &format!("SELECT COUNT(*) {of_prefix}")).await;
    let confirmed = count(&app, &format!("SELECT COUNT(*) {of_prefix} AND published_at > 0")).await;
    assert_eq!(
        (recorded, confirmed),
        (STEP as i64, STEP as i64),
        "exactly the first step was recorded and confirmed before the lease was lost; the \
         deposed leader's next step was fenced"
    );
    assert!(
        count(&app, "SELECT COUNT(*) FROM dispatch_outbox").await >= 1,
        "the outbox keeps the unfinished change"
    );

    // The thief dies without releasing: its lease lapses and this instance takes it over.
    for (name, table) in UNDO {
        let on = if postgres {
            format!(" ON {table}")
        } else {
            String::new()
        };
        exec(&app, &format!("DROP TRIGGER {name}{on}")).await;
    }
    exec(
        &app,
        "UPDATE leader_lease SET expires_at = 1 WHERE name = 'leader' AND holder = 'thief'",
    )
    .await;
    eventually("the next holder to finish the batch", || async {
        let confirmed = count(&app, &format!("SELECT COUNT(*) {of_prefix} AND published_at > 0")).await;
        let outbox = count(&app, "SELECT COUNT(*) FROM dispatch_outbox").await;
        (confirmed == DEVICES as i64 && outbox == 0).then_some(())
    })
    .await;
    assert_eq!(metric(&app, "nguon_leader").await, 1);
    assert_eq!(
        count(&app, "SELECT epoch FROM leader_lease WHERE name = 'leader'").await,
        epoch_before + 2,
        "the thief's epoch, then this instance's new one"
    );
    assert!(metric(&app, "nguon_leader_failovers_total").await >= 1);
    // One version per device for the change: each device's first manifest is version 1 and holds
    // the schedule, including the first step's, republished unchanged by the new holder.
    let rows: Vec<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT device_id, version, body {of_prefix}"
    )))
    .fetch_all(&app.state().store.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), DEVICES);
    let mut topics = vec![topic::desired(&DeviceId::parse(&first).unwrap())];
    for (device, version, body) in rows {
        assert_eq!(version, 1, "{device} got more than one version");
        assert!(
            has_item(body.as_bytes(), &sid),
            "{device}'s manifest lacks the schedule"
        );
        topics.push(topic::desired(&DeviceId::parse(&device).unwrap()));
    }
    clear_retained(&app, &province, &topics).await;
}
