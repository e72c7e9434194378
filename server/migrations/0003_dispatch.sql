-- Part B: schedules, the dispatch outbox, published manifests, proof of play, device events and
-- commands. Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).

CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    media         TEXT NOT NULL,      -- JSON array of sha256, in play order
    priority      TEXT NOT NULL,      -- normal | priority | emergency
    rule          TEXT NOT NULL,      -- JSON {"kind":"once","at":...} | {"kind":"cron","cron":...}
    time_zone     TEXT NOT NULL,
    valid_from    BIGINT NULL,
    valid_until   BIGINT NULL,
    volume        BIGINT NOT NULL,
    repeat_count  BIGINT NOT NULL,
    on_preempt    TEXT NOT NULL,
    enabled       BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- kind: 'area' (the area and its descendants) or 'device'.
CREATE TABLE schedule_targets (
    schedule_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    target       TEXT NOT NULL,
    PRIMARY KEY (schedule_id, kind, target)
);
CREATE INDEX schedule_targets_target ON schedule_targets (kind, target);

-- Written in the same transaction as a change to desired state; deleted once the dispatcher has
-- recorded the resulting manifests.
CREATE TABLE dispatch_outbox (
    id          TEXT PRIMARY KEY,
    change      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The latest manifest of each device: `body` is the signed envelope exactly as published.
CREATE TABLE manifests (
    device_id     TEXT PRIMARY KEY,
    version       BIGINT NOT NULL,
    content_hash  TEXT NOT NULL,
    body          TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    published_at  BIGINT NOT NULL
);

CREATE TABLE plays (
    event_id       TEXT PRIMARY KEY,
    device_id      TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    schedule_id    TEXT NOT NULL,
    occurrence_at  BIGINT NOT NULL,
    sha256         TEXT NOT NULL,
    priority       TEXT NOT NULL,
    started_at     BIGINT NULL,
    ended_at       BIGINT NULL,
    outcome        TEXT NOT NULL,
    reason         TEXT NULL,
    received_at    BIGINT NOT NULL
);
CREATE INDEX plays_device ON plays (device_id, occurrence_at);
CREATE INDEX plays_schedule ON plays (schedule_id, occurrence_at);
CREATE INDEX plays_occurrence ON plays (occurrence_at);

-- Acks, rejected server messages, media errors. message_id is set for acks and rejections.
CREATE TABLE device_events (
    event_id     TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    message_id   TEXT NULL,
    body         TEXT NOT NULL,
    at           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX device_events_device ON device_events (device_id, at);
CREATE INDEX device_events_message ON device_events (message_id);

CREATE TABLE commands (
    id           TEXT PRIMARY KEY,
    target_kind  TEXT NOT NULL,      -- device | area
    target       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    action       TEXT NOT NULL,
    body         TEXT NOT NULL,      -- the command JSON
    seq          BIGINT NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX commands_target ON commands (target_kind, target, issued_at);
