-- Issue 12 §3: a scheduled emergency repeats like an emergency play-now. repetition: the resolved
-- pattern as JSON ({"offsets_s": [0, ...], "every_s": N}), NULL for a schedule that plays once;
-- valid_for_s: each occurrence's validity window in seconds (catch-up and the time it repeats
-- for), NULL for the late window of its priority. Portable SQL for SQLite and PostgreSQL.
ALTER TABLE schedules ADD COLUMN repetition TEXT NULL;
ALTER TABLE schedules ADD COLUMN valid_for_s BIGINT NULL;
