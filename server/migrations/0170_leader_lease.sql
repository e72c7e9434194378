-- Issue 14: the leader lease of several nguon-server instances sharing one database
-- (store/lease.rs, workers/leader.rs). Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).
--
-- One row per lease (`leader`: the scheduler/dispatcher, command sender, alarms, notifier and CAP
-- feeds run only on its holder). holder: the instance id holding it ('' never held).
-- epoch: the fencing token, +1 at every acquisition; the dispatcher's write of unconfirmed
-- manifests checks it in its own transaction, so a deposed leader writes (and so publishes)
-- nothing. expires_at / acquired_at: unix ms; a released lease has expires_at 0.
CREATE TABLE leader_lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
INSERT INTO leader_lease (name, holder, epoch, expires_at, acquired_at) VALUES ('leader', '', 0, 0, 0);
