//! The server's black-box tests, in one test binary: one link instead of one per file keeps the
//! build small and fast. Each file under `tests/` is a module named after the domain it tests;
//! the shared helpers live in `common`, `dispatch_support`, `console_support` and `webdriver`.

mod common;
mod console_support;
mod dispatch_support;
mod webdriver;

mod alarms;
mod api;
mod areas;
mod board_browser;
mod broker_gate;
mod broker_idle;
mod broker_mosquitto;
mod bulletin;
mod catch_up;
mod command_outbox;
mod commands;
mod console_admin;
mod console_availability;
mod console_browser;
mod console_bulletins;
mod console_reports;
mod console_reports_pinned;
mod console_scope;
mod console_security;
mod console_tasks;
mod constraints;
mod dispatch;
mod fleet;
mod hardening_audit;
mod hardening_http;
mod hardening_input;
mod hardening_scope;
mod hardening_secrets;
mod hardening_throttle;
mod hardening_tls;
mod ingest;
mod layers;
mod media;
mod outbox;
mod presence;
mod report_browser;
mod schedule;
mod speech;
mod speech_engines;
mod text;
