-- Issue 12 §4: CAP 1.2 alerts.
--
-- cap_messages: every CAP message received (POST /api/v1/alerts/cap or a polled feed) or
-- written by nguon (an emergency typed in the console gets one so it can be served as CAP).
-- (sender, identifier) is unique: a repeat is a 409. alert_id is the nguon alert a message
-- belongs to: an Alert message starts one (alert_id = id); an Update or Cancel joins the alert it
-- references. state: pending_approval (an untrusted sender's message waiting for an approver),
-- issued (sent to loudspeakers), not_played (status Test/System/Draft, an Exercise where no
-- area takes exercises, or no target), rejected, cancelled (an Alert a Cancel stopped),
-- replaced (an Alert or Update an Update replaced). command_id: the play-now (or stop) command
-- it issued, tracked like any command. xml: the document as received. acked_at: when the Ack
-- to this message was written (delivery reached the threshold).
CREATE TABLE cap_messages (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    identifier TEXT NOT NULL,
    sender TEXT NOT NULL,
    sent TEXT NOT NULL,
    status TEXT NOT NULL,
    msg_type TEXT NOT NULL,
    headline TEXT NOT NULL,
    state TEXT NOT NULL,
    command_id TEXT NULL,
    target_devices BIGINT NOT NULL,
    target_areas TEXT NOT NULL,
    xml TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    received_by TEXT NOT NULL,
    decided_by TEXT NULL,
    decided_at BIGINT NULL,
    acked_at BIGINT NULL,
    UNIQUE (sender, identifier)
);
CREATE INDEX cap_messages_alert ON cap_messages (alert_id);
CREATE INDEX cap_messages_command ON cap_messages (command_id);

-- area_cap: what CAP targets in an area without a polygon or circle: its geocodes, stored as
-- `valueName=value` lines (e.g. `ISO3166-2=VN-02`), and whether Exercise alerts may play there.
CREATE TABLE area_cap (
    area TEXT PRIMARY KEY,
    geocodes TEXT NOT NULL,
    exercise BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
