// The live broadcast page (issue 17): microphone → AudioWorklet (16-bit PCM, 20 ms frames) →
// WebSocket; POST /api/v1/live opens the session, GET /api/v1/live/{id} lists the loudspeakers.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) return;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var talk = document.getElementById("live-talk");
  var stop = document.getElementById("live-stop");
  var status = document.getElementById("live-status");
  var meter = document.getElementById("live-level");
  var rows = document.getElementById("live-devices-state");
  var s = null; // {id, ws, ctx, stream, poll}

  function say(text) { status.textContent = text; }
  function ticked(name) {
    return Array.prototype.map.call(document.querySelectorAll('input[name="' + name + '"]:checked'), function (i) { return i.value; });
  }
  function errorText(body, fallback) {
    return (body && body.error && body.error.message) || fallback;
  }
  // The state in the console's language (data-state-* on #live, from the tracking labels).
  function label(state) {
    var key = "state" + String(state).split("_").map(function (w) { return w.charAt(0).toUpperCase() + w.slice(1); }).join("");
    return root.dataset[key] || state;
  }
  function show(list) {
    rows.textContent = "";
    (list || []).forEach(function (d) {
      var tr = document.createElement("tr");
      var a = document.createElement("td"); a.textContent = d.device_id;
      var b = document.createElement("td"); b.textContent = label(d.state); b.className = "state-" + d.state;
      tr.appendChild(a); tr.appendChild(b); rows.appendChild(tr);
    });
  }
  function poll() {
    if (!s) return;
    fetch("/api/v1/live/" + s.id, { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (v) {
        show(v.devices);
        if (v.live === false) finish(root.dataset.msgEnded + " (" + (v.session.end_reason || "") + ")");
      })
      .catch(function () {});
  }
  function finish(msg) {
    if (!s) return;
    var cur = s; s = null;
    clearInterval(cur.poll);
    try { if (cur.ws && cur.ws.readyState === 1) { cur.ws.send("stop"); cur.ws.close(1000); } } catch (e) {}
    if (cur.stream) cur.stream.getTracks().forEach(function (t) { t.stop(); });
    if (cur.ctx) cur.ctx.close();
    meter.value = 0;
    talk.hidden = false; stop.hidden = true;
    say(msg);
  }
  async function start() {
    var areas = ticked("area"), devices = ticked("device");
    if (!areas.length && !devices.length) { say(root.dataset.msgNone); return; }
    talk.disabled = true;
    say(root.dataset.msgConnecting);
    var stream, ctx;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
      try { ctx = new AudioContext({ sampleRate: 16000 }); } catch (e) { ctx = new AudioContext(); }
      await ctx.audioWorklet.addModule("/console/static/live-worklet.js");
    } catch (e) {
      talk.disabled = false;
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      say(root.dataset.msgMic + " " + e);
      return;
    }
    var r = await fetch("/api/v1/live", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ areas: areas, devices: devices, priority: document.getElementById("live-priority").value,
                             title: document.getElementById("live-title").value })
    });
    var body = await r.json().catch(function () { return null; });
    talk.disabled = false;
    if (r.status !== 201) {
      stream.getTracks().forEach(function (t) { t.stop(); }); ctx.close();
      say((r.status === 409 ? root.dataset.msgBusy + " " : "") + errorText(body, "HTTP " + r.status));
      return;
    }
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(proto + "//" + location.host + body.ws + "?rate=" + Math.round(ctx.sampleRate));
    ws.binaryType = "arraybuffer";
    s = { id: body.id, ws: ws, ctx: ctx, stream: stream, poll: setInterval(poll, 1500) };
    var node = new AudioWorkletNode(ctx, "pcm-capture");
    node.port.onmessage = function (ev) {
      meter.value = ev.data.peak;
      if (ws.readyState === 1) ws.send(ev.data.pcm);
    };
    ctx.createMediaStreamSource(stream).connect(node);
    ws.onopen = function () { say(root.dataset.msgLive); };
    ws.onclose = function (ev) { if (s && s.ws === ws) finish(root.dataset.msgEnded + (ev.reason ? " (" + ev.reason + ")" : "")); };
    talk.hidden = true; stop.hidden = false;
  }
  talk.addEventListener("click", function () { start(); });
  stop.addEventListener("click", function () { finish(root.dataset.msgEnded); });
})();
