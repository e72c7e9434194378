-- Step D1 of issue 10: commands go through an outbox. A command is written unpublished
-- (published_at NULL, seq 0) in the transaction of its audit entry; the command sender numbers
-- it (seq, kept for every retry), signs and publishes it, then sets published_at. One that cannot
-- be sent (still unpublished when it expires, or unreadable) gets failed_at and is never sent.
-- Rows written before this migration were published when issued.
ALTER TABLE commands ADD COLUMN published_at BIGINT NULL;
ALTER TABLE commands ADD COLUMN failed_at BIGINT NULL;
UPDATE commands SET published_at = issued_at;
CREATE INDEX commands_unpublished ON commands (issued_at) WHERE published_at IS NULL AND failed_at IS NULL;
