//! The console's strings of the alarms (issue 12 §6): the list, its filters, the kinds and
//! severities, the menu's badge, and the map of the command's live page. [`super::t`] looks here
//! after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("nav.alarms", "Cảnh báo", "Alarms"),
    ("alarm.badge", "cảnh báo chưa xử lý", "open alarms"),
    ("alarm.title", "Cảnh báo hệ thống", "Alarms"),
    ("alarm.state", "Trạng thái", "State"),
    ("alarm.state.open", "Chưa xác nhận", "Open"),
    ("alarm.state.acked", "Đã xác nhận", "Acknowledged"),
    ("alarm.state.all", "Tất cả", "All"),
    ("alarm.area", "Địa bàn", "Area"),
    ("alarm.kind", "Loại", "Kind"),
    ("alarm.any", "Tất cả", "Any"),
    ("alarm.filter", "Lọc", "Filter"),
    ("alarm.severity", "Mức độ", "Severity"),
    ("alarm.subject", "Đối tượng", "Subject"),
    ("alarm.message", "Nội dung", "Message"),
    ("alarm.raised", "Thời điểm", "Raised"),
    ("alarm.status", "Xử lý", "Handling"),
    ("alarm.open", "Chưa xác nhận", "Open"),
    ("alarm.acked_by", "Đã xác nhận bởi", "Acknowledged by"),
    ("alarm.cleared", "Đã hết", "Cleared"),
    ("alarm.ack", "Xác nhận", "Acknowledge"),
    ("alarm.none", "Không có cảnh báo nào.", "No alarms."),
    ("alarm.sev.critical", "Nghiêm trọng", "Critical"),
    ("alarm.sev.warning", "Cảnh báo", "Warning"),
    ("alarm.kind.device_offline", "Mất kết nối", "Device offline"),
    (
        "alarm.kind.heartbeat_missed",
        "Mất tín hiệu định kỳ",
        "Missed heartbeats",
    ),
    (
        "alarm.kind.delivery_below_threshold",
        "Tin khẩn chưa đến đủ cụm loa",
        "Emergency under its delivery threshold",
    ),
    ("alarm.kind.playback_failed", "Lỗi phát", "Playback error"),
    ("alarm.kind.silence", "Phát nhưng không có tiếng", "Silence"),
    ("alarm.kind.low_disk", "Sắp đầy bộ nhớ", "Low disk"),
    (
        "alarm.kind.feedback_overdue",
        "Phản ánh quá hạn trả lời",
        "Feedback past its deadline",
    ),
    (
        "flash.alarm_acked",
        "Đã xác nhận cảnh báo.",
        "Alarm acknowledged.",
    ),
    (
        "trk.map",
        "Bản đồ cụm loa theo trạng thái",
        "Map of clusters by state",
    ),
    (
        "trk.map_none",
        "Chưa có cụm loa nào có tọa độ.",
        "No cluster has coordinates yet.",
    ),
];
