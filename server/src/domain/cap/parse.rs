//! The CAP 1.2 parser: bytes → [`Alert`], with the standard's rules checked. The XML is read by
//! `roxmltree` with its default options, which refuse any DTD with declarations (so no external
//! entity is ever resolved and no entity expansion can explode), plus a node limit. Each
//! element's children must be the standard's, in the standard's order, each required one
//! present and the single ones not repeated; every refusal names the element by its path.

use chrono::{DateTime, FixedOffset};
use roxmltree::{Document, Node, ParsingOptions};

use super::{
    Alert, Area, Category, Certainty, Circle, Info, MAX_BYTES, MsgType, NAMESPACE, NamedValue, Polygon,
    Reference, Resource, ResponseType, Scope, Severity, Status, Urgency,
};
use crate::error::{Error, Result};

/// Most XML nodes a CAP document may have.
const MAX_NODES: u32 = 100_000;
/// Namespaces whose elements may close an `<alert>` (XML signature and encryption) and are skipped.
const SIGNATURE_NAMESPACES: [&str; 2] = [
    "http://www.w3.org/2000/09/xmldsig#",
    "http://www.w3.org/2001/04/xmlenc#",
];

/// How often a child element may occur.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Occurs {
    /// Exactly once.
    One,
    /// Zero or once.
    Optional,
    /// Zero or more.
    Many,
    /// One or more.
    OneOrMore,
}
use Occurs::{Many, One, OneOrMore, Optional};

const ALERT: &[(&str, Occurs)] = &[
    ("identifier", One),
    ("sender", One),
    ("sent", One),
    ("status", One),
    ("msgType", One),
    ("source", Optional),
    ("scope", One),
    ("restriction", Optional),
    ("addresses", Optional),
    ("code", Many),
    ("note", Optional),
    ("references", Optional),
    ("incidents", Optional),
    ("info", Many),
];
const INFO: &[(&str, Occurs)] = &[
    ("language", Optional),
    ("category", OneOrMore),
    ("event", One),
    ("responseType", Many),
    ("urgency", One),
    ("severity", One),
    ("certainty", One),
    ("audience", Optional),
    ("eventCode", Many),
    ("effective", Optional),
    ("onset", Optional),
    ("expires", Optional),
    ("senderName", Optional),
    ("headline", Optional),
    ("description", Optional),
    ("instruction", Optional),
    ("web", Optional),
    ("contact", Optional),
    ("parameter", Many),
    ("resource", Many),
    ("area", Many),
];
const NAMED_VALUE: &[(&str, Occurs)] = &[("valueName", One), ("value", One)];
const RESOURCE: &[(&str, Occurs)] = &[
    ("resourceDesc", One),
    ("mimeType", One),
    ("size", Optional),
    ("uri", Optional),
    ("derefUri", Optional),
    ("digest", Optional),
];
const AREA: &[(&str, Occurs)] = &[
    ("areaDesc", One),
    ("polygon", Many),
    ("circle", Many),
    ("geocode", Many),
    ("altitude", Optional),
    ("ceiling", Optional),
];

/// A 422 `invalid_cap` naming `path`.
pub fn invalid(path: &str, why: impl std::fmt::Display) -> Error {
    Error::unprocessable("invalid_cap", format!("{path}: {why}"))
}

