-- Issue 13: the report counts a schedule's occurrences only while it was enabled, so the history
-- of its enabled flag is kept: one row per write of a schedule (creation, update, enable,
-- disable) with the flag from then on. Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).
CREATE TABLE schedule_enablement (
    schedule_id TEXT NOT NULL,
    at          BIGINT NOT NULL,
    enabled     BIGINT NOT NULL
);
CREATE INDEX schedule_enablement_schedule ON schedule_enablement (schedule_id, at);

-- Schedules stored before this history: enabled since their creation, and a schedule disabled
-- now is taken as disabled since its last change (the best the stored rows tell).
INSERT INTO schedule_enablement (schedule_id, at, enabled) SELECT id, created_at, 1 FROM schedules;
INSERT INTO schedule_enablement (schedule_id, at, enabled)
    SELECT id, updated_at, 0 FROM schedules WHERE enabled = 0;
