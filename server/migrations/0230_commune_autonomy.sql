-- Commune autonomy (Circular 39, issue 16; docs/autonomy.md). A commune's setting (absent: off):
-- whether it decides on the province content reaching it, and what happens to normal content it
-- does not answer in time ('play' | 'skip'). enabled_since: unix ms it was last turned on
-- (content changed before then is not asked about).
CREATE TABLE commune_autonomy (
    area           TEXT PRIMARY KEY,
    enabled        BIGINT NOT NULL,
    unanswered     TEXT NOT NULL,
    enabled_since  BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    updated_by     TEXT NOT NULL
);

-- The questions put to communes and their answers. kind: 'acceptance' (normal content from
-- above) or 'order' (a priority item from above clashing with the commune's own item other_id;
-- '' for acceptance). revision: the schedule's updated_at (ms) asked about; a later change asks
-- again. state: pending | accepted | declined | reslotted | unanswered | ordered.
CREATE TABLE commune_requests (
    id           TEXT PRIMARY KEY,
    area         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    schedule_id  TEXT NOT NULL,
    other_id     TEXT NOT NULL,
    revision     BIGINT NOT NULL,
    first_at     BIGINT NULL,
    state        TEXT NOT NULL,
    slot_at      BIGINT NULL,
    reason       TEXT NULL,
    first_choice TEXT NULL,
    outcome      TEXT NULL,
    asked_at     BIGINT NOT NULL,
    answered_at  BIGINT NULL,
    answered_by  TEXT NULL
);
CREATE UNIQUE INDEX commune_requests_key ON commune_requests (area, kind, schedule_id, other_id);
CREATE INDEX commune_requests_due ON commune_requests (state, first_at);
