//! The console's one string catalogue: key → (Vietnamese, English). Templates call `t("key")`;
//! Vietnamese is the default, English is chosen with the `lang` cookie. Also the Vietnamese
//! formats of dates (dd/mm/yyyy, 24 h, Asia/Ho_Chi_Minh) and numbers ("." for thousands).

use chrono::TimeZone;

/// The console's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Tiếng Việt (default).
    Vi,
    /// English.
    En,
}

impl Lang {
    /// From a cookie value; anything but `en` is Vietnamese.
    pub fn parse(s: Option<&str>) -> Lang {
        match s {
            Some("en") => Lang::En,
            _ => Lang::Vi,
        }
    }
    /// The code (`vi`, `en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "app.name",
        "Hệ thống thông tin nguồn",
        "Source information system",
    ),
    ("nav.dashboard", "Tổng quan", "Dashboard"),
    ("nav.media", "Bản tin", "Media"),
    ("nav.approvals", "Phê duyệt", "Approvals"),
    ("nav.schedules", "Lịch phát", "Schedules"),
    ("nav.calendar", "Lịch theo ngày/tuần", "Calendar"),
    ("nav.devices", "Thiết bị", "Devices"),
    ("nav.areas", "Địa bàn", "Areas"),
    ("nav.users", "Người dùng", "Users"),
    ("nav.audit", "Nhật ký thao tác", "Audit log"),
    ("nav.reports", "Báo cáo", "Reports"),
    ("nav.logout", "Đăng xuất", "Log out"),
    ("nav.language", "English", "Tiếng Việt"),
    ("login.title", "Đăng nhập", "Log in"),
    ("login.username", "Tên đăng nhập", "Username"),
    ("login.password", "Mật khẩu", "Password"),
    ("login.submit", "Đăng nhập", "Log in"),
    (
        "login.bad",
        "Sai tên đăng nhập hoặc mật khẩu.",
        "Wrong username or password.",
    ),
    (
        "login.locked",
        "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 15 phút.",
        "Too many failed logins. Try again in 15 minutes.",
    ),
    ("role.admin", "Quản trị", "Administrator"),
    ("role.editor", "Biên tập", "Editor"),
    ("role.approver", "Lãnh đạo phê duyệt", "Approver"),
    ("role.operator", "Vận hành", "Operator"),
    ("role.viewer", "Xem", "Viewer"),
    ("dash.title", "Tổng quan hệ thống", "Overview"),
    ("dash.online", "Trực tuyến", "Online"),
    ("dash.offline", "Mất kết nối", "Offline"),
    ("dash.by_area", "Thiết bị theo xã", "Devices by commune"),
    ("dash.now_playing", "Đang phát", "Now playing"),
    (
        "dash.recent_plays",
        "Phát gần đây (xác nhận phát)",
        "Recent proof of play",
    ),
    (
        "dash.emergencies",
        "Bản tin khẩn cấp gần đây",
        "Recent emergencies",
    ),
    ("dash.failures", "Lỗi phát gần đây", "Recent failures"),
    ("dash.nothing", "Không có dữ liệu.", "Nothing yet."),
    ("area", "Địa bàn", "Area"),
    ("area.code", "Mã", "Code"),
    ("area.name", "Tên", "Name"),
    ("area.level", "Cấp", "Level"),
    ("level.province", "Tỉnh", "Province"),
    ("level.commune", "Xã", "Commune"),
    ("level.village", "Thôn/bản", "Village"),
    ("device", "Thiết bị", "Device"),
    ("device.kind", "Loại", "Kind"),
    ("kind.loudspeaker", "Cụm loa", "Loudspeaker cluster"),
    ("kind.board", "Bảng tin điện tử", "Electronic bulletin board"),
    ("device.status", "Trạng thái", "Status"),
    ("device.last_seen", "Lần cuối liên lạc", "Last seen"),
    ("device.volume", "Âm lượng", "Volume"),
    ("device.stop", "Dừng phát", "Stop"),
    ("device.sync", "Đồng bộ ngay", "Sync now"),
    ("device.set_volume", "Đặt âm lượng", "Set volume"),
    ("device.sent", "Đã gửi lệnh", "Command sent"),
    ("media.title", "Tiêu đề", "Title"),
    ("media.file", "Tệp âm thanh", "Audio file"),
    ("media.upload", "Tải lên", "Upload"),
    ("media.uploading", "Đang tải lên…", "Uploading…"),
    ("media.duration", "Thời lượng", "Duration"),
    ("media.size", "Dung lượng", "Size"),
    ("media.format", "Định dạng", "Format"),
    ("media.status", "Trạng thái", "Status"),
    ("media.created", "Ngày tạo", "Created"),
    ("media.submit", "Gửi phê duyệt", "Submit for approval"),
    ("media.approve", "Phê duyệt", "Approve"),
    ("media.reject", "Từ chối", "Reject"),
    ("media.note", "Ghi chú", "Note"),
    ("media.preview", "Nghe thử", "Preview"),
    ("media.library", "Thư viện bản tin", "Media library"),
    ("media.details", "Chi tiết", "Details"),
    ("status.draft", "Bản nháp", "Draft"),
    ("status.pending", "Chờ phê duyệt", "Pending approval"),
    ("status.approved", "Đã phê duyệt", "Approved"),
    ("status.rejected", "Bị từ chối", "Rejected"),
    ("approvals.title", "Hàng chờ phê duyệt", "Approval queue"),
    ("priority", "Mức ưu tiên", "Priority"),
    ("priority.normal", "Thông thường", "Normal"),
    ("priority.priority", "Ưu tiên", "Priority"),
    ("priority.emergency", "Khẩn cấp", "Emergency"),
    ("sched.new", "Tạo lịch phát", "New schedule"),
    ("sched.title", "Tên lịch", "Title"),
    ("sched.media", "Bản tin", "Media"),
    ("sched.target", "Phát tới", "Target"),
    ("sched.rule", "Kiểu lặp", "Repeat"),
    ("sched.once", "Một lần", "Once"),
    ("sched.cron", "Định kỳ (cron)", "Recurring (cron)"),
    ("sched.at", "Thời điểm", "At"),
    ("sched.tz", "Múi giờ", "Time zone"),
    ("sched.create", "Lưu lịch", "Save schedule"),
    ("sched.list", "Các lịch phát", "Schedules"),
    ("sched.created", "Đã tạo lịch phát", "Schedule created"),
    ("cal.day", "Ngày", "Day"),
    ("cal.week", "Tuần", "Week"),
    ("cal.prev", "Trước", "Previous"),
    ("cal.next", "Sau", "Next"),
    ("cal.conflict", "Trùng giờ", "Conflict"),
    ("cal.time", "Giờ", "Time"),
    ("users.new", "Thêm người dùng", "New user"),
    ("users.display", "Họ tên", "Name"),
    ("users.role", "Vai trò", "Role"),
    ("users.scope", "Phạm vi", "Scope"),
    ("users.all", "Toàn tỉnh", "Whole province"),
    ("users.create", "Tạo", "Create"),
    ("audit.at", "Thời gian", "When"),
    ("audit.actor", "Người thực hiện", "Who"),
    ("audit.action", "Thao tác", "Action"),
    ("audit.entity", "Đối tượng", "Entity"),
    ("audit.before", "Trước", "Before"),
    ("audit.after", "Sau", "After"),
    ("rep.title", "Báo cáo kết quả phát", "Broadcast report"),
    ("rep.from", "Từ ngày", "From"),
    ("rep.to", "Đến ngày", "To"),
    ("rep.show", "Xem báo cáo", "Show"),
    (
        "rep.half",
        "Báo cáo 6 tháng (1/1–14/6)",
        "Half-year report (1 Jan–14 Jun)",
    ),
    (
        "rep.annual",
        "Báo cáo năm (1/1–14/12)",
        "Annual report (1 Jan–14 Dec)",
    ),
    ("rep.items", "Lượt phát", "Items broadcast"),
    ("rep.minutes", "Số phút phát", "Minutes on air"),
    ("rep.scheduled", "Lượt theo lịch", "Scheduled"),
    ("rep.delivered", "Lượt theo lịch đã phát", "Scheduled and played"),
    ("rep.delivery", "Tỷ lệ phát thành công", "Delivery rate"),
    ("rep.devices", "Số cụm loa", "Loudspeakers"),
    (
        "rep.availability",
        "Tỷ lệ thiết bị trực tuyến",
        "Device availability",
    ),
    ("rep.emergencies", "Bản tin khẩn cấp", "Emergencies"),
    (
        "rep.ttfp",
        "Thời gian đến lần phát đầu (giây)",
        "Time to first play (s)",
    ),
    ("rep.csv", "Tải CSV", "Download CSV"),
    ("rep.xlsx", "Tải Excel (XLSX)", "Download Excel (XLSX)"),
    ("rep.print", "In báo cáo", "Print"),
    ("rep.total", "Tổng cộng", "Total"),
    ("rep.method", "Cách tính", "Method"),
    (
        "rep.method.text",
        "Lượt phát và số phút: xác nhận phát có kết quả played/resumed/interrupted, theo thời điểm lịch trong kỳ. Lượt theo lịch: tính lại quy tắc của các lịch đang bật cho từng cụm loa thuộc địa bàn. Tỷ lệ trực tuyến: tỷ lệ thiết bị đang trực tuyến tại thời điểm lập báo cáo (không lưu lịch sử nhịp tim).",
        "Items and minutes: proof of play with outcome played/resumed/interrupted whose occurrence falls in the period. Scheduled: the rules of enabled schedules re-evaluated for each loudspeaker of the area. Availability: share of devices online when the report is made (heartbeat history is not stored).",
    ),
    ("common.save", "Lưu", "Save"),
    ("common.back", "Quay lại", "Back"),
    ("common.none", "Không có", "None"),
    ("common.error", "Có lỗi xảy ra", "Something went wrong"),
    (
        "common.forbidden",
        "Bạn không có quyền thực hiện thao tác này.",
        "You are not allowed to do this.",
    ),
    ("common.notfound", "Không tìm thấy.", "Not found."),
    ("common.home", "Về trang chủ", "Home"),
    ("outcome", "Kết quả", "Outcome"),
    ("outcome.played", "Đã phát", "Played"),
    ("outcome.interrupted", "Bị ngắt", "Interrupted"),
    ("outcome.resumed", "Phát tiếp", "Resumed"),
    ("outcome.missed", "Bỏ lỡ", "Missed"),
    ("outcome.failed", "Lỗi", "Failed"),
    (
        "outcome.skipped_quiet_hours",
        "Bỏ qua (giờ yên tĩnh)",
        "Skipped (quiet hours)",
    ),
    ("started", "Bắt đầu", "Started"),
];

