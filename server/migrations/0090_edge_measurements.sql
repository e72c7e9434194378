-- Issue 12 §6 (agent side of the silence and low-disk alarms): what agents measure.
--
-- plays.max_rms_dbfs: the RMS of the loudest 1-second window of what the device handed to its
-- audio output, whole dBFS (NULL: not measured: nothing played, or the null sink).
-- plays.silent = 1: the item played to its end yet stayed below the device's silence threshold
-- (audio.silence_dbfs, default -50) for its whole length.
-- device_status.disk_free_bytes / disk_total_bytes: the file system of the agent's data
-- directory, from the last heartbeat (total is NULL for agents that do not report it).
ALTER TABLE plays ADD COLUMN max_rms_dbfs BIGINT NULL;
ALTER TABLE plays ADD COLUMN silent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE device_status ADD COLUMN disk_free_bytes BIGINT NULL;
ALTER TABLE device_status ADD COLUMN disk_total_bytes BIGINT NULL;
CREATE INDEX plays_silent ON plays (received_at) WHERE silent = 1;
