-- Issue 14: the broker each device last reported in its telemetry (`broker`, the URL of the
-- cluster node its agent is connected to), shown in the API device record and on the console's
-- device page. Portable SQL for SQLite and PostgreSQL. NULL until a heartbeat names one.
ALTER TABLE device_status ADD COLUMN broker TEXT;
