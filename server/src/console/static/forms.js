// nguon console (issue 13): the phone menu, list filters and the schedule form's helpers. No
// inline script anywhere (the console's CSP allows none); every page works without this file,
// it only saves clicks and typing.
(function () {
  "use strict";

  // The menu folds behind one button on a phone (CSS shows the button below 800 px).
  var toggle = document.getElementById("menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var open = document.body.classList.toggle("menu-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // A search box that hides the rows or labels (data-filter: their selector) that do not contain
  // what is typed; an optional select (data-filter-status) keeps only rows with that data-status.
  function filterAll() {
    document.querySelectorAll("input.tree-filter, input.list-filter").forEach(function (box) {
      var q = box.value.trim().toLowerCase();
      var statusSel = box.getAttribute("data-filter-status");
      var status = statusSel ? (document.querySelector(statusSel) || {}).value || "" : "";
      document.querySelectorAll(box.getAttribute("data-filter")).forEach(function (el) {
        var text = (el.textContent || "").toLowerCase() + " " + (el.getAttribute("data-search") || "").toLowerCase();
        var ok = (!q || text.indexOf(q) >= 0) && (!status || el.getAttribute("data-status") === status);
        el.hidden = !ok;
      });
    });
    document.dispatchEvent(new CustomEvent("nguon:filtered"));
  }
  document.addEventListener("input", function (e) {
    if (e.target.matches("input.tree-filter, input.list-filter")) filterAll();
  });
  document.addEventListener("change", function (e) {
    if (e.target.matches("select.status-filter")) filterAll();
  });

  // The schedule form.
  var form = document.getElementById("schedule-form");
  if (!form) return;
  var times = document.getElementById("sched-times");

  function showMode() {
    var m = (form.querySelector("input[name=mode]:checked") || {}).value || "weekly";
    form.querySelectorAll(".mode-weekly").forEach(function (el) { el.hidden = m !== "weekly"; });
    form.querySelectorAll(".mode-once").forEach(function (el) { el.hidden = m !== "once"; });
  }

  function addTime(value) {
    var inputs = times.querySelectorAll("input.time");
    for (var i = 0; i < inputs.length; i++) {
      if (!inputs[i].value) { inputs[i].value = value || ""; return inputs[i]; }
    }
    var last = inputs[inputs.length - 1];
    var el = last.cloneNode(false);
    el.value = value || "";
    last.insertAdjacentElement("afterend", el);
    return el;
  }

  form.addEventListener("click", function (e) {
    var b = e.target.closest("button.chip");
    if (!b) return;
    if (b.hasAttribute("data-days")) {
      var want = b.getAttribute("data-days").split(",");
      form.querySelectorAll("input[name=dow]").forEach(function (c) { c.checked = want.indexOf(c.value) >= 0; });
      form.querySelector("#mode-weekly").checked = true;
    } else if (b.hasAttribute("data-time")) {
      addTime(b.getAttribute("data-time"));
      form.querySelector("#mode-weekly").checked = true;
    } else if (b.id === "add-time") {
      addTime("").focus();
    }
    showMode();
    schedulePreview();
  });

  // The live preview: what the form will do, the next plays and any overlap, asked of the
  // server (the same checks as saving) a moment after each change.
  var timer = null;
  var box = document.getElementById("sched-preview");
  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }
  function preview() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (k !== "csrf" && k !== "action") params.append(k, v); });
    fetch("/console/schedules/preview?" + params.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        box.hidden = false;
        var d = document.getElementById("preview-describe");
        var n = document.getElementById("preview-next");
        var c = document.getElementById("preview-conflicts");
        if (p.error) {
          d.textContent = p.error; d.className = "error"; n.textContent = ""; c.textContent = ""; c.className = "";
          return;
        }
        d.textContent = p.describe; d.className = "";
        n.textContent = (p.next || []).join(" · ");
        if (p.conflicts && p.conflicts.length) {
          c.textContent = c.getAttribute("data-label") + ": " + p.conflicts.join("; ");
          c.className = "error";
        } else {
          c.textContent = c.getAttribute("data-none"); c.className = "";
        }
      }, function () { /* offline: saving still checks everything */ });
  }
  form.addEventListener("change", function () { showMode(); schedulePreview(); });
  form.addEventListener("input", function (e) { if (e.target.name === "title") return; schedulePreview(); });
  showMode();
})();
