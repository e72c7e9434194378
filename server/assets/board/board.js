// Bulletin board kiosk: render the feed, rotate bulletins, keep a clock, show an emergency
// banner, fit the text to the screen, follow changes over SSE (the stream is also the board's
// presence), survive the server being unreachable (last feed kept in localStorage; a service
// worker keeps the page shell and the last feed, so a reload or a reboot during an outage still
// shows the bulletins, with a "mất kết nối" badge), and report proof of display in batches.
(function () {
  "use strict";
  var device = document.body.getAttribute("data-device");
  var token = new URLSearchParams(location.search).get("token") || "";
  var q = "?token=" + encodeURIComponent(token);
  var base = "/board/" + encodeURIComponent(device);
  var feedKey = "nguon.feed." + device, queueKey = "nguon.displays." + device;
  var feedUrl = "/api/v1/boards/" + encodeURIComponent(device) + "/feed";
  var CACHE = "nguon-board-v1";
  var OFFLINE = "Mất kết nối — đang hiển thị bản tin đã lưu";
  var feed = null, etag = null, index = -1, timer = null, current = null, updatedAt = 0;
  var $ = function (id) { return document.getElementById(id); };

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0; return (c === "x" ? r : (r & 3 | 8)).toString(16);
    });
  }
  function load(key, dflt) { try { return JSON.parse(localStorage.getItem(key)) || dflt; } catch (e) { return dflt; } }
  function save(key, v) { try { localStorage.setItem(key, JSON.stringify(v)); } catch (e) {} }

  // Proof of display: close the current record, queue it, flush in batches.
  function closeShown() {
    if (!current) return;
    current.shown_to = Date.now();
    var qd = load(queueKey, []); qd.push(current); save(queueKey, qd.slice(-5000)); current = null;
  }
  function openShown(id) { closeShown(); current = { id: uuid(), bulletin_id: id, shown_from: Date.now(), shown_to: 0 }; }
  function flush() {
    var qd = load(queueKey, []); if (!qd.length) return;
    var batch = qd.slice(0, 500);
    fetch(base + "/display" + q, { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ displays: batch }) }).then(function (r) {
      if (r.ok || r.status === 400) { var rest = load(queueKey, []).slice(batch.length); save(queueKey, rest); }
    }).catch(function () {});
  }

  // Shrink `el`'s text (em-based children) until `box` no longer overflows; never below 35 %.
  function fit(box, el) {
    var scale = 1;
    el.style.fontSize = "1em";
    while (scale > 0.35 && (box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1)) {
      scale -= 0.05;
      el.style.fontSize = scale.toFixed(2) + "em";
    }
  }
  function fitAll() {
    fit($("stage"), $("slide"));
    if (!$("emergency").hidden) fit($("emergency-content"), $("emergency-content"));
  }
  window.addEventListener("resize", fitAll);
  if (document.fonts && document.fonts.ready) document.fonts.ready.then(fitAll);

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function header() {
    if (feed && feed.area_name) { $("area").textContent = feed.area_name; titleBase = feed.area_name + " · Bảng tin điện tử"; }
    if (updatedAt) {
      var d = new Date(updatedAt);
      var local = new Date(d.toLocaleString("en-US", { timeZone: "Asia/Ho_Chi_Minh" }));
      $("updated").textContent = "Cập nhật lúc " + pad(local.getHours()) + ":" + pad(local.getMinutes()) + " " + pad(local.getDate()) + "/" + pad(local.getMonth() + 1);
    }
  }

  function variant(b) { return b.variants[0]; }
  function slides() { return (feed && feed.bulletins || []).filter(function (b) { return b.priority !== "emergency"; }); }

  function render() {
    var em = (feed && feed.bulletins || []).filter(function (b) { return b.priority === "emergency"; });
    var banner = $("emergency");
    if (em.length) {
      var v = variant(em[0]);
      $("emergency-title").textContent = v.title;
      $("emergency-body").innerHTML = v.html; // escaped by the server
      banner.hidden = false;
      clearTimeout(timer);
      if (!current || current.bulletin_id !== em[0].id) openShown(em[0].id);
      fit($("emergency-content"), $("emergency-content"));
    } else {
      banner.hidden = true;
    }
    $("ticker-text").textContent = (feed && feed.bulletins || []).map(function (b) { return variant(b).title; }).join("   •   ");
    header();
    if (!em.length) next(true);
  }

  function show(b) {
    var v = variant(b);
    $("slide").className = b.priority;
    $("category").textContent = b.category || "";
    $("title").textContent = v.title;
    $("body").innerHTML = v.html; // escaped by the server
    var m = $("media"); m.textContent = "";
    if (b.video) {
      var vid = document.createElement("video"); vid.src = b.video.url; vid.muted = true; vid.autoplay = true; vid.loop = true;
      m.appendChild(vid);
    } else if (b.images.length) {
      var img = document.createElement("img"); img.src = b.images[0].url; img.alt = ""; m.appendChild(img);
    }
    $("slide").setAttribute("data-bulletin", b.id);
    // The short link's QR code (issue 15): citizens scan it to read and listen again.
    if (b.qr_svg) { $("qr-img").src = b.qr_svg; $("qr").hidden = false; } else { $("qr").hidden = true; }
    openShown(b.id);
    fit($("stage"), $("slide"));
    m.querySelectorAll("img, video").forEach(function (x) { x.addEventListener("load", fitAll); x.addEventListener("loadedmetadata", fitAll); });
  }

  function next(restart) {
    clearTimeout(timer);
    var s = slides();
    if (!s.length) {
      $("slide").className = ""; $("category").textContent = ""; $("title").textContent = "Chưa có bản tin";
      $("body").textContent = ""; $("media").textContent = ""; $("slide").removeAttribute("data-bulletin"); $("qr").hidden = true; closeShown();
      return;
    }
    if (restart) {
      // Keep the bulletin on screen if it is still current, otherwise start again.
      var shown = $("slide").getAttribute("data-bulletin");
      var at = s.findIndex(function (b) { return b.id === shown; });
      index = at >= 0 ? at : 0;
      if (at < 0) show(s[index]);
      else {
        var b = s[index], v = variant(b);
        $("title").textContent = v.title; $("body").innerHTML = v.html;
        if (!current || current.bulletin_id !== b.id) openShown(b.id);
        fit($("stage"), $("slide"));
      }
    } else {
      index = (index + 1) % s.length;
      show(s[index]);
    }
    timer = setTimeout(function () { next(false); }, Math.max(3, s[index].dwell_s || 10) * 1000);
  }

  function setStatus(text) { var st = $("status"); st.textContent = text || ""; st.hidden = !text; }

  // Keep the last feed for the service worker too (it answers with it when the server is away).
  function keepFeed(f) {
    if (!window.caches) return;
    caches.open(CACHE).then(function (c) {
      return c.put(feedUrl, new Response(JSON.stringify(f), { headers: { "content-type": "application/json", "etag": etag || "" } }));
    }).catch(function () {});
  }

  function refresh() {
    var headers = { "Authorization": "Bearer " + token };
    if (etag) headers["If-None-Match"] = etag;
    return fetch(feedUrl, { headers: headers, cache: "no-store" })
      .then(function (r) {
        if (r.headers.get("x-nguon-offline")) {
          // The service worker's copy: the server is away.
          setStatus(OFFLINE);
          if (feed) return;
          return r.json().then(function (f) { feed = f; render(); });
        }
        if (r.status === 304) { updatedAt = Date.now(); save(feedKey, { etag: etag, feed: feed, updated_at: updatedAt }); setStatus(""); header(); return; }
        if (!r.ok) throw new Error("HTTP " + r.status);
        etag = r.headers.get("ETag");
        return r.json().then(function (f) {
          feed = f; updatedAt = Date.now();
          save(feedKey, { etag: etag, feed: f, updated_at: updatedAt }); keepFeed(f); setStatus(""); render();
        });
      })
      .catch(function () { setStatus(OFFLINE); });
  }

  // The page shell for a reload or reboot during an outage: the service worker answers from this
  // cache when the network fails. Service workers need a secure origin (HTTPS, or localhost).
  var offline = { ready: false };
  function offlineShell() {
    if (!("serviceWorker" in navigator) || !window.caches) return;
    navigator.serviceWorker.register("/board-assets/sw.js", { scope: "/board/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .then(function () {
        return caches.open(CACHE).then(function (c) {
          return c.addAll([location.pathname + location.search, "/board-assets/board.css", "/board-assets/board.js",
            "/board-assets/NotoSans-Regular.ttf", "/board-assets/NotoSans-Bold.ttf"]);
        });
      })
      .then(function () { offline.ready = true; })
      .catch(function () {});
  }

  // The heartbeat in the title ("… [n]", every second): the kiosk's watchdog reads it from
  // Chromium's DevTools list and restarts a page whose title stops changing (nguon-kiosk-watchdog).
  var titleBase = document.title, beat = 0;
  function tick() {
    var now = new Date(), tz = "Asia/Ho_Chi_Minh";
    beat += 1; document.title = titleBase + " [" + beat + "]";
    $("time").textContent = now.toLocaleTimeString("vi-VN", { timeZone: tz, hour: "2-digit", minute: "2-digit", hour12: false });
    $("date").textContent = now.toLocaleDateString("vi-VN", { timeZone: tz, weekday: "long", day: "numeric", month: "numeric", year: "numeric" });
  }

  var cached = load(feedKey, null);
  if (cached && cached.feed) { feed = cached.feed; etag = cached.etag; updatedAt = cached.updated_at || 0; render(); }
  tick(); setInterval(tick, 1000);
  refresh();
  offlineShell();
  setInterval(refresh, 30000);
  setInterval(flush, 10000);
  window.addEventListener("pagehide", function () { closeShown(); flush(); });
  if (window.EventSource) {
    var es = new EventSource(base + "/events" + q);
    es.addEventListener("changed", function (e) { if (e.data !== etag) refresh(); });
    es.onerror = function () { setStatus(OFFLINE); };
    es.onopen = function () { refresh(); };
  }
  window.nguonBoard = { flush: function () { closeShown(); flush(); }, state: function () { return { feed: feed, etag: etag }; },
    offlineReady: function () { return offline.ready; } };
})();
