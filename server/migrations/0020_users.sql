-- Issue 7: console users, roles and scopes, sessions, API tokens, login attempts, audit log.
-- Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).

-- role: admin | editor | approver | operator | viewer. areas: JSON array of area codes the user
-- is scoped to (each with its subtree); [] = the whole system (no restriction).
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL,
    areas          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    enabled        BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Cookie sessions: only the sha256 of the random session id is stored.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Per-user API tokens (bearer), stored as sha256.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT NULL,
    revoked       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE login_attempts (
    id        TEXT PRIMARY KEY,
    username  TEXT NOT NULL,
    ip        TEXT NOT NULL,
    ok        BIGINT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (username, ip, at);

-- Every change made through the console or the API: who, what, when, before and after (JSON).
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    before_json TEXT NULL,
    after_json  TEXT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
