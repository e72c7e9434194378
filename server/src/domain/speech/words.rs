//! Word lists that steer [`super::normalize`]: units read after a number, the words that make
//! a slash mean "each" (`đồng/người`), the words before a Roman numeral that make it a number
//! (`quý II`, `khóa XV`, `kỳ họp thứ IX`, `báo động III`), and the context words that tell a
//! hotline (`gọi 114`, `đường dây nóng 1022`) from a quantity (`114 hộ`) and a date (`ngày 2/9`)
//! from a ratio (`trực 24/7`).

/// Units read after a number (unit as written → reading).
pub const UNITS: &[(&str, &str)] = &[
    ("km/h", "ki lô mét trên giờ"),
    ("km2", "ki lô mét vuông"),
    ("km²", "ki lô mét vuông"),
    ("km", "ki lô mét"),
    ("m2", "mét vuông"),
    ("m²", "mét vuông"),
    ("m3", "mét khối"),
    ("m³", "mét khối"),
    ("cm", "xăng ti mét"),
    ("mm", "mi li mét"),
    ("m", "mét"),
    ("kg", "ki lô gam"),
    ("g", "gam"),
    ("mg", "mi li gam"),
    ("ha", "héc ta"),
    ("°C", "độ C"),
    ("độC", "độ C"),
    ("°", "độ"),
    ("l", "lít"),
    ("ml", "mi li lít"),
    ("tr", "triệu"),
    ("đ", "đồng"),
    ("VNĐ", "đồng"),
    ("VND", "đồng"),
    ("kWh", "ki lô oát giờ"),
    ("kW", "ki lô oát"),
    ("MW", "mê ga oát"),
    ("kV", "ki lô vôn"),
    ("h", "giờ"),
    ("s", "giây"),
    ("ph", "phút"),
];

/// The reading of a unit as written, if it is one.
pub fn unit(u: &str) -> Option<&'static str> {
    UNITS.iter().find(|(k, _)| *k == u).map(|(_, v)| *v)
}

/// Units that stand alone after a number (`150 mm`); single letters that are also ordinary
/// words or initials (`h`, `s`, `g`) count only when glued to the number (`5l`).
pub fn standalone_unit(u: &str) -> Option<&'static str> {
    if matches!(u, "h" | "s" | "g" | "ph" | "°") {
        return None;
    }
    unit(u)
}

/// Words after a slash that make it "each": `đồng/người` → "đồng mỗi người".
pub const PER_WORDS: &[&str] = &[
    "người",
    "hộ",
    "ngày",
    "tháng",
    "năm",
    "tuần",
    "quý",
    "lượt",
    "ca",
    "lần",
    "con",
    "xã",
    "thôn",
    "bản",
    "khẩu",
    "suất",
    "em",
    "cháu",
    "phòng",
    "xe",
    "chuyến",
    "sào",
    "công",
    "buổi",
    "đêm",
    "tiết",
    "m2",
    "ha",
    "kg",
    "tấn",
    "lít",
    "chiếc",
    "cái",
    "bộ",
    "hồ sơ",
    "đơn vị",
    "trường",
    "lớp",
    "vụ",
];

/// Words before a Roman numeral (lower case) that make it a number.
pub const ROMAN_CUES: &[&str] = &[
    "quý", "qúy", "khóa", "khoá", "kỳ", "kì", "thứ", "phần", "chương", "điều", "mục", "đợt", "đoạn", "lần",
    "tập", "hội", "kỷ", "kỉ", "lục", "hạng", "cấp", "loại", "nhóm", "vùng", "khu", "quân", "phụ",
];

/// Two words before a Roman numeral (lower case) that make it a number: flood alarm levels
/// (`báo động II`), zones (`khu vực III`).
pub const ROMAN_CUES_2: &[&str] = &["báo động", "khu vực", "cấp độ", "giai đoạn", "tiểu mục"];

/// Words (lower case) after which a bare number of three or more digits is a number to dial, read
/// digit by digit (`đường dây nóng 1022`, `tổng đài 1080`, `hotline 19001234`), unless a count
/// word follows it.
pub const PHONE_CUES: &[&str] = &[
    "nóng", "đài", "hotline", "gọi", "thoại", "sđt", "đt", "fax", "zalo",
];

/// Words after a 111–115 that make it a quantity, not a hotline (lower case, first word).
pub const COUNT_WORDS: &[&str] = &[
    "người",
    "hộ",
    "ca",
    "trường",
    "học",
    "cháu",
    "em",
    "con",
    "xã",
    "thôn",
    "bản",
    "tổ",
    "nhà",
    "căn",
    "ngôi",
    "chiếc",
    "cái",
    "tấn",
    "kg",
    "lít",
    "ha",
    "km",
    "m",
    "mm",
    "cm",
    "đồng",
    "triệu",
    "nghìn",
    "ngàn",
    "tỷ",
    "ngày",
    "tháng",
    "năm",
    "giờ",
    "phút",
    "giây",
    "lượt",
    "điểm",
    "%",
    "hồ",
    "xe",
    "lao",
    "đơn",
    "mét",
    "cây",
    "gia",
    "đối",
    "bệnh",
    "trẻ",
    "lần",
    "tuổi",
    "phòng",
    "giường",
    "bác",
    "cán",
    "đảng",
    "đại",
    "công",
    "thí",
    "sinh",
    "hội",
    "cơ",
    "doanh",
    "dự",
    "vụ",
    "m2",
    "km2",
    "héc",
    "ki",
    "bao",
    "suất",
    "phần",
    "độ",
    "ly",
    "bộ",
];

/// Words before a 111–115 that make it a quantity or a number in an address (lower case).
pub const QUANTITY_CUES: &[&str] = &[
    "có",
    "gồm",
    "tổng",
    "khoảng",
    "hơn",
    "gần",
    "trên",
    "dưới",
    "đạt",
    "được",
    "thêm",
    "còn",
    "nhà",
    "phòng",
    "lô",
    "tuyến",
    "ql",
    "tl",
    "đường",
    "thứ",
    "hạng",
    "tới",
    "đến",
    "từ",
    "mất",
    "với",
    "cấp",
    "phố",
    "ngõ",
    "ngách",
    "hẻm",
    "kiệt",
    "km",
    "điều",
    "khoản",
    "chương",
    "tập",
    "trang",
    "lớp",
    "tờ",
    "thửa",
    "quyết",
    "định",
    "nghị",
    "tổ",
    "xóm",
    "đội",
    "ấp",
    "khu",
    "bản",
    "thôn",
    "cao",
    "sâu",
    "dài",
    "rộng",
    "nặng",
    "mức",
];

/// Words before `d/m` that make it a ratio, not a date (lower case).
pub const RATIO_CUES: &[&str] = &["trực", "động", "vụ", "lệ", "suốt", "cửa", "mở", "đạt", "trên"];
