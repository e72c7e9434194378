-- Issue 17: relays (tiếp sóng). schedules.relay: a relay schedule's stream as JSON
-- ({"url": ..., "duration_s": N, "fallback_after_s": N}), NULL for a media schedule (whose
-- `media` is then the playlist; a relay's `media` is its fallback recording, possibly empty).
-- plays.relay_ms / relay_reconnects / relay_failed: what a device reported of a relay play
-- (milliseconds of the stream that played, reconnections, 1 when the stream failed and the
-- fallback played or nothing did), NULL for other plays; the alarm worker raises `relay_failed`
-- from a device's latest relay play. Portable SQL for SQLite and PostgreSQL.
ALTER TABLE schedules ADD COLUMN relay TEXT NULL;
ALTER TABLE plays ADD COLUMN relay_ms BIGINT NULL;
ALTER TABLE plays ADD COLUMN relay_reconnects BIGINT NULL;
ALTER TABLE plays ADD COLUMN relay_failed BIGINT NULL;
