//! What the report API answers: proofs of play (`GET /api/v1/plays`), other device events
//! (`GET /api/v1/events`) and a command with its acks (`GET /api/v1/commands/{id}`), and the page
//! size rule of those lists.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Rows a list answers: 100 unless asked, between 1 and 1000.
pub fn page_limit(asked: Option<u32>) -> i64 {
    asked.unwrap_or(100).clamp(1, 1000) as i64
}

/// One proof of play.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlayRecord {
    /// Event uuid.
    pub event_id: String,
    /// Device.
    pub device_id: String,
    /// Occurrence (manifest item) id, or command id.
    pub item_id: String,
    /// Schedule (empty for play-now).
    pub schedule_id: String,
    /// Scheduled instant.
    pub occurrence_at: DateTime<Utc>,
    /// First media file.
    pub sha256: String,
    /// Priority.
    pub priority: String,
    /// Started.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// played | interrupted | resumed | skipped_quiet_hours | missed | failed.
    pub outcome: String,
    /// Why.
    pub reason: Option<String>,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
    /// RMS of the loudest 1-second window the device output, whole dBFS (null: not measured).
    pub max_rms_dbfs: Option<i64>,
    /// Played to its end below the device's silence threshold for its whole length.
    pub silent: bool,
    /// A relay's play (issue 17): milliseconds of the stream that played, reconnections, and
    /// whether the stream failed (null for other plays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayPlay>,
}

/// What a device reported of a relay's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelayPlay {
    /// Milliseconds of the stream's audio that went out.
    pub stream_ms: i64,
    /// Reconnections after the stream broke off.
    pub reconnects: i64,
    /// The stream failed: the fallback played (or nothing).
    pub failed: bool,
}

/// One device event other than proof of play.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventRecord {
    /// Event uuid.
    pub event_id: String,
    /// Device.
    pub device_id: String,
    /// ack | rejected | media_error.
    pub kind: String,
    /// Envelope id it refers to (acks, rejections).
    pub message_id: Option<String>,
    /// The event body as sent.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// When it happened (device clock).
    pub at: DateTime<Utc>,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
}

/// A command and the acks received for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandReport {
    /// Command id.
    pub id: String,
    /// device | area.
    pub target_kind: String,
    /// Device id or area code.
    pub target: String,
    /// Topic.
    pub topic: String,
    /// play_now | stop | volume | sync.
    pub action: String,
    /// The command as sent.
    #[schema(value_type = Object)]
    pub command: serde_json::Value,
    /// Issued.
    pub issued_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Username of the caller who issued it (`admin-token` for the bootstrap token); null for
    /// commands recorded before the issuer was stored.
    pub issued_by: Option<String>,
    /// Acks, one per device event.
    pub acks: Vec<EventRecord>,
    /// Delivery tracking: counts per state and each target's state with the time of every
    /// change (`domain::tracking`).
    pub tracking: crate::domain::tracking::Tracking,
    /// A repeating emergency: each replay due so far (`{id}#k`), tracked like the first play
    /// (`domain::repetition::track`). Absent for a message that plays once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repetitions: Vec<crate::domain::repetition::RepetitionReport>,
}

#[cfg(test)]
mod tests {
    use super::page_limit;

    #[test]
    fn lists_answer_a_hundred_rows_unless_asked_and_never_more_than_a_thousand() {
        assert_eq!(page_limit(None), 100);
        assert_eq!(page_limit(Some(0)), 1);
        assert_eq!(page_limit(Some(7)), 7);
        assert_eq!(page_limit(Some(5000)), 1000);
    }
}