/// The text of `key` in `lang` (the key itself if missing, so a gap is visible, never a crash).
pub fn t(key: &str, lang: Lang) -> &str {
    match CATALOGUE.iter().find(|(k, _, _)| *k == key) {
        Some((_, vi, en)) => match lang {
            Lang::Vi => vi,
            Lang::En => en,
        },
        None => key,
    }
}

/// Vietnamese number format: `1234567` → `1.234.567`.
pub fn number(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Vietnamese decimal format with one decimal: `12.5` → `12,5`, thousands with ".".
pub fn decimal(x: f64) -> String {
    let r = (x * 10.0).round() as i64;
    format!("{},{}", number(r / 10), (r % 10).abs())
}

/// Unix ms → `dd/mm/yyyy HH:MM` in Asia/Ho_Chi_Minh (24 h).
pub fn datetime(ms: i64) -> String {
    match chrono_tz::Asia::Ho_Chi_Minh.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%d/%m/%Y %H:%M").to_string(),
        None => String::new(),
    }
}

/// Unix ms → `dd/mm/yyyy` in Asia/Ho_Chi_Minh.
pub fn date(ms: i64) -> String {
    match chrono_tz::Asia::Ho_Chi_Minh.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%d/%m/%Y").to_string(),
        None => String::new(),
    }
}

