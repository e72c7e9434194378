-- Issue 18: loudness of uploads. One row per uploaded media item (media.sha256): the original's
-- integrated loudness and true peak as measured (EBU R128), and the normalised rendition stored
-- beside it (its own content address under data_dir/media/, never a row of `media`) that devices
-- fetch instead of the original. rendition_sha256 is NULL when no rendition was made (silence,
-- already at the target, too long to normalise); note says why. The original file is never
-- altered. Figures in hundredths of a dB (LUFS, dBTP); NULL loudness: silent (under the gate).
CREATE TABLE media_loudness (
    sha256 TEXT PRIMARY KEY,
    loudness_clufs BIGINT NULL,
    true_peak_cdbtp BIGINT NULL,
    rendition_sha256 TEXT NULL,
    rendition_size BIGINT NULL,
    rendition_duration_ms BIGINT NULL,
    rendition_loudness_clufs BIGINT NULL,
    rendition_true_peak_cdbtp BIGINT NULL,
    gain_cdb BIGINT NULL,
    target_clufs BIGINT NOT NULL,
    note TEXT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX media_loudness_rendition ON media_loudness (rendition_sha256);
