-- Issue 11 item 12: the bootstrap admin token is generated once and kept only as its sha256
-- (name `admin_token_sha256`), so a restart neither prints nor accepts a new token.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