/// Parse and validate a CAP 1.2 document.
pub fn parse(bytes: &[u8]) -> Result<Alert> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::TooLarge(format!(
            "a CAP document may be at most {MAX_BYTES} bytes, not {}",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| invalid("/", format!("not UTF-8 ({e})")))?;
    let opts = ParsingOptions {
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    debug_assert!(!opts.allow_dtd, "DTDs stay refused (XXE, billion laughs)");
    let doc = Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => invalid("/", "a DTD is refused (no entities are processed)"),
        other => invalid("/", format!("not well-formed XML: {other}")),
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "alert" || root.tag_name().namespace() != Some(NAMESPACE) {
        return Err(invalid(
            &format!("/{}", root.tag_name().name()),
            format!("the root must be `alert` in namespace {NAMESPACE}"),
        ));
    }
    alert(root)
}

/// The element children of `node`, checked against `schema`: known names in the CAP namespace,
/// in order, each single one at most once, each required one present. Returns them with their
/// paths.
fn children<'a, 'i>(
    node: Node<'a, 'i>,
    path: &str,
    schema: &[(&str, Occurs)],
    signature_tail: bool,
) -> Result<Vec<(Node<'a, 'i>, String)>> {
    let mut out = Vec::new();
    let mut counts = vec![0usize; schema.len()];
    let mut at = 0usize;
    let mut tail = false;
    for c in node.children() {
        if c.is_text() {
            if c.text().is_some_and(|t| !t.trim().is_empty()) {
                return Err(invalid(path, "text is not allowed between elements"));
            }
            continue;
        }
        if !c.is_element() {
            continue;
        }
        let name = c.tag_name().name();
        let ns = c.tag_name().namespace();
        if signature_tail && ns.is_some_and(|n| SIGNATURE_NAMESPACES.contains(&n)) {
            tail = true;
            continue;
        }
        let here = format!("{path}/{name}");
        if ns != Some(NAMESPACE) {
            return Err(invalid(&here, format!("element not in namespace {NAMESPACE}")));
        }
        let Some(i) = schema.iter().position(|(n, _)| *n == name) else {
            return Err(invalid(&here, "unknown element"));
        };
        counts[i] += 1;
        let (_, occurs) = schema[i];
        let p = if matches!(occurs, Many | OneOrMore) {
            format!("{here}[{}]", counts[i])
        } else {
            here
        };
        if tail {
            return Err(invalid(&p, "must come before the signature"));
        }
        if i < at {
            return Err(invalid(
                &p,
                format!("out of order: it must come before `{}`", schema[at].0),
            ));
        }
        at = i;
        if matches!(occurs, One | Optional) && counts[i] > 1 {
            return Err(invalid(&p, "may occur only once"));
        }
        out.push((c, p));
    }
    for (i, (name, occurs)) in schema.iter().enumerate() {
        if matches!(occurs, One | OneOrMore) && counts[i] == 0 {
            return Err(invalid(&format!("{path}/{name}"), "required element is missing"));
        }
    }
    Ok(out)
}

/// The text of a simple element (no child elements), trimmed; empty is refused.
fn text(node: Node, path: &str) -> Result<String> {
    let mut s = String::new();
    for c in node.children() {
        if c.is_element() {
            return Err(invalid(path, "must hold text, not elements"));
        }
        if let Some(t) = c.text() {
            s.push_str(t);
        }
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(invalid(path, "must not be empty"));
    }
    Ok(t.to_string())
}

fn find<'a, 'i>(kids: &[(Node<'a, 'i>, String)], name: &str) -> Option<(Node<'a, 'i>, String)> {
    kids.iter().find(|(n, _)| n.tag_name().name() == name).cloned()
}

fn all<'a, 'i>(kids: &[(Node<'a, 'i>, String)], name: &str) -> Vec<(Node<'a, 'i>, String)> {
    kids.iter()
        .filter(|(n, _)| n.tag_name().name() == name)
        .cloned()
        .collect()
}

fn opt_text(kids: &[(Node, String)], name: &str) -> Result<Option<String>> {
    find(kids, name).map(|(n, p)| text(n, &p)).transpose()
}

fn req_text(kids: &[(Node, String)], name: &str) -> Result<String> {
    let (n, p) = find(kids, name).ok_or_else(|| invalid(name, "required element is missing"))?;
    text(n, &p)
}

fn enumerated<T>(n: Node, p: &str, from: fn(&str) -> Option<T>, all: &[T]) -> Result<T>
where
    T: std::fmt::Display,
{
    let t = text(n, p)?;
    from(&t).ok_or_else(|| {
        let allowed: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        invalid(p, format!("`{t}` is not one of {}", allowed.join(", ")))
    })
}

macro_rules! one_enum {
    ($kids:expr, $name:literal, $ty:ty) => {{
        let (n, p) = find($kids, $name).ok_or_else(|| invalid($name, "required element is missing"))?;
        enumerated(n, &p, <$ty>::from_cap, <$ty>::ALL)?
    }};
}

/// A CAP dateTime: `YYYY-MM-DDThh:mm:ss` with a numeric offset (`Z` is refused by the standard).
pub fn date_time(s: &str, path: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%:z").map_err(|_| {
        invalid(
            path,
            format!(
                "`{s}` is not a CAP dateTime such as 2026-12-03T09:00:00+07:00 (offset required, no `Z`)"
            ),
        )
    })
}

