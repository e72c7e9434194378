-- Issue 16: a device's installs (store/installs.rs). An agent keeps an install id in its data
-- directory; a reinstall with the same credentials but a fresh data directory starts its session
-- counter again at 1 under a new id. The server counts a device's sessions across installs: an
-- install's counter is shifted by session_offset, the highest session the device had reached
-- when that install was first seen (0 for the first install, or for an agent upgraded in place
-- whose counter continues). Portable SQL for SQLite and PostgreSQL (see 0001_core.sql).
CREATE TABLE device_installs (
    device_id      TEXT NOT NULL,
    install_id     TEXT NOT NULL,
    session_offset BIGINT NOT NULL,
    first_seen     BIGINT NOT NULL,
    PRIMARY KEY (device_id, install_id)
);
