-- Part A: a per-device default volume (0-100) set through PATCH /api/v1/devices/{id}; NULL keeps
-- the device's configured value. The dispatcher may push it as DeviceSettings.volume.
ALTER TABLE devices ADD COLUMN volume BIGINT NULL;
