-- Issue 13: a user may hold several roles (a commune clerk is editor and operator). `role` stays
-- the first (admin when the user is an admin); extra_roles is a JSON array of the others.
ALTER TABLE users ADD COLUMN extra_roles TEXT NOT NULL DEFAULT '[]';
