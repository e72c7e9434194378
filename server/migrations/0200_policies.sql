-- Issue 15: policies (chính sách) and what communicated them. Portable SQL for SQLite and
-- PostgreSQL (see 0001_core.sql): TEXT, BIGINT (unix ms, booleans 0/1), JSON arrays as TEXT.
--
-- stage: consultation | issued | in_force | guidance | feedback (the current stage).
-- groups, areas: JSON arrays (affected groups; area codes, each with its subtree).
-- direct_impact: 1 when the policy affects people and businesses directly (the plan's 100 %
--   target counts these). published: 1 once an approver put it on the public site.
CREATE TABLE policies (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    doc_number    TEXT NULL,
    doc_url       TEXT NULL,
    field         TEXT NOT NULL,
    groups_json   TEXT NOT NULL,
    areas_json    TEXT NOT NULL,
    summary       TEXT NOT NULL,
    direct_impact BIGINT NOT NULL,
    stage         TEXT NOT NULL,
    published     BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- The dates of each stage (start day, optional end day, `YYYY-MM-DD`, Vietnam time).
CREATE TABLE policy_stages (
    policy_id  TEXT NOT NULL,
    stage      TEXT NOT NULL,
    starts_on  TEXT NOT NULL,
    ends_on    TEXT NULL,
    PRIMARY KEY (policy_id, stage)
);

-- Content that communicates a policy at a stage. kind: bulletin | media | command | cap;
-- ref_id: the bulletin id, the media sha256, the command id or the CAP message id.
CREATE TABLE policy_links (
    policy_id  TEXT NOT NULL,
    stage      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    ref_id     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (policy_id, stage, kind, ref_id)
);
CREATE INDEX policy_links_ref ON policy_links (kind, ref_id);
