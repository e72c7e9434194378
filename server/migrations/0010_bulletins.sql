-- Bulletins (bản tin) for electronic bulletin boards and loudspeakers, Vietnamese text-to-speech,
-- and proof of display. Portable SQL for SQLite and PostgreSQL: TEXT, BIGINT (unix ms, booleans 0/1).

-- Operators' abbreviations for text-to-speech; they extend and override the built-in table.
CREATE TABLE tts_lexicon (
    term        TEXT PRIMARY KEY,
    expansion   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Which bulletin language variants an area receives (none listed: `vi`). Inherited by
-- descendants that list none themselves.
CREATE TABLE area_languages (
    area        TEXT NOT NULL,
    language    TEXT NOT NULL,
    position    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (area, language)
);

CREATE TABLE bulletins (
    id           TEXT PRIMARY KEY,
    category     TEXT NOT NULL,
    priority     TEXT NOT NULL,
    status       TEXT NOT NULL,
    status_note  TEXT NULL,
    valid_from   BIGINT NULL,
    valid_until  BIGINT NULL,
    areas        TEXT NOT NULL,
    dwell_s      BIGINT NULL,
    published_at BIGINT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX bulletins_status ON bulletins (status);

CREATE TABLE bulletin_variants (
    bulletin_id  TEXT NOT NULL,
    language     TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    audio_sha256 TEXT NULL,
    PRIMARY KEY (bulletin_id, language)
);

-- Uploaded images, video and attachments, stored once by content hash under data_dir/files.
CREATE TABLE files (
    sha256      TEXT PRIMARY KEY,
    mime        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    width       BIGINT NULL,
    height      BIGINT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE bulletin_files (
    bulletin_id TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    filename    TEXT NOT NULL,
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (bulletin_id, sha256)
);

-- Where a published bulletin is visible on boards (the area and its descendants).
CREATE TABLE bulletin_targets (
    bulletin_id TEXT NOT NULL,
    area        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (bulletin_id, area)
);
CREATE INDEX bulletin_targets_area ON bulletin_targets (area);

-- Speech produced for a published bulletin: one row per area and language.
CREATE TABLE bulletin_speech (
    bulletin_id  TEXT NOT NULL,
    area         TEXT NOT NULL,
    language     TEXT NOT NULL,
    media_sha256 TEXT NOT NULL,
    source       TEXT NOT NULL,
    schedule_id  TEXT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (bulletin_id, area, language)
);

-- Proof of display reported by boards, idempotent by the board's uuid.
CREATE TABLE displays (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    bulletin_id TEXT NOT NULL,
    shown_from  BIGINT NOT NULL,
    shown_to    BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX displays_bulletin ON displays (bulletin_id);
CREATE INDEX displays_device ON displays (device_id, shown_from);