fn opt_time(kids: &[(Node, String)], name: &str) -> Result<Option<DateTime<FixedOffset>>> {
    find(kids, name)
        .map(|(n, p)| date_time(&text(n, &p)?, &p))
        .transpose()
}

/// An `identifier`/`sender`: no whitespace, comma or the XML-restricted `<` and `&`.
fn token(kids: &[(Node, String)], name: &str) -> Result<String> {
    let (n, p) = find(kids, name).ok_or_else(|| invalid(name, "required element is missing"))?;
    let t = text(n, &p)?;
    if t.chars()
        .any(|c| c.is_whitespace() || matches!(c, ',' | '<' | '&'))
    {
        return Err(invalid(&p, "must not contain spaces, commas, `<` or `&`"));
    }
    Ok(t)
}

fn named_values(kids: &[(Node, String)], name: &str) -> Result<Vec<NamedValue>> {
    all(kids, name)
        .into_iter()
        .map(|(n, p)| {
            let k = children(n, &p, NAMED_VALUE, false)?;
            Ok(NamedValue {
                name: req_text(&k, "valueName")?,
                value: req_text(&k, "value")?,
            })
        })
        .collect()
}

fn number(n: Node, p: &str) -> Result<f64> {
    let t = text(n, p)?;
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && t.bytes().all(|b| b.is_ascii_digit() || b"+-.".contains(&b)))
        .ok_or_else(|| invalid(p, format!("`{t}` is not a decimal number")))
}

fn alert(root: Node) -> Result<Alert> {
    let path = "/alert";
    let k = children(root, path, ALERT, true)?;
    let (sent_n, sent_p) = find(&k, "sent").ok_or_else(|| invalid("/alert/sent", "missing"))?;
    let sent = date_time(&text(sent_n, &sent_p)?, &sent_p)?;
    let scope = one_enum!(&k, "scope", Scope);
    let restriction = opt_text(&k, "restriction")?;
    let addresses = opt_text(&k, "addresses")?;
    if scope == Scope::Restricted && restriction.is_none() {
        return Err(invalid(
            "/alert/restriction",
            "required when the scope is Restricted",
        ));
    }
    if scope == Scope::Private && addresses.is_none() {
        return Err(invalid("/alert/addresses", "required when the scope is Private"));
    }
    let references = match find(&k, "references") {
        None => Vec::new(),
        Some((n, p)) => text(n, &p)?
            .split_whitespace()
            .map(|r| {
                let parts: Vec<&str> = r.split(',').collect();
                match parts.as_slice() {
                    [sender, identifier, sent] if !sender.is_empty() && !identifier.is_empty() => {
                        date_time(sent, &p)?;
                        Ok(Reference {
                            sender: sender.to_string(),
                            identifier: identifier.to_string(),
                            sent: sent.to_string(),
                        })
                    }
                    _ => Err(invalid(&p, format!("`{r}` is not `sender,identifier,sent`"))),
                }
            })
            .collect::<Result<_>>()?,
    };
    let codes = all(&k, "code")
        .into_iter()
        .map(|(n, p)| text(n, &p))
        .collect::<Result<_>>()?;
    let infos = all(&k, "info")
        .into_iter()
        .map(|(n, p)| info(n, &p))
        .collect::<Result<_>>()?;
    Ok(Alert {
        identifier: token(&k, "identifier")?,
        sender: token(&k, "sender")?,
        sent,
        status: one_enum!(&k, "status", Status),
        msg_type: one_enum!(&k, "msgType", MsgType),
        source: opt_text(&k, "source")?,
        scope,
        restriction,
        addresses,
        codes,
        note: opt_text(&k, "note")?,
        references,
        incidents: opt_text(&k, "incidents")?,
        infos,
    })
}