/// Milliseconds → `m:ss` (or `h:mm:ss`).
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_use_vietnamese_formats() {
        assert_eq!(number(1_234_567), "1.234.567");
        assert_eq!(number(999), "999");
        assert_eq!(number(-1000), "-1.000");
        assert_eq!(decimal(12.46), "12,5");
        // 2026-01-01T00:00Z is 07:00 in Hồ Chí Minh City.
        assert_eq!(datetime(1_767_225_600_000), "01/01/2026 07:00");
        assert_eq!(duration(61_000), "1:01");
    }

    #[test]
    fn every_key_used_by_a_template_is_in_the_catalogue() {
        for (name, src) in super::super::TEMPLATES {
            let mut rest = *src;
            while let Some(i) = rest.find("t(\"") {
                rest = &rest[i + 3..];
                let key = &rest[..rest.find('"').unwrap()];
                if key.ends_with('.') {
                    continue; // a prefix joined with a value, e.g. t("role." ~ user.role)
                }
                assert!(
                    CATALOGUE.iter().any(|(k, _, _)| *k == key),
                    "{name}: key `{key}` missing"
                );
            }
        }
        let mut keys: Vec<_> = CATALOGUE.iter().map(|(k, _, _)| *k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), CATALOGUE.len(), "duplicate keys");
    }
}
