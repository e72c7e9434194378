//! Synthetic station lists shaped like a real province (Lào Cai: 84 communes with IT-enabled
//! stations, about 1,650 loudspeaker clusters), for tests and the provisioning benchmark.

use std::fmt::Write;

use crate::stations::HEADER;

/// Commune code number `i` (0-based): `08001`, `08002`, ...
pub fn commune_code(i: usize) -> String {
    format!("{:05}", 8001 + i)
}

/// A station list with `devices` rows spread over `communes` communes, about five villages per
/// commune, every eleventh device a bulletin board. Deterministic.
pub fn station_csv(devices: usize, communes: usize) -> String {
    let mut out = String::with_capacity(64 * (devices + 1));
    out.push_str(&HEADER.join(","));
    out.push('\n');
    let communes = communes.max(1);
    for i in 0..devices {
        let c = i % communes;
        let j = i / communes;
        let village = j % 5 + 1;
        let kind = if i % 11 == 10 { "board" } else { "loudspeaker" };
        let lat = 22.0 + (i % 97) as f64 * 0.008;
        let lon = 103.5 + (i % 89) as f64 * 0.011;
        let language = match i % 7 {
            0 => "hmn",
            1 => "vi",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{},Thôn {village},Cụm {j},{kind},{lat:.5},{lon:.5},alsa,{language}",
            commune_code(c)
        );
    }
    out
}

/// A communes table (`code,name`) for [`station_csv`]'s communes.
pub fn communes_csv(communes: usize) -> String {
    let mut out = String::from("code,name\n");
    for c in 0..communes {
        let _ = writeln!(out, "{},Xã {}", commune_code(c), c + 1);
    }
    out
}
