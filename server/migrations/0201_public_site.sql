-- Issue 15: the public site's short links and its hit counters. Portable SQL (see 0001_core.sql).
--
-- Short links of bulletins (`/b/{code}`, shown as a QR code on boards): one per bulletin.
CREATE TABLE short_links (
    code        TEXT PRIMARY KEY,
    bulletin_id TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Public hits without cookies or addresses: one counter per page or feed (its route, e.g.
-- `page:/chinh-sach`, `feed:area/08`) and day (`YYYY-MM-DD`, Vietnam time).
CREATE TABLE public_hits (
    day   TEXT NOT NULL,
    path  TEXT NOT NULL,
    hits  BIGINT NOT NULL,
    PRIMARY KEY (day, path)
);
