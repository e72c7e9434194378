//! The station list: a UTF-8 CSV with the header
//! `commune_code,village,station,kind,lat,lon,audio_output,language` (`language` may be left out
//! of the header, or left empty in a row). Parsing checks every row and reports every problem at
//! once, each with its line number, so an operator fixes the file in one pass.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::config::{AudioOutput, DeviceKind};
use crate::error::{ProvisionError, Result, RowError};

/// The full header.
pub const HEADER: [&str; 8] = [
    "commune_code",
    "village",
    "station",
    "kind",
    "lat",
    "lon",
    "audio_output",
    "language",
];

/// Vietnam's bounding box used to catch swapped or mistyped coordinates.
pub const LAT_RANGE: (f64, f64) = (8.0, 23.5);
/// Longitude range, see [`LAT_RANGE`].
pub const LON_RANGE: (f64, f64) = (102.0, 110.0);

/// One valid row.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    /// 1-based line number.
    pub line: u64,
    /// Five-digit official commune code.
    pub commune_code: String,
    /// Village (thôn/bản/tổ dân phố) name.
    pub village: String,
    /// Station name, unique within the village.
    pub station: String,
    /// Loudspeaker cluster or bulletin board.
    pub kind: DeviceKind,
    /// Latitude, if given.
    pub lat: Option<f64>,
    /// Longitude, if given.
    pub lon: Option<f64>,
    /// `alsa`, `alsa:<device>`, `wav:<dir>` or `null` (empty means `alsa`).
    pub audio_output: String,
    /// Preferred language variant, e.g. `vi`, `hmn`.
    pub language: Option<String>,
}

impl Station {
    /// The identity of a station across runs.
    pub fn key(&self) -> StationKey {
        StationKey {
            commune_code: self.commune_code.clone(),
            village: self.village.clone(),
            station: self.station.clone(),
        }
    }
}

/// (commune code, village, station): what keeps a device id stable across runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StationKey {
    /// Commune code.
    pub commune_code: String,
    /// Village name.
    pub village: String,
    /// Station name.
    pub station: String,
}

/// The outcome of parsing: the valid rows and every problem.
#[derive(Debug, Default)]
pub struct ParsedStations {
    /// Valid rows in file order.
    pub stations: Vec<Station>,
    /// Problems in line order.
    pub errors: Vec<RowError>,
}

/// Official commune names by code (`--communes communes.csv`, columns `code,name`).
pub type Communes = BTreeMap<String, String>;

