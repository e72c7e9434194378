//! The console's strings of the live broadcast page (issue 17, `/console/live`).
//! [`super::t`] looks here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("nav.live", "Phát trực tiếp", "Live"),
    ("live.title", "Phát trực tiếp", "Live broadcast"),
    ("live.active", "Đang phát trực tiếp:", "Live now:"),
    ("live.targets", "Nơi phát", "Where"),
    ("live.areas", "Địa bàn", "Areas"),
    ("live.devices", "Cụm loa", "Loudspeakers"),
    ("live.offline", "mất kết nối", "offline"),
    ("live.priority", "Mức ưu tiên", "Priority"),
    ("live.priority_normal", "Ưu tiên", "Priority"),
    ("live.priority_emergency", "Khẩn cấp", "Emergency"),
    ("live.subject", "Nội dung", "Subject"),
    ("live.talk", "Bấm để nói", "Press to talk"),
    ("live.stop", "Dừng phát", "Stop"),
    ("live.level", "Mức âm micro", "Microphone level"),
    ("live.playing", "Loa đang phát", "Loudspeakers playing"),
    ("live.device", "Cụm loa", "Loudspeaker"),
    ("live.state", "Trạng thái", "State"),
    (
        "live.busy",
        "Không thể phát: có người đang phát trực tiếp trên các loa này.",
        "Cannot go live: someone is live on these loudspeakers.",
    ),
    (
        "live.no_mic",
        "Không dùng được micro (cần cho phép truy cập micro, và HTTPS).",
        "The microphone cannot be used (allow access, and use HTTPS).",
    ),
    ("live.ended", "Đã dừng phát.", "The broadcast has ended."),
    ("live.connecting", "Đang kết nối…", "Connecting…"),
    (
        "live.on_air",
        "Đang phát trực tiếp — hãy nói.",
        "On air — speak now.",
    ),
    (
        "live.no_targets",
        "Hãy chọn ít nhất một địa bàn hoặc cụm loa.",
        "Choose at least one area or loudspeaker.",
    ),
];
