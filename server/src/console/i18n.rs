//! The console's one string catalogue: key → (Vietnamese, English). Templates call `t("key")`;
//! Vietnamese is the default, English is chosen with the `lang` cookie. Also the Vietnamese
//! formats of dates (dd/mm/yyyy, 24 h, Asia/Ho_Chi_Minh) and numbers ("." for thousands).

use chrono::TimeZone;

mod alarms;
mod alerts;
mod autonomy;
mod cluster;
mod downmix;
mod errors;
mod feedback;
mod forms;
mod live;
mod loudness;
mod ota;
mod policies;
mod policy_edit;
mod relay;
mod repetition;
mod report_engagement;
mod submissions;

pub use errors::{error_field, error_text};

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
    ("nav.media", "Thư viện âm thanh", "Audio library"),
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
    (
        "warn.unsigned_devices",
        "Cảnh báo: máy chủ đang nhận trạng thái và báo cáo phát của thiết bị chưa có khóa ký \
         (allow_unsigned_devices). Ai có mật khẩu MQTT của một thiết bị bất kỳ đều có thể giả mạo \
         các thiết bị này. Hãy cấp khóa cho mọi thiết bị rồi tắt thiết lập này.",
        "Warning: the server accepts status and proof of play from devices without a signing key \
         (allow_unsigned_devices). Anyone holding any device's MQTT password can forge these \
         devices' reports. Give every device a key, then turn this setting off.",
    ),
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
    ("nav.commands", "Lệnh", "Commands"),
    ("trk.title", "Ai đã nghe", "Who heard it"),
    ("trk.list", "Lệnh gần đây", "Recent commands"),
    ("trk.action", "Lệnh", "Command"),
    ("trk.target", "Đích", "Target"),
    ("trk.issued", "Phát lệnh lúc", "Issued"),
    ("trk.expires", "Hiệu lực đến", "Valid until"),
    (
        "trk.catch_up",
        "Phát bù khi kết nối lại",
        "Caught up on reconnect",
    ),
    ("trk.reached", "Đã tới", "Reached"),
    ("trk.area", "Mã địa bàn", "Area code"),
    ("trk.area_name", "Địa bàn", "Area"),
    ("trk.state", "Trạng thái", "State"),
    ("trk.since", "Từ lúc", "Since"),
    ("trk.delay_s", "Trễ (giây)", "Delay (s)"),
    ("trk.reason", "Lý do", "Reason"),
    ("trk.history", "Lịch sử", "History"),
    ("trk.csv", "Tải CSV", "Download CSV"),
    ("trk.live", "Cập nhật trực tiếp", "Live"),
    ("trk.s.pending", "Chờ (trực tuyến)", "Pending (online)"),
    ("trk.s.offline_pending", "Chờ (ngoại tuyến)", "Pending (offline)"),
    ("trk.s.delivered", "Đã nhận", "Delivered"),
    ("trk.s.playing", "Đang phát", "Playing"),
    ("trk.s.played", "Đã phát", "Played"),
    ("trk.s.played_late", "Phát muộn", "Played late"),
    ("trk.s.interrupted", "Bị ngắt", "Interrupted"),
    ("trk.s.failed", "Lỗi", "Failed"),
    ("trk.s.cancelled", "Đã hủy", "Cancelled"),
    ("trk.s.expired", "Hết hiệu lực", "Expired"),
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
        "Báo cáo 6 tháng (15/12–14/6)",
        "Half-year report (15 Dec–14 Jun)",
    ),
    (
        "rep.annual",
        "Báo cáo năm (15/12–14/12)",
        "Annual report (15 Dec–14 Dec)",
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
        "Kỳ báo cáo theo Nghị định 09/2019/NĐ-CP: 6 tháng từ 15/12 năm trước đến 14/6, cả năm từ 15/12 năm trước đến 14/12. Lượt phát và số phút: xác nhận phát có kết quả played/played_late/resumed/interrupted, theo thời điểm lịch trong kỳ; số chương trình là số nội dung khác nhau trong các lượt đó. Lượt theo lịch: tính lại quy tắc của từng lịch cho từng cụm loa thuộc địa bàn, chỉ các lần sau khi lịch được tạo, trong lúc lịch đang bật và trước thời điểm sớm hơn giữa hiện tại và cuối kỳ; lượt đã phát là các lượt theo lịch có xác nhận phát. Tỷ lệ trực tuyến: với mỗi cụm loa (và mỗi bảng tin), thời gian trực tuyến trong kỳ (theo lịch sử trạng thái) chia cho phần của kỳ mà thiết bị đã được đăng ký, tính đến thời điểm lập báo cáo; mỗi xã là trung bình cộng của các thiết bị của xã, dòng tổng cộng là trung bình của tất cả thiết bị. Bản tin đã đăng: bản tin được đăng trong kỳ tới xã, tới địa bàn cấp trên hoặc tới thôn của xã; lượt hiển thị: xác nhận hiển thị của bảng tin.",
        "Periods per Decree 09/2019/NĐ-CP: half-year from 15 Dec of the previous year to 14 Jun, annual from 15 Dec of the previous year to 14 Dec. Items and minutes: proof of play with outcome played/played_late/resumed/interrupted whose occurrence falls in the period; programmes are the distinct contents among them. Scheduled: each schedule's rule re-evaluated for each loudspeaker of the area, only for occurrences after the schedule was created, while it was enabled and before the earlier of now and the end of the period; delivered are the scheduled ones with a proof of play. Availability: for each loudspeaker (and each board), its online time in the period (from the status history) divided by the part of the period it was registered, up to the time the report is made; per commune the mean over its devices, the total the mean over all. Bulletins published: published in the period to the commune, an area above it or one of its villages; displays: the boards' proof of display.",
    ),
    ("rep.programmes", "Số chương trình", "Programmes"),
    ("rep.district", "Cấp huyện", "District"),
    ("rep.no_district", "(không thuộc huyện)", "(no district)"),
    (
        "rep.sec.speakers",
        "Phát thanh qua cụm loa",
        "Loudspeaker broadcasts",
    ),
    ("rep.sec.districts", "Tổng hợp cấp huyện", "By district"),
    (
        "rep.sec.boards",
        "Bản tin và bảng tin điện tử",
        "Bulletins and boards",
    ),
    ("rep.sec.language", "Theo ngôn ngữ", "By language"),
    ("rep.sec.category", "Theo thể loại", "By category"),
    ("rep.published", "Bản tin đã đăng", "Bulletins published"),
    ("rep.boards", "Số bảng tin", "Boards"),
    ("rep.boards_online", "Bảng tin trực tuyến", "Boards online"),
    (
        "rep.board_availability",
        "Tỷ lệ bảng tin trực tuyến",
        "Board availability",
    ),
    ("rep.displays", "Lượt hiển thị", "Displays"),
    ("rep.display_minutes", "Số phút hiển thị", "Minutes on screen"),
    ("rep.shown", "Bản tin đã hiển thị", "Bulletins shown"),
    ("rep.language", "Ngôn ngữ", "Language"),
    ("rep.category", "Thể loại", "Category"),
    ("rep.unknown", "(không xác định)", "(unknown)"),
    ("rep.print_page", "Bản in (A4)", "Printable (A4)"),
    ("rep.counted_until", "Số liệu tính đến", "Counted up to"),
    (
        "board.displays",
        "Xác nhận hiển thị gần đây",
        "Recent proof of display",
    ),
    ("board.bulletin", "Bản tin", "Bulletin"),
    (
        "board.no_displays",
        "Chưa có xác nhận hiển thị",
        "No proof of display yet",
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
    ("outcome.played_late", "Phát muộn", "Played late"),
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
    // -- availability and status history --
    ("hist.title", "Lịch sử trạng thái", "Status history"),
    (
        "hist.avail7",
        "Tỷ lệ trực tuyến 7 ngày qua",
        "Availability, last 7 days",
    ),
    (
        "hist.avail30",
        "Tỷ lệ trực tuyến 30 ngày qua",
        "Availability, last 30 days",
    ),
    ("hist.state", "Trạng thái", "State"),
    ("hist.from", "Từ", "From"),
    ("hist.to", "Đến", "To"),
    ("hist.duration", "Thời lượng", "Duration"),
    ("hist.ended", "Kết thúc do", "Ended by"),
    ("hist.still_online", "Đang trực tuyến", "Still online"),
    (
        "hist.none",
        "Chưa có lịch sử trạng thái.",
        "No status history yet.",
    ),
    ("hist.days", "ngày", "d"),
    (
        "hist.ended.offline",
        "Thiết bị báo ngoại tuyến",
        "The device went offline",
    ),
    (
        "hist.ended.will",
        "Mất kết nối (last will)",
        "Connection lost (last will)",
    ),
    (
        "hist.ended.reconnect",
        "Kết nối lại bằng phiên mới",
        "Reconnected with a new session",
    ),
    (
        "hist.ended.server_restart",
        "Máy chủ khởi động lại",
        "Server restart",
    ),
    (
        "hist.note",
        "Tỷ lệ trực tuyến: thời gian trực tuyến trong khoảng thời gian chia cho phần của khoảng đó kể từ khi thiết bị được đăng ký. Giờ theo máy chủ nhận tin trạng thái.",
        "Availability: online time in the period divided by the part of the period since the device was registered. Times are when the server received the state messages.",
    ),
    // -- bulletin editor --
    ("nav.bulletins", "Bản tin điện tử", "Bulletins"),
    (
        "bul.title",
        "Bản tin điện tử (bảng tin và loa)",
        "Bulletins (boards and loudspeakers)",
    ),
    ("bul.new", "Soạn bản tin mới", "New bulletin"),
    ("bul.back", "Danh sách bản tin", "All bulletins"),
    ("bul.filter", "Lọc theo trạng thái", "Filter by status"),
    ("bul.all", "Tất cả", "All"),
    ("bul.field.title", "Tiêu đề", "Title"),
    ("bul.field.body", "Nội dung", "Text"),
    ("bul.field.category", "Chuyên mục", "Category"),
    ("bul.field.areas", "Địa bàn nhận", "Target areas"),
    ("bul.field.valid_from", "Hiệu lực từ", "Valid from"),
    ("bul.field.valid_until", "Hiệu lực đến", "Valid until"),
    ("bul.field.image", "Hình ảnh", "Images"),
    ("bul.field.lang", "Mã ngôn ngữ", "Language code"),
    (
        "bul.field.audio",
        "Bản ghi âm (không bắt buộc)",
        "Recorded audio (optional)",
    ),
    ("bul.validity", "Thời gian hiệu lực", "Validity"),
    ("bul.no_areas", "Chưa chọn địa bàn", "No areas yet"),
    ("bul.published", "Đang hiển thị tại", "Published to"),
    (
        "bul.tz_hint",
        "Giờ Việt Nam (Asia/Ho_Chi_Minh). Để trống: không giới hạn.",
        "Vietnam time (Asia/Ho_Chi_Minh). Empty: no limit.",
    ),
    (
        "bul.areas_hint",
        "Giữ Ctrl (hoặc Cmd) để chọn nhiều địa bàn; mỗi địa bàn gồm cả các thôn, bản trực thuộc.",
        "Hold Ctrl (or Cmd) to choose several; each area includes the areas below it.",
    ),
    ("bul.variants", "Nội dung theo ngôn ngữ", "Language versions"),
    ("bul.variant", "Ngôn ngữ", "Language"),
    ("bul.lang.vi", "Tiếng Việt", "Vietnamese"),
    (
        "bul.lang_hint",
        "Ví dụ: hmn (H'Mông), dao (Dao), tay (Tày), nung (Nùng), thai (Thái).",
        "E.g. hmn (Hmong), dao (Dao), tay (Tày), nung (Nùng), thai (Thái).",
    ),
    (
        "bul.body_hint",
        "Định dạng đơn giản: **đậm**, *nghiêng*, dòng bắt đầu bằng \"- \" hoặc \"1. \" thành danh sách.",
        "Simple formatting: **bold**, *italic*, lines starting with \"- \" or \"1. \" become lists.",
    ),
    (
        "bul.other_lang_hint",
        "Loa phát bản ghi âm của ngôn ngữ này; nếu không có bản ghi âm, loa bỏ qua ngôn ngữ này (chưa có giọng đọc tự động). Bảng tin vẫn hiển thị nội dung.",
        "Loudspeakers play this language's recording; without one they skip it (no synthetic voice yet). Boards still show the text.",
    ),
    ("bul.recorded", "Bản ghi âm", "Recording"),
    ("bul.audio_remove", "Bỏ bản ghi âm này", "Remove this recording"),
    ("bul.voice", "Giọng đọc", "Voice"),
    ("bul.speed", "Tốc độ đọc (từ/phút)", "Speed (words per minute)"),
    ("bul.voice.vi", "Giọng miền Bắc", "Northern voice"),
    ("bul.voice.vi-vn-x-central", "Giọng miền Trung", "Central voice"),
    ("bul.voice.vi-vn-x-south", "Giọng miền Nam", "Southern voice"),
    ("bul.tts_preview", "Nghe thử giọng đọc", "Preview speech"),
    ("nav.voices", "Giọng đọc", "Voices"),
    ("voice.title", "Giọng đọc và cách đọc", "Voices and readings"),
    ("voice.engine", "Bộ đọc", "Engine"),
    ("voice.accent", "Vùng miền", "Accent"),
    ("voice.accent.north", "Miền Bắc", "Northern"),
    ("voice.accent.central", "Miền Trung", "Central"),
    ("voice.accent.south", "Miền Nam", "Southern"),
    ("voice.pitch", "Cao độ", "Pitch"),
    ("voice.text", "Văn bản", "Text"),
    ("voice.areas", "Giọng đọc theo địa bàn", "Voice of each area"),
    ("voice.save", "Lưu", "Save"),
    ("voice.clear", "Dùng giọng của cấp trên", "Use the parent's voice"),
    ("voice.own", "giọng riêng của địa bàn", "the area's own voice"),
    ("voice.inherited", "theo", "from"),
    ("voice.default", "mặc định", "default"),
    (
        "voice.read_as",
        "Sẽ đọc là (bấm một từ để sửa cách đọc):",
        "Will be read as (click a word to correct its reading):",
    ),
    ("voice.add_lexicon", "Thêm vào từ điển", "Add to the lexicon"),
    ("bul.add_lang", "Thêm ngôn ngữ", "Add a language"),
    ("bul.remove_lang", "Xóa ngôn ngữ này", "Remove this language"),
    (
        "bul.files_hint",
        "Khi thêm/xóa ngôn ngữ hoặc khi biểu mẫu báo lỗi, tệp đã chọn cần chọn lại.",
        "After adding or removing a language, or when the form reports an error, choose files again.",
    ),
    ("bul.save_draft", "Lưu nháp", "Save draft"),
    ("bul.save_submit", "Gửi duyệt", "Submit for approval"),
    (
        "bul.submit_stored",
        "Gửi duyệt bản đã lưu",
        "Submit the saved version for approval",
    ),
    (
        "bul.edit_warning",
        "Sửa bản tin sẽ đưa về bản nháp và gỡ khỏi bảng tin; cần phê duyệt lại.",
        "Editing returns the bulletin to draft and takes it off the boards; it needs approval again.",
    ),
    (
        "bul.queue",
        "Bản tin chờ phê duyệt",
        "Bulletins awaiting approval",
    ),
    (
        "approvals.media",
        "Tệp âm thanh chờ phê duyệt",
        "Audio awaiting approval",
    ),
    (
        "bul.reason",
        "Lý do từ chối (bắt buộc)",
        "Reason for rejection (required)",
    ),
    ("bul.publish", "Phát hành", "Publish"),
    (
        "bul.publish_hint",
        "Một thao tác: hiển thị trên bảng tin điện tử và phát trên cụm loa của các địa bàn đã chọn.",
        "One action: shown on the bulletin boards and played on the loudspeakers of the chosen areas.",
    ),
    (
        "bul.emergency_hint",
        "Bản tin khẩn cấp: loa phát ngay, bảng tin hiển thị toàn màn hình.",
        "Emergency bulletin: loudspeakers play it at once and boards show it full screen.",
    ),
    ("bul.speakers", "Phát trên cụm loa", "Play on loudspeakers"),
    ("bul.publish_now", "Phát hành bản tin", "Publish bulletin"),
    ("bul.res.title", "Kết quả phát hành", "Publish result"),
    ("bul.res.boards", "Bảng tin tại", "Boards in"),
    ("bul.res.speech", "Âm thanh phát trên loa", "Loudspeaker audio"),
    ("bul.res.schedules", "Số lịch phát đã tạo", "Schedules created"),
    ("bul.res.skipped", "Bỏ qua", "Skipped"),
    ("bul.source.recorded", "bản ghi âm", "recording"),
    ("bul.source.tts", "giọng đọc tự động", "text-to-speech"),
    ("bul.flash.saved", "Đã lưu bản tin.", "Bulletin saved."),
    (
        "bul.flash.submitted",
        "Đã gửi bản tin để phê duyệt.",
        "Bulletin submitted for approval.",
    ),
    (
        "bul.flash.published",
        "Đã phát hành bản tin.",
        "Bulletin published.",
    ),
    (
        "bul.err.title_required",
        "Vui lòng nhập tiêu đề.",
        "Enter a title.",
    ),
    (
        "bul.err.title_long",
        "Tiêu đề dài quá 300 ký tự.",
        "The title is longer than 300 characters.",
    ),
    (
        "bul.err.body_long",
        "Nội dung dài quá 20.000 ký tự.",
        "The text is longer than 20,000 characters.",
    ),
    (
        "bul.err.category",
        "Chuyên mục dài quá 100 ký tự.",
        "The category is longer than 100 characters.",
    ),
    (
        "bul.err.priority",
        "Mức ưu tiên không hợp lệ.",
        "Unknown priority.",
    ),
    (
        "bul.err.datetime",
        "Thời điểm không hợp lệ (định dạng ngày giờ).",
        "Not a valid date and time.",
    ),
    (
        "bul.err.window",
        "Thời điểm kết thúc hiệu lực phải sau thời điểm bắt đầu.",
        "The end of validity must be after its start.",
    ),
    (
        "bul.err.area_scope",
        "Địa bàn {area} nằm ngoài phạm vi quản lý của bạn.",
        "Area {area} is outside your scope.",
    ),
    (
        "bul.err.area_unknown",
        "Không có địa bàn {area}.",
        "Area {area} does not exist.",
    ),
    (
        "bul.err.lang",
        "Mã ngôn ngữ gồm 2–8 chữ cái thường, ví dụ hmn.",
        "A language code is 2–8 lowercase letters, e.g. hmn.",
    ),
    (
        "bul.err.lang_dup",
        "Ngôn ngữ {lang} đã có.",
        "Language {lang} appears twice.",
    ),
    (
        "bul.err.audio",
        "Không nhận được bản ghi âm",
        "The recording was not accepted",
    ),
    (
        "bul.err.image",
        "Không nhận được hình ảnh",
        "The image was not accepted",
    ),
    (
        "bul.err.image_type",
        "Tệp {file} không phải ảnh PNG, JPEG, WebP hoặc GIF.",
        "File {file} is not a PNG, JPEG, WebP or GIF image.",
    ),
    (
        "bul.err.reason",
        "Từ chối cần nêu lý do.",
        "A rejection needs a reason.",
    ),
    (
        "bul.err.publish_areas",
        "Chọn ít nhất một địa bàn để phát hành.",
        "Choose at least one area to publish to.",
    ),
    (
        "bul.err.tts_empty",
        "Chưa có nội dung để đọc.",
        "There is no text to read.",
    ),
    (
        "bul.err.tts_failed",
        "Không tạo được giọng đọc, vui lòng thử lại.",
        "Speech could not be made; try again.",
    ),
    // -- administration: users, tokens, schedules, areas, devices --
    ("admin.saved", "Đã lưu.", "Saved."),
    ("admin.edit", "Sửa", "Edit"),
    ("admin.save", "Lưu", "Save"),
    ("admin.create", "Tạo", "Create"),
    ("admin.delete", "Xóa", "Delete"),
    ("admin.cancel", "Huỷ", "Cancel"),
    ("admin.status", "Trạng thái", "Status"),
    ("admin.enabled", "Đang hoạt động", "Enabled"),
    ("admin.disabled", "Đã khoá", "Disabled"),
    ("admin.enable", "Mở khoá", "Enable"),
    ("admin.disable", "Khoá tài khoản", "Disable"),
    (
        "admin.disable_confirm",
        "Khoá tài khoản này? Các phiên và mã API của người dùng ngừng hoạt động ngay.",
        "Disable this account? The user's sessions and API tokens stop working at once.",
    ),
    (
        "admin.user_enabled",
        "Đã mở khoá tài khoản.",
        "The account is enabled.",
    ),
    (
        "admin.user_disabled",
        "Đã khoá tài khoản; các phiên đăng nhập đã kết thúc.",
        "The account is disabled; its sessions have ended.",
    ),
    (
        "admin.self_hint",
        "Bạn không thể tự khoá hay tự bỏ quyền quản trị của mình.",
        "You cannot disable yourself or remove your own admin role.",
    ),
    (
        "admin.scope_hint",
        "Không chọn gì = toàn tỉnh. Giữ Ctrl để chọn nhiều.",
        "Nothing selected = the whole province. Hold Ctrl to select several.",
    ),
    ("admin.password", "Đặt mật khẩu mới", "Set a new password"),
    ("admin.password_set_button", "Đặt mật khẩu", "Set password"),
    (
        "admin.password_set",
        "Đã đặt mật khẩu mới; các phiên cũ đã kết thúc.",
        "The new password is set; old sessions have ended.",
    ),
    ("admin.tokens", "Mã truy cập API", "API tokens"),
    ("admin.token_name", "Tên mã", "Token name"),
    ("admin.token_issue", "Cấp mã mới", "Issue a token"),
    ("admin.token_new", "Mã mới", "New token"),
    (
        "admin.token_once",
        "Hãy sao chép mã này ngay: nó chỉ hiện một lần, máy chủ chỉ lưu bản băm.",
        "Copy this token now: it is shown only once; the server keeps only its hash.",
    ),
    ("admin.token_used", "Dùng lần cuối", "Last used"),
    ("admin.token_revoked", "Đã thu hồi mã.", "The token is revoked."),
    ("admin.active", "Còn hiệu lực", "Active"),
    ("admin.revoked", "Đã thu hồi", "Revoked"),
    ("admin.revoke", "Thu hồi", "Revoke"),
    (
        "admin.revoke_confirm",
        "Thu hồi mã này? Các chương trình dùng nó sẽ bị từ chối ngay.",
        "Revoke this token? Programs using it are refused at once.",
    ),
    ("admin.items", "Các bản tin (theo thứ tự)", "Items (in order)"),
    ("admin.rule_reads", "Diễn giải", "Reads as"),
    ("admin.valid_from", "Hiệu lực từ", "Valid from"),
    ("admin.valid_until", "Hiệu lực đến", "Valid until"),
    ("admin.volume", "Âm lượng", "Volume"),
    ("admin.repeat", "Số lần lặp", "Repeat"),
    ("admin.next", "Các lần phát tới", "Next occurrences"),
    (
        "admin.delete_schedule_confirm",
        "Xóa lịch phát này? Các lần phát sắp tới sẽ bị gỡ khỏi thiết bị.",
        "Delete this schedule? Its coming occurrences are removed from the devices.",
    ),
    (
        "admin.delete_area_confirm",
        "Xóa địa bàn này?",
        "Delete this area?",
    ),
    ("admin.parent", "Thuộc địa bàn", "Parent area"),
    ("admin.area_new", "Thêm địa bàn", "New area"),
    ("admin.import", "Nhập từ CSV", "Import CSV"),
    (
        "admin.import_done",
        "Đã nhập (tạo mới / cập nhật / không đổi)",
        "Imported (created / updated / unchanged)",
    ),
    (
        "admin.import_refused",
        "Không nhập dòng nào: sửa các dòng lỗi dưới đây rồi thử lại.",
        "Nothing was imported: fix the lines below and try again.",
    ),
    ("admin.line", "Dòng", "Line"),
    ("admin.reason", "Lý do", "Reason"),
    ("admin.lat", "Vĩ độ", "Latitude"),
    ("admin.lon", "Kinh độ", "Longitude"),
    ("admin.province_wide", "Toàn tỉnh", "Province-wide"),
];

/// Every catalogue (key, Vietnamese, English), in lookup order: the one place that lists them.
fn entries() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    CATALOGUE
        .iter()
        .chain(errors::CATALOGUE)
        .chain(forms::CATALOGUE)
        .chain(alarms::CATALOGUE)
        .chain(alerts::CATALOGUE)
        .chain(autonomy::CATALOGUE)
        .chain(repetition::CATALOGUE)
        .chain(loudness::CATALOGUE)
        .chain(downmix::CATALOGUE)
        .chain(live::CATALOGUE)
        .chain(feedback::CATALOGUE)
        .chain(submissions::CATALOGUE)
        .chain(policies::CATALOGUE)
        .chain(relay::CATALOGUE)
        .chain(report_engagement::CATALOGUE)
        .chain(policy_edit::CATALOGUE)
        .chain(cluster::CATALOGUE)
        .chain(ota::CATALOGUE)
}

/// The text of `key` in `lang` (the key itself if missing, so a gap is visible, never a crash).
pub fn t(key: &str, lang: Lang) -> &str {
    match entries().find(|(k, _, _)| *k == key) {
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
mod tests;
