//! The console's strings of policy editing (issue 15): the edit page (fields and each stage's
//! dates), unlinking content from a stage, and the policy page's count of citizens' feedback
//! about the policy. [`super::t`] looks here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("policy.edit", "Sửa chính sách", "Edit policy"),
    ("policy.edit.title", "Sửa chính sách", "Edit policy"),
    (
        "policy.edit.areas",
        "Địa bàn (mã, cách nhau bằng dấu phẩy)",
        "Areas (codes, comma-separated)",
    ),
    ("policy.edit.summary", "Tóm tắt", "Summary"),
    ("policy.edit.current", "Giai đoạn hiện tại", "Current stage"),
    (
        "policy.edit.dates_hint",
        "Ngày của từng giai đoạn quyết định số liệu báo cáo của mỗi kỳ; giai đoạn hiện tại chưa có ngày sẽ được ghi ngày hôm nay.",
        "Each stage's dates decide the figures of each report period; a current stage without dates is dated today.",
    ),
    ("policy.edit.starts_on", "Ngày bắt đầu", "Starts on"),
    ("policy.edit.ends_on", "Ngày kết thúc", "Ends on"),
    ("policy.edit.save", "Lưu thay đổi", "Save changes"),
    ("policy.unlink", "Gỡ", "Unlink"),
    (
        "flash.policy_unlinked",
        "Đã gỡ nội dung khỏi giai đoạn.",
        "Content unlinked from the stage.",
    ),
    (
        "policy.feedback",
        "Phản ánh của người dân về chính sách",
        "Citizens' feedback about the policy",
    ),
    ("policy.feedback.total", "Tổng số", "Total"),
    ("policy.feedback.waiting", "Đang chờ xử lý", "Waiting"),
    (
        "policy.feedback.done",
        "Đã trả lời hoặc đóng",
        "Answered or closed",
    ),
    ("policy.feedback.list", "Xem danh sách", "See the list"),
];
