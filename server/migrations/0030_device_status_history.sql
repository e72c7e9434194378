-- Issue 7: device status history, one row per online interval (one MQTT connection session),
-- written by ingest from the retained state messages (server/src/fleet/history.rs).
-- Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).
--
-- online_from: server time (unix ms) when the server learned the device was online in `session`.
-- online_to:   server time when it learned the session ended; NULL while the device is online.
-- ended_by:    offline (the device said so) | will (its MQTT last will) | reconnect (a newer
--              session came online first) | server_restart (the end was learned from a retained
--              message or the reconciliation after a server start: online_to is then an estimate,
--              see docs/console.md); NULL while open.
-- state_at:    the device's own `at` of the online message (tells a last will, written before
--              the session's online message, from a later clean offline).
CREATE TABLE device_status_history (
    device_id    TEXT NOT NULL,
    session      BIGINT NOT NULL,
    online_from  BIGINT NOT NULL,
    online_to    BIGINT NULL,
    ended_by     TEXT NULL,
    state_at     BIGINT NULL,
    PRIMARY KEY (device_id, session)
);
-- Period queries: intervals that end after the period start (or are open) ...
CREATE INDEX device_status_history_to ON device_status_history (online_to);
-- ... and one device's intervals in time order.
CREATE INDEX device_status_history_from ON device_status_history (device_id, online_from);
