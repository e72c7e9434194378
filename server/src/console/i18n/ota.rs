//! The console's strings of the agent updates (issue 16, docs/ota.md): the releases and
//! rollouts page, a rollout's page, the steps a device reports. [`super::t`] looks here after
//! the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("nav.rollouts", "Cập nhật phần mềm", "Agent updates"),
    ("ota.title", "Cập nhật phần mềm thiết bị", "Agent updates"),
    (
        "ota.hint",
        "Bản phát hành được máy chủ ký; thiết bị tự kiểm tra chữ ký, cài song song bản cũ và tự quay lại bản cũ nếu bản mới không xác nhận kịp.",
        "Releases are signed by the server; devices check the signature, install beside the running version and go back to it if the new one does not confirm itself in time.",
    ),
    ("ota.rollouts", "Đợt cập nhật", "Rollouts"),
    ("ota.rollout", "Đợt cập nhật", "Rollout"),
    ("ota.releases", "Bản phát hành", "Releases"),
    ("ota.none", "Chưa có đợt cập nhật nào.", "No rollouts yet."),
    (
        "ota.no_releases",
        "Chưa có bản phát hành nào.",
        "No releases yet.",
    ),
    ("ota.version", "Phiên bản", "Version"),
    ("ota.arch", "Kiến trúc", "Architecture"),
    ("ota.size", "Dung lượng (byte)", "Size (bytes)"),
    ("ota.areas", "Địa bàn", "Areas"),
    ("ota.percent", "Tỷ lệ thiết bị", "Share of devices"),
    ("ota.state", "Trạng thái", "State"),
    ("ota.progress", "Tiến độ", "Progress"),
    ("ota.created", "Tạo lúc", "Created"),
    ("ota.confirm", "Thời hạn xác nhận", "Confirmation window"),
    ("ota.minutes", "phút", "minutes"),
    ("ota.device", "Thiết bị", "Device"),
    ("ota.step", "Bước", "Step"),
    ("ota.reason", "Lý do", "Reason"),
    ("ota.at", "Thời điểm", "At"),
    ("ota.running", "Phiên bản đang chạy", "Running version"),
    ("ota.rollout.active", "Đang triển khai", "Active"),
    ("ota.rollout.paused", "Tạm dừng", "Paused"),
    ("ota.rollout.cancelled", "Đã hủy", "Cancelled"),
    ("ota.step.pending", "Chờ", "Pending"),
    ("ota.step.downloading", "Đang tải", "Downloading"),
    ("ota.step.verified", "Đã kiểm tra chữ ký", "Verified"),
    (
        "ota.step.installed",
        "Đã cài, đang khởi động lại",
        "Installed, restarting",
    ),
    ("ota.step.confirmed", "Hoàn tất", "Confirmed"),
    ("ota.step.rolled_back", "Đã quay lại bản cũ", "Rolled back"),
    ("ota.step.failed", "Thất bại", "Failed"),
    ("ota.step.unknown", "Không rõ", "Unknown"),
];
