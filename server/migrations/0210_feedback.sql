-- Issue 15: citizens' feedback (phản ánh, kiến nghị) and the organisations that answer it.
-- Portable SQL for SQLite and PostgreSQL (see 0001_core.sql): TEXT ids, BIGINT unix ms and 0/1.
--
-- organisations: sở/ngành (department), UBND huyện/xã (district, commune), press, central
-- agencies (central) or other; area: where it works (optional); email: where its notices go.
CREATE TABLE organisations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    area       TEXT NULL,
    email      TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX organisations_name ON organisations (name);

-- One citizen's feedback. code: the tracking code given to the citizen. name, contact: optional
-- personal data (NULL once purged: purged_at); show_name: the citizen chose to have the name
-- shown with a published answer. status: received | assigned | answered | closed. due_at: the
-- SLA deadline fixed at receipt (the area's or the global feedback.sla_hours). challenge: the
-- salt of the proof-of-work challenge it was sent with (unique: a challenge serves once).
CREATE TABLE feedback (
    id              TEXT PRIMARY KEY,
    code            TEXT NOT NULL,
    area            TEXT NOT NULL,
    policy_id       TEXT NULL,
    body            TEXT NOT NULL,
    name            TEXT NULL,
    contact         TEXT NULL,
    show_name       BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    organisation_id TEXT NULL,
    answer          TEXT NULL,
    answer_public   BIGINT NOT NULL DEFAULT 0,
    answered_by     TEXT NULL,
    challenge       TEXT NOT NULL,
    received_at     BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    assigned_at     BIGINT NULL,
    answered_at     BIGINT NULL,
    closed_at       BIGINT NULL,
    purged_at       BIGINT NULL
);
CREATE UNIQUE INDEX feedback_code ON feedback (code);
CREATE UNIQUE INDEX feedback_challenge ON feedback (challenge);
CREATE INDEX feedback_status_due ON feedback (status, due_at);
CREATE INDEX feedback_received ON feedback (received_at);

-- The photos of a feedback (at most 3), re-encoded as JPEG without metadata and stored as
-- data_dir/feedback/<sha256>.jpg; deleted with the personal fields at purge.
CREATE TABLE feedback_photos (
    feedback_id TEXT NOT NULL,
    n           BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    width       BIGINT NOT NULL,
    height      BIGINT NOT NULL,
    PRIMARY KEY (feedback_id, n)
);
