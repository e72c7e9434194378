//! Labels of the play-now form's repetition choice (issue 12 §3): the presets named for Decision
//! 18/2021/QĐ-TTg. [`super::t`] looks here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("repeat.label", "Phát lại (khẩn cấp)", "Repeat (emergency)"),
    (
        "repeat.hint",
        "Chỉ cho tin khẩn cấp: phát lại trong 24 giờ hoặc đến khi bị dừng; mỗi lần phát lại có giờ phát hành đọc ở đầu.",
        "Emergency only: replayed for 24 hours or until it is stopped; each replay starts with the spoken issue time.",
    ),
    (
        "err.invalid_repetition",
        "Chỉ tin khẩn cấp mới phát lại được, với kiểu phát lại có trong danh sách.",
        "Only an emergency repeats, with a pattern from the list.",
    ),
    ("repeat.once", "Không phát lại", "Play once"),
    (
        "repeat.every_2h",
        "Phát ngay, sau đó 2 giờ một lần",
        "Now, then every 2 hours",
    ),
    (
        "repeat.twice_5min_then_every_30min",
        "Phát ngay, thêm 2 lần cách nhau 5 phút, sau đó 30 phút một lần",
        "Now, twice more 5 minutes apart, then every 30 minutes",
    ),
];
