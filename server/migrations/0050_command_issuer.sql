-- Issue 11 item 7: who issued a command. The username of the caller (or `admin-token`), written
-- with the command in the transaction of its audit entry. Rows written before this migration
-- have no issuer recorded (their audit entry names it).
ALTER TABLE commands ADD COLUMN issued_by TEXT NULL;
