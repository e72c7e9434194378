-- Signed agent updates (issue 16, docs/ota.md): agent binaries by version and architecture (the
-- file lives at <data_dir>/agent-releases/<sha256>; its signature is made by the dispatcher with
-- the server key when it puts the release in a manifest), and the rollouts that ask the devices of
-- some areas (a percentage of them) to run a version. Devices report each step as an
-- `agent_update` row of device_events whose message_id is the rollout id.
CREATE TABLE agent_releases (
    version     TEXT NOT NULL,
    arch        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    notes       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (version, arch)
);
CREATE INDEX agent_releases_sha256 ON agent_releases (sha256);

CREATE TABLE rollouts (
    id               TEXT PRIMARY KEY,
    version          TEXT NOT NULL,
    areas            TEXT NOT NULL,
    percent          BIGINT NOT NULL,
    confirm_minutes  BIGINT NOT NULL,
    state            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);
