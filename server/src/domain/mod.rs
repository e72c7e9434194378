//! Layer `domain`: the server's pure types and rules: areas and the area tree, devices and their
//! checks, presence decisions, roles and scope, the review states of media and bulletins, what a
//! desired-state change covers, the media library's rules, HTTP byte ranges, text and loudness
//! normalisation of speech, HTML escaping, the CSV cell guard, the one check of incoming text
//! (`text`). No I/O here: no sqlx, axum, rumqttc/rmqtt, files or clocks passed in implicitly.
//! It may import only the foundation (`error`, `config`, `metrics`) and pure crates
//! (`nguon-protocol`, the registry types of `nguon-provision`, `csv` over a string); every other
//! layer may import it.

pub mod alarm;
pub mod area;
pub mod area_csv;
pub mod autonomy;
pub mod bulletin;
pub mod cap;
pub mod change;
pub mod command;
pub mod device;
pub mod feedback;
pub mod html;
pub mod live;
pub mod manifest;
pub mod markdown;
pub mod media;
pub mod notify;
pub mod organisation;
pub mod ota;
pub mod policy;
pub mod presence;
pub mod range;
pub mod relay;
pub mod repetition;
pub mod report;
pub mod review;
pub mod schedule;
pub mod scope;
pub mod shortlink;
pub mod speech;
pub mod spreadsheet;
pub mod submission;
pub mod text;
pub mod throttle;
pub mod tracking;
pub mod user;
