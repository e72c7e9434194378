// nguon console (issue 13): the device map. Loudspeaker clusters and boards at their stored
// position (green online, red offline; boards drawn square), each commune outlined around its
// devices, on the configured tiles or, by default, on a plain background (no internet needed).
// Leaflet is vendored (static/vendor/leaflet). The list's search and status filter also filter
// the map.
(function () {
  "use strict";
  var el = document.getElementById("device-map");
  var data = document.getElementById("map-data");
  if (!el || !data || !window.L) return;
  var cfg = JSON.parse(data.textContent);
  var map = L.map(el, { zoomControl: true, attributionControl: !!cfg.tiles });
  if (cfg.tiles) L.tileLayer(cfg.tiles, { maxZoom: 19 }).addTo(map);

  // Convex hull (monotone chain) of [lat, lon] points.
  function hull(pts) {
    if (pts.length < 3) return pts;
    pts = pts.slice().sort(function (a, b) { return a[1] - b[1] || a[0] - b[0]; });
    function cross(o, a, b) { return (a[1] - o[1]) * (b[0] - o[0]) - (a[0] - o[0]) * (b[1] - o[1]); }
    var lower = [], upper = [], i;
    for (i = 0; i < pts.length; i++) {
      while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], pts[i]) <= 0) lower.pop();
      lower.push(pts[i]);
    }
    for (i = pts.length - 1; i >= 0; i--) {
      while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], pts[i]) <= 0) upper.pop();
      upper.push(pts[i]);
    }
    upper.pop(); lower.pop();
    return lower.concat(upper);
  }

  var byCommune = {};
  var markers = {};
  var bounds = [];
  cfg.devices.forEach(function (d) {
    var ll = [d.lat, d.lon];
    bounds.push(ll);
    (byCommune[d.commune] = byCommune[d.commune] || { name: d.commune_name, pts: [] }).pts.push(ll);
    var color = d.online ? "#1b7f3b" : "#b3261e";
    var m = d.kind === "board"
      ? L.rectangle([[d.lat - 0.0008, d.lon - 0.0008], [d.lat + 0.0008, d.lon + 0.0008]], { color: color, weight: 2, fillOpacity: 0.8 })
      : L.circleMarker(ll, { radius: 7, color: "#fff", weight: 1, fillColor: color, fillOpacity: 0.95 });
    var a = document.createElement("a");
    a.href = "/console/devices/" + encodeURIComponent(d.id);
    a.textContent = d.name + " (" + d.id + ")";
    var box = document.createElement("div");
    box.appendChild(a);
    box.appendChild(document.createElement("br"));
    box.appendChild(document.createTextNode((d.area_name || d.area) + " · " + (d.online ? cfg.labels.online : cfg.labels.offline)));
    m.bindPopup(box);
    m.addTo(map);
    markers[d.id] = m;
  });
  Object.keys(byCommune).forEach(function (code) {
    var c = byCommune[code];
    var h = hull(c.pts);
    var shape = h.length >= 3 ? L.polygon(h, { color: "#7a1712", weight: 1, fillOpacity: 0.05, dashArray: "4 3" })
      : L.polyline(h.length === 2 ? h : [h[0], h[0]], { color: "#7a1712", weight: 1, dashArray: "4 3" });
    shape.bindTooltip(c.name || code);
    shape.addTo(map);
  });
  if (bounds.length) map.fitBounds(L.latLngBounds(bounds).pad(0.2), { maxZoom: 15 });
  else map.setView([16.0, 106.0], 5);

  // The list's filters hide markers too.
  document.addEventListener("nguon:filtered", function () {
    document.querySelectorAll("#device-list tbody tr[data-id]").forEach(function (tr) {
      var m = markers[tr.getAttribute("data-id")];
      if (!m) return;
      if (tr.hidden) map.removeLayer(m); else m.addTo(map);
    });
  });
})();
