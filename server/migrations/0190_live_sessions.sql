-- Issue 17: live broadcasts. One row per session an operator opened (services::live): who, what
-- priority, the targets asked for (JSON arrays of area codes and device ids) and how many
-- loudspeakers they covered, when the microphone started and when and why it ended, and the
-- recording stored as media (media_sha256; NULL while live, or when nothing was said). The
-- devices' proofs of play carry item_id = id.
CREATE TABLE live_sessions (
    id TEXT PRIMARY KEY,
    started_by TEXT NOT NULL,
    title TEXT NOT NULL,
    priority TEXT NOT NULL,
    areas TEXT NOT NULL,
    devices TEXT NOT NULL,
    targets BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    started_at BIGINT NULL,
    ended_at BIGINT NULL,
    end_reason TEXT NULL,
    stream_bytes BIGINT NOT NULL DEFAULT 0,
    media_sha256 TEXT NULL
);
CREATE INDEX live_sessions_opened ON live_sessions (opened_at);
