-- Issue 18: speech renditions (the cache of synthesised speech and the record of which engine
-- made each one) and the voice of an area.
--
-- tts_renditions: one row per synthesis. cache_key = sha256 of the normalised text, the voice,
-- its speed and pitch, and the engine's name and version; a later request with the same key
-- reuses sha256 (a media item) without synthesising again. When a cloud engine failed and
-- espeak-ng stood in, fallback_from names the engine that failed and the row is stored under
-- 'fallback:' || cache_key, so the next request tries the cloud again. Loudness figures are in
-- hundredths of a dB (LUFS, dBTP).
CREATE TABLE tts_renditions (
    cache_key TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    engine TEXT NOT NULL,
    voice TEXT NOT NULL,
    fallback_from TEXT NULL,
    gain_cdb BIGINT NOT NULL,
    loudness_clufs BIGINT NOT NULL,
    true_peak_cdbtp BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX tts_renditions_sha256 ON tts_renditions (sha256);

-- area_voices: the voice (and its speed and pitch) the speech of an area is read with; an area
-- without a row takes its nearest ancestor's, the province the configured default voice.
CREATE TABLE area_voices (
    area TEXT PRIMARY KEY,
    voice TEXT NOT NULL,
    speed BIGINT NOT NULL,
    pitch BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
