-- Issue 12 §6: notifications of alarms. Portable SQL for SQLite and PostgreSQL.
--
-- alarm_subscriptions: who is told of which alarms. area: alarms of this area and its
-- descendants. role: the role the recipient acts in (admin | operator | approver | editor |
-- viewer); it chooses the kinds sent unless `kinds` names them (JSON array, [] = the role's).
-- channel: webhook (target = http(s) URL, secret = the HMAC-SHA256 key of X-Nguon-Signature)
-- or email (target = address; secret NULL).
CREATE TABLE alarm_subscriptions (
    id         TEXT PRIMARY KEY,
    area       TEXT NOT NULL,
    role       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    target     TEXT NOT NULL,
    secret     TEXT NULL,
    kinds      TEXT NOT NULL,
    enabled    BIGINT NOT NULL DEFAULT 1,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alarm_subscriptions_area ON alarm_subscriptions (area);

-- One notification per (alarm, subscription), written in the transaction that raised the alarm
-- (an outbox: the notifier sends it after the commit and retries with a backoff).
-- state: pending | sent | failed (given up after alarms.webhook_attempts). next_at: unix ms of
-- the next attempt.
CREATE TABLE alarm_notifications (
    id              TEXT PRIMARY KEY,
    alarm_id        TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    target          TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_at         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT NULL,
    UNIQUE (alarm_id, subscription_id)
);
CREATE INDEX alarm_notifications_due ON alarm_notifications (next_at) WHERE state = 'pending';

-- Every attempt: its number, when, whether it was delivered, the HTTP status or SMTP error.
CREATE TABLE alarm_notification_attempts (
    notification_id TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    ok              BIGINT NOT NULL,
    status          BIGINT NULL,
    error           TEXT NULL,
    PRIMARY KEY (notification_id, attempt)
);
