//! The CAP 1.2 writer: an [`Alert`] as a document the parser (and any CAP 1.2 consumer) reads
//! back, elements in the standard's order, text escaped.

use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset};

use super::{Alert, Area, Info, NAMESPACE, NamedValue, Resource};

/// A CAP dateTime (`2026-12-03T09:00:00+07:00`).
pub fn date_time(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            // A parser turns a raw carriage return into a line feed: keep it as written.
            '\r' => o.push_str("&#13;"),
            c => o.push(c),
        }
    }
    o
}

struct W {
    out: String,
    depth: usize,
}

impl W {
    fn leaf(&mut self, name: &str, value: &str) {
        let pad = "  ".repeat(self.depth);
        let _ = writeln!(self.out, "{pad}<{name}>{}</{name}>", escape(value));
    }

    fn opt(&mut self, name: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.leaf(name, v);
        }
    }

    fn open(&mut self, name: &str) {
        let pad = "  ".repeat(self.depth);
        let _ = writeln!(self.out, "{pad}<{name}>");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        let pad = "  ".repeat(self.depth);
        let _ = writeln!(self.out, "{pad}</{name}>");
    }

    fn named(&mut self, name: &str, v: &NamedValue) {
        self.open(name);
        self.leaf("valueName", &v.name);
        self.leaf("value", &v.value);
        self.close(name);
    }
}

/// `alert` as a CAP 1.2 XML document.
pub fn to_xml(alert: &Alert) -> String {
    let mut w = W {
        out: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"{NAMESPACE}\">\n"),
        depth: 1,
    };
    w.leaf("identifier", &alert.identifier);
    w.leaf("sender", &alert.sender);
    w.leaf("sent", &date_time(&alert.sent));
    w.leaf("status", alert.status.as_str());
    w.leaf("msgType", alert.msg_type.as_str());
    w.opt("source", &alert.source);
    w.leaf("scope", alert.scope.as_str());
    w.opt("restriction", &alert.restriction);
    w.opt("addresses", &alert.addresses);
    for c in &alert.codes {
        w.leaf("code", c);
    }
    w.opt("note", &alert.note);
    if !alert.references.is_empty() {
        let refs: Vec<String> = alert
            .references
            .iter()
            .map(|r| format!("{},{},{}", r.sender, r.identifier, r.sent))
            .collect();
        w.leaf("references", &refs.join(" "));
    }
    w.opt("incidents", &alert.incidents);
    for i in &alert.infos {
        info(&mut w, i);
    }
    w.out.push_str("</alert>\n");
    w.out
}

fn info(w: &mut W, i: &Info) {
    w.open("info");
    if i.language_given {
        w.leaf("language", &i.language);
    }
    for c in &i.categories {
        w.leaf("category", c.as_str());
    }
    w.leaf("event", &i.event);
    for r in &i.response_types {
        w.leaf("responseType", r.as_str());
    }
    w.leaf("urgency", i.urgency.as_str());
    w.leaf("severity", i.severity.as_str());
    w.leaf("certainty", i.certainty.as_str());
    w.opt("audience", &i.audience);
    for c in &i.event_codes {
        w.named("eventCode", c);
    }
    for (name, t) in [
        ("effective", &i.effective),
        ("onset", &i.onset),
        ("expires", &i.expires),
    ] {
        if let Some(t) = t {
            w.leaf(name, &date_time(t));
        }
    }
    w.opt("senderName", &i.sender_name);
    w.opt("headline", &i.headline);
    w.opt("description", &i.description);
    w.opt("instruction", &i.instruction);
    w.opt("web", &i.web);
    w.opt("contact", &i.contact);
    for p in &i.parameters {
        w.named("parameter", p);
    }
    for r in &i.resources {
        resource(w, r);
    }
    for a in &i.areas {
        area(w, a);
    }
    w.close("info");
}

fn resource(w: &mut W, r: &Resource) {
    w.open("resource");
    w.leaf("resourceDesc", &r.desc);
    w.leaf("mimeType", &r.mime_type);
    if let Some(s) = r.size {
        w.leaf("size", &s.to_string());
    }
    w.opt("uri", &r.uri);
    w.opt("derefUri", &r.deref_uri);
    w.opt("digest", &r.digest);
    w.close("resource");
}

fn area(w: &mut W, a: &Area) {
    w.open("area");
    w.leaf("areaDesc", &a.desc);
    for p in &a.polygons {
        w.leaf("polygon", &p.to_cap());
    }
    for c in &a.circles {
        w.leaf("circle", &c.to_cap());
    }
    for g in &a.geocodes {
        w.named("geocode", g);
    }
    if let Some(v) = a.altitude {
        w.leaf("altitude", &v.to_string());
    }
    if let Some(v) = a.ceiling {
        w.leaf("ceiling", &v.to_string());
    }
    w.close("area");
}
