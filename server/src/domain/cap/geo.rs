//! CAP geometry in WGS 84: points (`lat,lon`), polygons (closed rings of at least 4 points) and
//! circles (`lat,lon radius` in km), their parsing from CAP's text forms, and whether a
//! loudspeaker's position lies inside (ray casting for polygons, haversine distance for circles).

use serde::Serialize;

/// Mean Earth radius, km (the haversine sphere).
pub const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// A WGS 84 position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

impl Point {
    /// A checked point: finite, latitude −90..90, longitude −180..180.
    pub fn new(lat: f64, lon: f64) -> Result<Point, String> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(format!("coordinates must be numbers, not `{lat},{lon}`"));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(format!("latitude {lat} is outside −90..90"));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(format!("longitude {lon} is outside −180..180"));
        }
        Ok(Point { lat, lon })
    }

    /// `lat,lon` as CAP writes a point.
    pub fn parse(s: &str) -> Result<Point, String> {
        let (a, b) = s
            .split_once(',')
            .ok_or_else(|| format!("`{s}` is not `lat,lon`"))?;
        let num = |t: &str| {
            let t = t.trim();
            // Rust's float parser also takes `NaN`, `inf` and `infinity`: CAP coordinates are
            // decimal numbers only.
            if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c)) {
                return Err(format!("`{t}` is not a decimal number"));
            }
            t.parse::<f64>()
                .map_err(|_| format!("`{t}` is not a decimal number"))
        };
        Point::new(num(a)?, num(b)?)
    }

    /// Great-circle distance to `o`, km.
    pub fn distance_km(self, o: Point) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), o.lat.to_radians());
        let dp = p2 - p1;
        let dl = (o.lon - self.lon).to_radians();
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
    }
}

/// A closed polygon (first point = last point, at least 4 points).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Polygon(pub Vec<Point>);

impl Polygon {
    /// A `<polygon>`'s text: whitespace-separated `lat,lon` pairs.
    pub fn parse(s: &str) -> Result<Polygon, String> {
        let pts = s
            .split_whitespace()
            .map(Point::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if pts.len() < 4 {
            return Err(format!(
                "a polygon needs at least 4 points (the first repeated last), not {}",
                pts.len()
            ));
        }
        if pts.first() != pts.last() {
            return Err("the polygon is not closed: its last point must repeat its first".into());
        }
        Ok(Polygon(pts))
    }

    /// Whether `p` lies inside (even-odd rule, longitude as x, latitude as y).
    pub fn contains(&self, p: Point) -> bool {
        let v = &self.0;
        let mut inside = false;
        let mut j = v.len() - 1;
        for i in 0..v.len() {
            let (a, b) = (v[i], v[j]);
            if (a.lat > p.lat) != (b.lat > p.lat)
                && p.lon < (b.lon - a.lon) * (p.lat - a.lat) / (b.lat - a.lat) + a.lon
            {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// CAP's text form.
    pub fn to_cap(&self) -> String {
        self.0
            .iter()
            .map(|p| format!("{},{}", p.lat, p.lon))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A circle: centre and radius in km.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Circle {
    /// Centre.
    pub center: Point,
    /// Radius, km (≥ 0).
    pub radius_km: f64,
}

impl Circle {
    /// A `<circle>`'s text: `lat,lon radius`.
    pub fn parse(s: &str) -> Result<Circle, String> {
        let mut parts = s.split_whitespace();
        let (Some(c), Some(r), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{}` is not `lat,lon radius`", s.trim()));
        };
        let center = Point::parse(c)?;
        let radius_km = if r.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            r.parse::<f64>().ok()
        } else {
            None
        }
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("radius `{r}` is not a number of km ≥ 0"))?;
        Ok(Circle { center, radius_km })
    }

    /// Whether `p` lies inside (haversine distance ≤ radius).
    pub fn contains(&self, p: Point) -> bool {
        self.center.distance_km(p) <= self.radius_km
    }

    /// CAP's text form.
    pub fn to_cap(&self) -> String {
        format!("{},{} {}", self.center.lat, self.center.lon, self.radius_km)
    }
}

#[cfg(test)]
mod tests {
    use super::{Circle, Point, Polygon};

    #[test]
    fn points_are_checked() {
        assert!(Point::parse("21.0,105.8").is_ok());
        for bad in [
            "NaN,105", "21,inf", "91,0", "0,181", "-90.1,0", "21;105", "", "1e999,0",
        ] {
            assert!(Point::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn polygons_are_closed_rings_of_four_points_or_more() {
        assert!(Polygon::parse("0,0 0,1 1,1 0,0").is_ok());
        assert!(Polygon::parse("0,0 0,1 0,0").is_err(), "3 points");
        assert!(Polygon::parse("0,0 0,1 1,1 1,0").is_err(), "open");
    }

    #[test]
    fn point_in_polygon() {
        // A square around Hà Giang town.
        let g = Polygon::parse("22.7,104.9 22.7,105.1 22.9,105.1 22.9,104.9 22.7,104.9").unwrap();
        assert!(g.contains(Point::new(22.8, 105.0).unwrap()));
        assert!(!g.contains(Point::new(22.95, 105.0).unwrap()));
        assert!(!g.contains(Point::new(22.8, 105.2).unwrap()));
        // A concave (L-shaped) polygon: the notch is outside.
        let l = Polygon::parse("0,0 0,2 1,2 1,1 2,1 2,0 0,0").unwrap();
        assert!(l.contains(Point::new(0.5, 1.5).unwrap()));
        assert!(l.contains(Point::new(1.5, 0.5).unwrap()));
        assert!(!l.contains(Point::new(1.5, 1.5).unwrap()));
    }

    #[test]
    fn circles_use_great_circle_distance() {
        let c = Circle::parse("21.0285,105.8542 10").unwrap();
        // About 8.9 km north (0.08° of latitude) is inside, about 11.1 km (0.1°) outside.
        assert!(c.contains(Point::new(21.1085, 105.8542).unwrap()));
        assert!(!c.contains(Point::new(21.1285, 105.8542).unwrap()));
        // Hà Nội to Hồ Chí Minh City is about 1,140 km.
        let d = Point::new(21.0285, 105.8542)
            .unwrap()
            .distance_km(Point::new(10.8231, 106.6297).unwrap());
        assert!((1130.0..1150.0).contains(&d), "{d}");
        for bad in ["21,105", "21,105 -1", "21,105 NaN", "21,105 1 2", "x 1"] {
            assert!(Circle::parse(bad).is_err(), "{bad}");
        }
    }
}
