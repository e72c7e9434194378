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
