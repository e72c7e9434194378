// nguon console: small progressive enhancement, no dependencies. Pages work without it except
// the upload form, which needs it for the progress bar (the API takes the session cookie plus
// the CSRF token in a header).
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) e.preventDefault();
    if (e.target.closest("[data-print]")) window.print();
  });
  var form = document.getElementById("upload-form");
  if (!form) return;
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var bar = document.getElementById("upload-progress");
    var pct = document.getElementById("upload-percent");
    var err = document.getElementById("upload-error");
    var btn = document.getElementById("upload-submit");
    err.hidden = true; bar.hidden = false; bar.value = 0; btn.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.addEventListener("progress", function (ev) {
      if (ev.lengthComputable) {
        var p = Math.round((ev.loaded / ev.total) * 100);
        bar.value = p; pct.textContent = p + " %";
        form.setAttribute("data-progress-seen", String(p));
        try { sessionStorage.setItem("nguon-upload-progress", String(p)); } catch (_) { /* private mode */ }
      }
    });
    xhr.addEventListener("load", function () {
      btn.disabled = false;
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 200 || xhr.status === 201) {
        bar.value = 100; pct.textContent = "100 %";
        window.location.href = "/console/media/" + body.sha256;
      } else {
        err.hidden = false;
        err.textContent = (body.error && body.error.message) || ("HTTP " + xhr.status);
      }
    });
    xhr.addEventListener("error", function () { btn.disabled = false; err.hidden = false; err.textContent = "network error"; });
    xhr.send(new FormData(form));
  });
})();

// Bulletins: text-to-speech preview without leaving the page. The editor's "preview" buttons
// (data-tts-variant) send that variant's current title and text with the chosen voice and speed;
// the review forms (form.tts-form) send a stored bulletin's language. The answer is a media item
// played from /media/{sha256}. Without JavaScript the buttons submit the form and the server
// answers with the same audio.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  // The text as it was read, piece by piece: a click on a piece opens an inline correction that
  // goes into the lexicon (POST /console/tts/lexicon), then the preview runs again.
  function showReading(read, pieces, again) {
    if (!read || !pieces) return;
    while (read.firstChild) read.removeChild(read.firstChild);
    var label = document.createElement("span");
    label.className = "hint";
    label.textContent = read.getAttribute("data-label") || "";
    read.appendChild(label);
    read.appendChild(document.createTextNode(" "));
    pieces.forEach(function (p) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "piece" + (p.written !== p.read ? " changed" : "");
      b.title = p.written;
      b.textContent = p.read;
      b.addEventListener("click", function () { correct(read, p, again); });
      read.appendChild(b);
      read.appendChild(document.createTextNode(" "));
    });
    read.hidden = false;
  }
  function correct(read, p, again) {
    var old = read.querySelector(".correct");
    if (old) old.parentNode.removeChild(old);
    var box = document.createElement("span");
    box.className = "correct";
    var term = document.createElement("input");
    term.value = p.term; term.setAttribute("aria-label", "term"); term.name = "term";
    var exp = document.createElement("input");
    exp.value = p.read.replace(/[.,;:!?()"]+$/, ""); exp.setAttribute("aria-label", "expansion"); exp.name = "expansion";
    var add = document.createElement("button");
    add.type = "button";
    add.textContent = read.getAttribute("data-add") || "+";
    var msg = document.createElement("span");
    msg.className = "tts-status";
    add.addEventListener("click", function () {
      add.disabled = true;
      fetch("/console/tts/lexicon", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ term: term.value, expansion: exp.value }).toString()
      }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, b: b }; }); }).then(function (res) {
        add.disabled = false;
        if (!res.ok) { msg.textContent = (res.b.error && res.b.error.message) || "error"; msg.classList.add("error"); return; }
        again();
      }, function () { add.disabled = false; msg.textContent = "network error"; });
    });
    box.appendChild(term); box.appendChild(document.createTextNode(" → ")); box.appendChild(exp);
    box.appendChild(add); box.appendChild(msg);
    read.appendChild(box);
    exp.focus();
  }
  function preview(params, audio, status, btn, read) {
    var again = function () { preview(params, audio, status, btn, read); };
    btn.disabled = true;
    if (status) { status.textContent = "…"; status.classList.remove("error"); }
    fetch("/console/tts/preview", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(params).toString()
    }).then(function (r) {
      return r.json().then(function (b) { return { ok: r.ok, b: b }; }, function () { return { ok: false, b: {} }; });
    }).then(function (res) {
      btn.disabled = false;
      if (!res.ok || !res.b.url) {
        if (status) { status.textContent = (res.b.error && res.b.error.message) || "error"; status.classList.add("error"); }
        return;
      }
      if (status) status.textContent = res.b.fallback_from ? "espeak-ng (" + res.b.fallback_from + " ✗)" : "";
      showReading(read, res.b.pieces, again);
      audio.hidden = false;
      audio.setAttribute("data-sha", res.b.sha256);
      audio.src = res.b.url;
      audio.load();
      var p = audio.play();
      if (p && p.catch) p.catch(function () { /* autoplay refused: the controls are there */ });
    }, function () {
      btn.disabled = false;
      if (status) { status.textContent = "network error"; status.classList.add("error"); }
    });
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-tts-variant]");
    if (!b || !b.form) return;
    e.preventDefault();
    var n = b.getAttribute("data-tts-variant"), el = b.form.elements;
    preview({
      title: el["v" + n + "_title"] ? el["v" + n + "_title"].value : "",
      body: el["v" + n + "_body"] ? el["v" + n + "_body"].value : "",
      voice: el.voice ? el.voice.value : "", speed: el.speed ? el.speed.value : ""
    }, document.getElementById("tts-audio-" + n), document.getElementById("tts-status-" + n), b,
       document.getElementById("tts-read-" + n));
  });
  document.addEventListener("submit", function (e) {
    var f = e.target.closest("form.tts-form");
    if (!f) return;
    e.preventDefault();
    var params = {};
    new FormData(f).forEach(function (v, k) { if (k !== "csrf") params[k] = v; });
    preview(params, f.querySelector("audio"), f.querySelector(".tts-status"), f.querySelector("button"),
            f.querySelector(".tts-read"));
  });
})();

// The live description of a schedule's rule (schedule_edit.html; no inline script: the console's
// CSP allows none).
(function () {
  var out = document.getElementById("sched-describe");
  if (!out) return;
  var ids = ["sched-kind", "sched-at", "sched-cron"];
  function update() {
    var q = new URLSearchParams({kind: document.getElementById("sched-kind").value,
      at: document.getElementById("sched-at").value, cron: document.getElementById("sched-cron").value});
    fetch("/console/schedules/describe?" + q.toString(), {credentials: "same-origin"})
      .then(function (r) { return r.text(); }).then(function (t) { out.textContent = t; });
  }
  ids.forEach(function (id) { var el = document.getElementById(id); if (el) el.addEventListener("input", update); });
})();

// Delivery tracking: the page's tables are replaced by the fragment the server sends as a
// server-sent event every few seconds (/console/commands/{id}/live). Without JavaScript the
// page shows the state when it was loaded.
(function () {
  "use strict";
  var box = document.getElementById("live-tracking");
  if (!box || !window.EventSource) return;
  var dot = document.getElementById("live-status");
  var es = new EventSource(box.getAttribute("data-live-src"));
  es.addEventListener("tracking", function (e) {
    box.innerHTML = e.data;
    if (dot) dot.className = "on";
  });
  es.addEventListener("error", function () { if (dot) dot.className = "off"; });
})();