fn info(node: Node, path: &str) -> Result<Info> {
    let k = children(node, path, INFO, false)?;
    let language = opt_text(&k, "language")?;
    if let Some(l) = &language
        && !l
            .split('-')
            .all(|s| !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid(
            &format!("{path}/language"),
            format!("`{l}` is not a language tag"),
        ));
    }
    let categories = all(&k, "category")
        .into_iter()
        .map(|(n, p)| enumerated(n, &p, Category::from_cap, Category::ALL))
        .collect::<Result<_>>()?;
    let response_types = all(&k, "responseType")
        .into_iter()
        .map(|(n, p)| enumerated(n, &p, ResponseType::from_cap, ResponseType::ALL))
        .collect::<Result<_>>()?;
    let resources = all(&k, "resource")
        .into_iter()
        .map(|(n, p)| resource(n, &p))
        .collect::<Result<_>>()?;
    let areas = all(&k, "area")
        .into_iter()
        .map(|(n, p)| area(n, &p))
        .collect::<Result<_>>()?;
    Ok(Info {
        language_given: language.is_some(),
        language: language.unwrap_or_else(|| "en-US".into()),
        categories,
        event: req_text(&k, "event")?,
        response_types,
        urgency: one_enum!(&k, "urgency", Urgency),
        severity: one_enum!(&k, "severity", Severity),
        certainty: one_enum!(&k, "certainty", Certainty),
        audience: opt_text(&k, "audience")?,
        event_codes: named_values(&k, "eventCode")?,
        effective: opt_time(&k, "effective")?,
        onset: opt_time(&k, "onset")?,
        expires: opt_time(&k, "expires")?,
        sender_name: opt_text(&k, "senderName")?,
        headline: opt_text(&k, "headline")?,
        description: opt_text(&k, "description")?,
        instruction: opt_text(&k, "instruction")?,
        web: opt_text(&k, "web")?,
        contact: opt_text(&k, "contact")?,
        parameters: named_values(&k, "parameter")?,
        resources,
        areas,
    })
}

fn resource(node: Node, path: &str) -> Result<Resource> {
    let k = children(node, path, RESOURCE, false)?;
    let size = find(&k, "size")
        .map(|(n, p)| {
            let t = text(n, &p)?;
            t.parse::<u64>()
                .map_err(|_| invalid(&p, format!("`{t}` is not a size in bytes")))
        })
        .transpose()?;
    Ok(Resource {
        desc: req_text(&k, "resourceDesc")?,
        mime_type: req_text(&k, "mimeType")?,
        size,
        uri: opt_text(&k, "uri")?,
        deref_uri: opt_text(&k, "derefUri")?,
        digest: opt_text(&k, "digest")?,
    })
}

fn area(node: Node, path: &str) -> Result<Area> {
    let k = children(node, path, AREA, false)?;
    let polygons = all(&k, "polygon")
        .into_iter()
        .map(|(n, p)| Polygon::parse(&text(n, &p)?).map_err(|e| invalid(&p, e)))
        .collect::<Result<_>>()?;
    let circles = all(&k, "circle")
        .into_iter()
        .map(|(n, p)| Circle::parse(&text(n, &p)?).map_err(|e| invalid(&p, e)))
        .collect::<Result<_>>()?;
    let altitude = find(&k, "altitude").map(|(n, p)| number(n, &p)).transpose()?;
    let ceiling = find(&k, "ceiling").map(|(n, p)| number(n, &p)).transpose()?;
    if ceiling.is_some() && altitude.is_none() {
        return Err(invalid(&format!("{path}/ceiling"), "only with an altitude"));
    }
    Ok(Area {
        desc: req_text(&k, "areaDesc")?,
        polygons,
        circles,
        geocodes: named_values(&k, "geocode")?,
        altitude,
        ceiling,
    })
}
