-- Issue 16: devices play at most two channels. An upload of more (5.1, 7.1) gets a rendition that
-- is its stereo mix (ITU-R BS.775), loudness-normalised; downmixed_from is the original's channel
-- count then, NULL when the rendition has the original's channels (and for rows from before).
ALTER TABLE media_loudness ADD COLUMN downmixed_from BIGINT NULL;
