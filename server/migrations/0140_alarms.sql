-- Issue 12 §6: alarms an operator acknowledges, raised and cleared by the alarm worker
-- (server/src/workers/alarms.rs). Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).
--
-- kind: device_offline | heartbeat_missed | delivery_below_threshold | playback_failed | silence
--       | low_disk.
-- subject_type / subject_id: what the alarm is about: device <id>, command <id> (an emergency) or
--       area <code>. area: the subject's area (a device's area, a command's target area) for the
--       operator's scope and the filters.
-- severity: critical | warning. raised_at / acked_at / cleared_at: unix ms; acked_by: username.
-- At most one OPEN alarm (cleared_at IS NULL) per (kind, subject): the partial unique index is
-- the guarantee, whatever number of evaluations run at once (both databases support partial
-- unique indexes and INSERT ... ON CONFLICT DO NOTHING against them).
CREATE TABLE alarms (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    area         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    message      TEXT NOT NULL,
    raised_at    BIGINT NOT NULL,
    acked_at     BIGINT NULL,
    acked_by     TEXT NULL,
    cleared_at   BIGINT NULL
);
CREATE UNIQUE INDEX alarms_one_open ON alarms (kind, subject_type, subject_id) WHERE cleared_at IS NULL;
CREATE INDEX alarms_raised ON alarms (raised_at);
CREATE INDEX alarms_area ON alarms (area);

-- The per-area offline threshold: an area without a row takes its nearest ancestor's, the root
-- the configured alarms.offline_after_s.
CREATE TABLE area_alarm_settings (
    area            TEXT PRIMARY KEY,
    offline_after_s BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
