//! Labels of relays (tiếp sóng, issue 17): the schedule form's relay fields, the refusals of a
//! relay URL and the `relay_failed` alarm. [`super::t`] looks here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "relay.legend",
        "Tiếp sóng (phát lại luồng phát thanh)",
        "Relay (an external radio stream)",
    ),
    ("relay.url", "Địa chỉ luồng (URL)", "Stream URL"),
    (
        "relay.minutes",
        "Thời lượng tiếp sóng (phút)",
        "Relay length (minutes)",
    ),
    (
        "relay.hint",
        "Để trống nếu không tiếp sóng. Khi luồng không có tín hiệu, cụm loa phát bản ghi đã chọn ở trên thay thế và hệ thống báo cảnh báo.",
        "Leave empty for a clip. When the stream gives no audio, loudspeakers play the clip chosen above instead and an alarm is raised.",
    ),
    ("relay.kind", "Tiếp sóng", "Relay"),
    (
        "alarm.kind.relay_failed",
        "Tiếp sóng lỗi (đã phát bản ghi dự phòng)",
        "Relay failed (fallback played)",
    ),
    (
        "err.relay_not_audio",
        "Địa chỉ tiếp sóng không phải luồng âm thanh mà cụm loa phát được.",
        "The relay URL is not an audio stream loudspeakers can play.",
    ),
    (
        "err.invalid_relay",
        "Thông tin tiếp sóng không hợp lệ (địa chỉ http/https, thời lượng 1 phút đến 24 giờ).",
        "Invalid relay (an http/https URL, 1 minute to 24 hours).",
    ),
    (
        "relay.unreachable",
        "Đã lưu, nhưng hiện chưa kết nối được luồng; nếu đến giờ phát vẫn lỗi, cụm loa phát bản ghi dự phòng và hệ thống báo cảnh báo",
        "Saved, but the stream cannot be reached now; if it still fails at play time, loudspeakers play the fallback and an alarm is raised",
    ),
];
