//! CAP 1.2 (OASIS Common Alerting Protocol, issue 12 §4) as nguon reads and writes it: the
//! alert model ([`Alert`], [`Info`], [`Area`]), the parser with the standard's validation
//! ([`parse`]: `roxmltree` with DTDs refused, 1 MiB limit, the CAP 1.2 namespace, required
//! elements present and in order, enumerations, dateTime with an offset, closed polygons of at
//! least 4 points, circles `lat,lon radius`, coordinates inside WGS 84), the writer
//! ([`write::to_xml`]) and point-in-area targeting ([`geo`]). Pure: no I/O, no clock (the caller
//! passes `now`).
//!
//! Errors are 422 `invalid_cap` whose message starts with the element path
//! (`/alert/info[1]/area[2]/polygon[1]: …`), or 413 for a document over [`MAX_BYTES`].

pub mod geo;
pub mod lang;
pub mod parse;
pub mod write;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

pub use geo::{Circle, Point, Polygon};
pub use parse::parse;

/// The CAP 1.2 XML namespace.
pub const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// Largest CAP document accepted, in bytes.
pub const MAX_BYTES: usize = 1 << 20;

macro_rules! cap_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name { $(#[doc = $s] #[serde(rename = $s)] $v),+ }

        impl $name {
            /// Every value, in the standard's order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The value as CAP spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            /// The value spelled `s` (case-sensitive, as the standard says).
            pub fn from_cap(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

cap_enum!(
    /// `<status>`: only `Actual` reaches loudspeakers (`Exercise` where an area allows it).
    Status { Actual = "Actual", Exercise = "Exercise", System = "System", Test = "Test", Draft = "Draft" }
);
cap_enum!(
    /// `<msgType>`.
    MsgType { Alert = "Alert", Update = "Update", Cancel = "Cancel", Ack = "Ack", Error = "Error" }
);
cap_enum!(
    /// `<scope>`.
    Scope { Public = "Public", Restricted = "Restricted", Private = "Private" }
);
cap_enum!(
    /// `<category>`.
    Category {
        Geo = "Geo", Met = "Met", Safety = "Safety", Security = "Security", Rescue = "Rescue",
        Fire = "Fire", Health = "Health", Env = "Env", Transport = "Transport", Infra = "Infra",
        Cbrne = "CBRNE", Other = "Other",
    }
);
cap_enum!(
    /// `<responseType>`.
    ResponseType {
        Shelter = "Shelter", Evacuate = "Evacuate", Prepare = "Prepare", Execute = "Execute",
        Avoid = "Avoid", Monitor = "Monitor", Assess = "Assess", AllClear = "AllClear", None = "None",
    }
);
cap_enum!(
    /// `<urgency>`.
    Urgency { Immediate = "Immediate", Expected = "Expected", Future = "Future", Past = "Past", Unknown = "Unknown" }
);
cap_enum!(
    /// `<severity>`.
    Severity { Extreme = "Extreme", Severe = "Severe", Moderate = "Moderate", Minor = "Minor", Unknown = "Unknown" }
);
cap_enum!(
    /// `<certainty>` (`Very Likely` is CAP 1.0's spelling and is refused).
    Certainty { Observed = "Observed", Likely = "Likely", Possible = "Possible", Unlikely = "Unlikely", Unknown = "Unknown" }
);

/// A `valueName`/`value` pair (`<eventCode>`, `<parameter>`, `<geocode>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedValue {
    /// `<valueName>`, e.g. `ISO3166-2`.
    pub name: String,
    /// `<value>`, e.g. `VN-02`.
    pub value: String,
}

impl NamedValue {
    /// `name=value`, as an area's configured geocodes spell it.
    pub fn key(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

/// One `<references>` entry: `sender,identifier,sent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// The referenced alert's sender.
    pub sender: String,
    /// Its identifier.
    pub identifier: String,
    /// Its `sent`, as written.
    pub sent: String,
}

/// A `<resource>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// `<resourceDesc>`.
    pub desc: String,
    /// `<mimeType>`.
    pub mime_type: String,
    /// `<size>` in bytes.
    pub size: Option<u64>,
    /// `<uri>`.
    pub uri: Option<String>,
    /// `<derefUri>` (base64), kept as written.
    pub deref_uri: Option<String>,
    /// `<digest>` (SHA-1 hex).
    pub digest: Option<String>,
}

/// An `<area>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Area {
    /// `<areaDesc>`.
    pub desc: String,
    /// `<polygon>`s, closed.
    pub polygons: Vec<Polygon>,
    /// `<circle>`s.
    pub circles: Vec<Circle>,
    /// `<geocode>`s.
    pub geocodes: Vec<NamedValue>,
    /// `<altitude>` in feet.
    pub altitude: Option<f64>,
    /// `<ceiling>` in feet (only with an altitude).
    pub ceiling: Option<f64>,
}

impl Area {
    /// Whether the area is drawn (a polygon or a circle): its geocodes then do not target.
    pub fn has_shape(&self) -> bool {
        !self.polygons.is_empty() || !self.circles.is_empty()
    }

    /// Whether `p` lies inside one of its polygons or circles.
    pub fn covers(&self, p: Point) -> bool {
        self.polygons.iter().any(|g| g.contains(p)) || self.circles.iter().any(|c| c.contains(p))
    }
}

/// An `<info>` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Info {
    /// `<language>` (RFC 3066; `en-US` when absent, as the standard says).
    pub language: String,
    /// Whether `<language>` was written (the writer keeps it absent otherwise).
    #[serde(skip)]
    pub language_given: bool,
    /// `<category>`s (at least one).
    pub categories: Vec<Category>,
    /// `<event>`.
    pub event: String,
    /// `<responseType>`s.
    pub response_types: Vec<ResponseType>,
    /// `<urgency>`.
    pub urgency: Urgency,
    /// `<severity>`.
    pub severity: Severity,
    /// `<certainty>`.
    pub certainty: Certainty,
    /// `<audience>`.
    pub audience: Option<String>,
    /// `<eventCode>`s.
    pub event_codes: Vec<NamedValue>,
    /// `<effective>`.
    pub effective: Option<DateTime<FixedOffset>>,
    /// `<onset>`.
    pub onset: Option<DateTime<FixedOffset>>,
    /// `<expires>`.
    pub expires: Option<DateTime<FixedOffset>>,
    /// `<senderName>`.
    pub sender_name: Option<String>,
    /// `<headline>`.
    pub headline: Option<String>,
    /// `<description>`.
    pub description: Option<String>,
    /// `<instruction>`.
    pub instruction: Option<String>,
    /// `<web>`.
    pub web: Option<String>,
    /// `<contact>`.
    pub contact: Option<String>,
    /// `<parameter>`s.
    pub parameters: Vec<NamedValue>,
    /// `<resource>`s.
    pub resources: Vec<Resource>,
    /// `<area>`s.
    pub areas: Vec<Area>,
}

impl Info {
    /// The language's primary subtag, lowercase (`vi` for `vi-VN`).
    pub fn primary_language(&self) -> String {
        self.language
            .split('-')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    /// What loudspeakers read: headline, description, instruction, each ending a sentence.
    pub fn spoken_text(&self) -> String {
        let mut parts = Vec::new();
        for p in [&self.headline, &self.description, &self.instruction]
            .into_iter()
            .flatten()
        {
            let t = p.split_whitespace().collect::<Vec<_>>().join(" ");
            if t.is_empty() {
                continue;
            }
            if t.ends_with(['.', '!', '?']) {
                parts.push(t);
            } else {
                parts.push(format!("{t}."));
            }
        }
        if parts.is_empty() {
            parts.push(format!("{}.", self.event.trim()));
        }
        parts.join(" ")
    }
}

/// A CAP 1.2 `<alert>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `<identifier>`.
    pub identifier: String,
    /// `<sender>`.
    pub sender: String,
    /// `<sent>`.
    pub sent: DateTime<FixedOffset>,
    /// `<status>`.
    pub status: Status,
    /// `<msgType>`.
    pub msg_type: MsgType,
    /// `<source>`.
    pub source: Option<String>,
    /// `<scope>`.
    pub scope: Scope,
    /// `<restriction>` (required when the scope is `Restricted`).
    pub restriction: Option<String>,
    /// `<addresses>` (required when the scope is `Private`).
    pub addresses: Option<String>,
    /// `<code>`s.
    pub codes: Vec<String>,
    /// `<note>`.
    pub note: Option<String>,
    /// `<references>`.
    pub references: Vec<Reference>,
    /// `<incidents>`.
    pub incidents: Option<String>,
    /// `<info>` blocks.
    pub infos: Vec<Info>,
}

impl Alert {
    /// The latest `<expires>` of its infos; `None` when an info has none (it does not expire).
    pub fn expires(&self) -> Option<DateTime<FixedOffset>> {
        if self.infos.is_empty() || self.infos.iter().any(|i| i.expires.is_none()) {
            return None;
        }
        self.infos.iter().filter_map(|i| i.expires).max()
    }

    /// Whether it has expired at `now`.
    pub fn expired_at(&self, now: DateTime<chrono::Utc>) -> bool {
        self.expires().is_some_and(|e| e <= now)
    }

    /// Every `<area>` of every info.
    pub fn areas(&self) -> impl Iterator<Item = &Area> {
        self.infos.iter().flat_map(|i| i.areas.iter())
    }

    /// Whether a loudspeaker at `p` is targeted by a drawn area (polygon or circle).
    pub fn covers(&self, p: Point) -> bool {
        self.areas().any(|a| a.covers(p))
    }

    /// The `name=value` geocodes of the areas that are not drawn (those target by geocode).
    pub fn geocode_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .areas()
            .filter(|a| !a.has_shape())
            .flat_map(|a| a.geocodes.iter().map(NamedValue::key))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The info to speak for an area whose languages are `langs` (primary subtags, in order of
    /// preference): the first info in one of them, else the first info.
    pub fn info_for(&self, langs: &[String]) -> Option<&Info> {
        langs
            .iter()
            .find_map(|l| self.infos.iter().find(|i| &i.primary_language() == l))
            .or_else(|| self.infos.first())
    }
}

#[cfg(test)]
mod tests;
