-- Issue 12 §1–2: emergencies and priority messages are desired state with a validity window,
-- and every command resolves its target devices when it is issued.
--
-- commands.catch_up = 1: a play-now with a validity window (until expires_at); while it lasts it
-- is part of each target device's manifest, so a device that was offline still plays it.
-- command_targets: one row per device the command covered when it was issued (an area command:
-- every enabled device of the area and its descendants), with whether the device was online
-- then and, once a later stop cancelled it for that device, when (cancelled_at). The delivery
-- state of each target is derived from what the devices reported (acks, proofs of play,
-- now_playing) when it is read; see docs/api.md, "Delivery tracking".
ALTER TABLE commands ADD COLUMN catch_up BIGINT NOT NULL DEFAULT 0;
CREATE TABLE command_targets (
    command_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    area TEXT NOT NULL,
    online BIGINT NOT NULL,
    cancelled_at BIGINT NULL,
    PRIMARY KEY (command_id, device_id)
);
CREATE INDEX command_targets_device ON command_targets (device_id);
CREATE INDEX commands_catch_up ON commands (expires_at) WHERE catch_up = 1;
CREATE INDEX plays_item ON plays (item_id);
