//! The console's strings of the report's engagement section (issue 15): submissions per
//! organisation and citizens' feedback in the half-year and annual report. [`super::t`] looks
//! here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "report.engagement.title",
        "Tương tác: đơn vị gửi bài và phản ánh của người dân",
        "Engagement: submissions and citizens' feedback",
    ),
    (
        "report.engagement.feedback",
        "Phản ánh, kiến nghị của người dân",
        "Citizens' feedback",
    ),
    ("report.engagement.received", "Tiếp nhận", "Received"),
    ("report.engagement.answered", "Đã trả lời", "Answered"),
    ("report.engagement.overdue", "Quá hạn", "Overdue"),
    (
        "report.engagement.median",
        "Thời gian trả lời trung vị (giờ)",
        "Median response time (hours)",
    ),
    (
        "report.engagement.submissions",
        "Bài gửi theo đơn vị",
        "Submissions per organisation",
    ),
    ("report.engagement.org", "Đơn vị", "Organisation"),
    ("report.engagement.submitted", "Số bài gửi", "Submitted"),
    ("report.engagement.approved", "Đã duyệt", "Approved"),
    ("report.engagement.rejected", "Bị từ chối", "Rejected"),
    (
        "report.engagement.no_orgs",
        "Chưa có đơn vị nào được khai báo.",
        "No organisation has been set up.",
    ),
];
