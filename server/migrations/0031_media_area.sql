-- Issue 7: media scope. The area that owns a media file: NULL = province-wide (visible to every
-- user); otherwise only users whose scope contains the area see and schedule it. Devices still
-- fetch files by hash at /media/{sha256} without a user.
ALTER TABLE media ADD COLUMN area TEXT NULL;
CREATE INDEX media_area ON media (area);
