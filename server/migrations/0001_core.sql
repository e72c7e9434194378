-- Core registry: administrative areas, devices and their live status, the media library.
-- Portable SQL for SQLite and PostgreSQL: TEXT, BIGINT (unix ms, booleans 0/1), DOUBLE PRECISION.

CREATE TABLE areas (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    parent      TEXT NULL,
    level       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX areas_parent ON areas (parent);

CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    area             TEXT NOT NULL,
    name             TEXT NOT NULL,
    lat              DOUBLE PRECISION NULL,
    lon              DOUBLE PRECISION NULL,
    enabled          BIGINT NOT NULL DEFAULT 1,
    credential_hash  TEXT NULL,
    public_key       TEXT NULL,
    language         TEXT NULL,
    board_token_hash TEXT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX devices_area ON devices (area);

-- Written by ingest from retained state messages and telemetry.
CREATE TABLE device_status (
    device_id         TEXT PRIMARY KEY,
    online            BIGINT NOT NULL DEFAULT 0,
    session           BIGINT NOT NULL DEFAULT 0,
    state_at          BIGINT NULL,
    last_seen         BIGINT NULL,
    last_heartbeat    BIGINT NULL,
    manifest_version  BIGINT NULL,
    now_playing       TEXT NULL,
    telemetry         TEXT NULL
);

CREATE TABLE media (
    sha256       TEXT PRIMARY KEY,
    filename     TEXT NOT NULL,
    title        TEXT NOT NULL,
    size         BIGINT NOT NULL,
    container    TEXT NOT NULL,
    codec        TEXT NOT NULL,
    sample_rate  BIGINT NOT NULL,
    channels     BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    status       TEXT NOT NULL,
    status_note  TEXT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
