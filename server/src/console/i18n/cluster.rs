//! Labels of a broker cluster (issue 14): the broker a device is connected to, on its page.
//! [`super::t`] looks here after the other catalogues.

/// key, Vietnamese, English.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    ("device.broker", "Máy chủ MQTT đang kết nối", "MQTT broker in use"),
    (
        "device.broker_hint",
        "theo nhịp báo trạng thái gần nhất",
        "from the last heartbeat",
    ),
];