fn is_commune_code(s: &str) -> bool {
    s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The server's rule for area languages (2–8 lowercase letters or '-'), so a list that passes
/// here imports.
fn is_language(s: &str) -> bool {
    (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// Decode each field as UTF-8; `Err(column index)` for the first bad one.
fn decode(rec: &csv::ByteRecord) -> std::result::Result<Vec<String>, usize> {
    rec.iter()
        .enumerate()
        .map(|(i, f)| {
            std::str::from_utf8(f)
                .map(|s| s.trim().to_string())
                .map_err(|_| i)
        })
        .collect()
}

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

/// Read and parse a station list file.
pub fn read_stations(path: &Path, communes: Option<&Communes>) -> Result<ParsedStations> {
    let bytes = std::fs::read(path).map_err(|e| ProvisionError::io(path, e))?;
    Ok(parse_stations(&bytes, communes))
}

/// Parse a station list. `communes`, when given, is the list of known commune codes.
pub fn parse_stations(bytes: &[u8], communes: Option<&Communes>) -> ParsedStations {
    let mut out = ParsedStations::default();
    let mut rdr = reader(bytes);
    let mut records = rdr.byte_records();
    let err = |line: u64, reason: String| RowError {
        line,
        reason,
        kind: None,
    };
    let columns = match records.next() {
        None => {
            out.errors.push(err(
                1,
                format!("the file is empty; expected the header `{}`", HEADER.join(",")),
            ));
            return out;
        }
        Some(Err(e)) => {
            out.errors.push(err(1, format!("cannot read the header: {e}")));
            return out;
        }
        Some(Ok(rec)) => match decode(&rec) {
            Err(_) => {
                out.errors.push(err(
                    1,
                    "the header is not valid UTF-8 (save the file as UTF-8)".into(),
                ));
                return out;
            }
            Ok(fields) => {
                let got: Vec<&str> = fields.iter().map(String::as_str).collect();
                if got == HEADER {
                    8
                } else if got == HEADER[..7] {
                    7
                } else {
                    out.errors.push(err(
                        1,
                        format!(
                            "the header is `{}`; expected `{}` (`language` may be left out)",
                            got.join(","),
                            HEADER.join(",")
                        ),
                    ));
                    return out;
                }
            }
        },
    };

    let mut seen: HashMap<StationKey, u64> = HashMap::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                out.errors.push(err(line, format!("cannot read the row: {e}")));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let fields = match decode(&rec) {
            Ok(f) => f,
            Err(col) => {
                let name = HEADER.get(col).copied().unwrap_or("an extra column");
                out.errors.push(err(
                    line,
                    format!("`{name}` is not valid UTF-8 text (save the file as UTF-8)"),
                ));
                continue;
            }
        };
        if fields.len() != columns {
            out.errors.push(err(
                line,
                format!("has {} columns; expected {columns} like the header", fields.len()),
            ));
            continue;
        }
        match parse_row(line, &fields, communes) {
            Ok(st) => {
                if let Some(first) = seen.get(&st.key()) {
                    out.errors.push(RowError {
                        line,
                        reason: format!(
                            "duplicate station `{}` in village `{}` of commune {} (first on line {first})",
                            st.station, st.village, st.commune_code
                        ),
                        kind: Some(st.kind),
                    });
                } else {
                    seen.insert(st.key(), line);
                    out.stations.push(st);
                }
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}

fn parse_row(line: u64, f: &[String], communes: Option<&Communes>) -> std::result::Result<Station, RowError> {
    let kind = f[3].parse::<DeviceKind>().ok();
    let mut reasons: Vec<String> = Vec::new();
    let commune_code = f[0].clone();
    if !is_commune_code(&commune_code) {
        reasons.push(format!(
            "commune_code `{commune_code}` is not a 5-digit commune code"
        ));
    } else if let Some(known) = communes
        && !known.contains_key(&commune_code)
    {
        reasons.push(format!(
            "commune_code `{commune_code}` is not in the communes list"
        ));
    }
    if f[1].is_empty() {
        reasons.push("village is empty".into());
    }
    if f[2].is_empty() {
        reasons.push("station is empty".into());
    }
    if kind.is_none() {
        reasons.push(format!(
            "kind `{}` is unknown; expected loudspeaker or board",
            f[3]
        ));
    }
    let mut coord = |name: &str, s: &str, (lo, hi): (f64, f64)| -> Option<f64> {
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Some(v),
            Ok(v) if v.is_finite() => {
                reasons.push(format!("{name} {s} is outside Vietnam (expected {lo} to {hi})"));
                None
            }
            _ => {
                reasons.push(format!(
                    "{name} `{s}` is not a number (decimal degrees, e.g. 22.48)"
                ));
                None
            }
        }
    };
    let (lat, lon) = match (f[4].is_empty(), f[5].is_empty()) {
        (true, true) => (None, None),
        (false, false) => (coord("lat", &f[4], LAT_RANGE), coord("lon", &f[5], LON_RANGE)),
        _ => {
            reasons.push("give both lat and lon, or neither".into());
            (None, None)
        }
    };
    let audio_output = if f[6].is_empty() {
        "alsa".to_string()
    } else {
        f[6].clone()
    };
    if let Err(m) = audio_output.parse::<AudioOutput>() {
        reasons.push(format!("audio_output: {m}"));
    }
    let language = f.get(7).filter(|s| !s.is_empty()).cloned();
    if let Some(l) = &language
        && !is_language(l)
    {
        reasons.push(format!(
            "language `{l}` is not a language tag (2 to 8 lowercase letters or '-', e.g. vi or hmn)"
        ));
    }
    if !reasons.is_empty() {
        return Err(RowError {
            line,
            reason: reasons.join("; "),
            kind,
        });
    }
    Ok(Station {
        line,
        commune_code,
        village: f[1].clone(),
        station: f[2].clone(),
        kind: kind.expect("checked"),
        lat,
        lon,
        audio_output,
        language,
    })
}

/// Read a communes table (`code,name`, header optional).
pub fn read_communes(path: &Path) -> Result<Communes> {
    let bytes = std::fs::read(path).map_err(|e| ProvisionError::io(path, e))?;
    parse_communes(&bytes).map_err(|errors| ProvisionError::InvalidCommunes {
        file: path.to_path_buf(),
        errors,
    })
}

/// Parse a communes table (`code,name`, header optional).
pub fn parse_communes(bytes: &[u8]) -> std::result::Result<Communes, Vec<RowError>> {
    let mut out = Communes::new();
    let mut errors = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (i, rec) in reader(bytes).byte_records().enumerate() {
        let err = |line: u64, reason: String| RowError {
            line,
            reason,
            kind: None,
        };
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(err(e.position().map(|p| p.line()).unwrap_or(0), e.to_string()));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let Ok(f) = decode(&rec) else {
            errors.push(err(line, "not valid UTF-8 text".into()));
            continue;
        };
        if i == 0 && f.first().map(String::as_str) == Some("code") {
            continue;
        }
        if f.len() != 2 {
            errors.push(err(
                line,
                format!("has {} columns; expected 2 (code,name)", f.len()),
            ));
            continue;
        }
        if !is_commune_code(&f[0]) {
            errors.push(err(line, format!("`{}` is not a 5-digit commune code", f[0])));
            continue;
        }
        if f[1].is_empty() {
            errors.push(err(line, "name is empty".into()));
            continue;
        }
        if let Some(first) = first_line.get(&f[0]) {
            errors.push(err(
                line,
                format!("duplicate code {} (first on line {first})", f[0]),
            ));
            continue;
        }
        first_line.insert(f[0].clone(), line);
        out.insert(f[0].clone(), f[1].clone());
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_file_parses_with_and_without_language() {
        let p = parse_stations(
            "commune_code,village,station,kind,lat,lon,audio_output,language\n\
             08003,Bản Phố,Cụm 1,loudspeaker,22.48,103.97,alsa,hmn\n\
             08003,Bản Phố,Bảng 1,board,,,null,\n"
                .as_bytes(),
            None,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.stations.len(), 2);
        assert_eq!(p.stations[0].language.as_deref(), Some("hmn"));
        assert_eq!(p.stations[1].line, 3);
        let p = parse_stations(
            "commune_code,village,station,kind,lat,lon,audio_output\n08003,A,B,board,,,\n".as_bytes(),
            None,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.stations[0].audio_output, "alsa");
    }
}
