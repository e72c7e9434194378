-- Issue 12 §4, CAP languages: every play-now a CAP message issued, one per group of its targets
-- that hears the same <info>s (their areas' languages, area_languages), besides
-- cap_messages.command_id, which names the first (largest) of them. infos: the indices of the
-- infos that group hears, comma-separated. Portable SQL for SQLite and PostgreSQL.
CREATE TABLE cap_message_commands (
    message_id TEXT NOT NULL,
    command_id TEXT NOT NULL,
    infos      TEXT NOT NULL
);
CREATE INDEX cap_message_commands_message ON cap_message_commands (message_id);
