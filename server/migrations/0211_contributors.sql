-- Issue 15: contributors. Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).
--
-- organisation_members: the contributor accounts of an organisation (a user belongs to at most
-- one; role `contributor` in users).
CREATE TABLE organisation_members (
    user_id         TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX organisation_members_org ON organisation_members (organisation_id);

-- Content an organisation submits to the Department. areas: JSON array of target area codes.
-- status: submitted | received | changes_requested | approved | rejected. note: the editor's
-- reason (rejection, requested changes). bulletin_id: the draft bulletin made at approval.
CREATE TABLE submissions (
    id              TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    author          TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    policy_id       TEXT NULL,
    areas           TEXT NOT NULL,
    status          TEXT NOT NULL,
    note            TEXT NULL,
    reviewer        TEXT NULL,
    bulletin_id     TEXT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    decided_at      BIGINT NULL
);
CREATE INDEX submissions_org ON submissions (organisation_id, created_at);
CREATE INDEX submissions_status ON submissions (status);

-- Files of a submission. kind: audio (a draft in the media library, by sha256) | image |
-- video | attachment (stored as bulletin files, data_dir/files/<sha256>).
CREATE TABLE submission_files (
    submission_id TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    filename      TEXT NOT NULL,
    bytes         BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (submission_id, sha256)
);

-- What the contributor is told of each editorial step (shown with the submission; e-mailed to
-- the organisation's address through [smtp] by the notifier). state: pending | sent | failed |
-- none (no address or no relay).
CREATE TABLE submission_notices (
    id              TEXT PRIMARY KEY,
    submission_id   TEXT NOT NULL,
    organisation_id TEXT NOT NULL,
    status          TEXT NOT NULL,
    message         TEXT NOT NULL,
    email           TEXT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT NULL
);
CREATE INDEX submission_notices_sub ON submission_notices (submission_id);
CREATE INDEX submission_notices_due ON submission_notices (state);
