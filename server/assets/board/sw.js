// Bulletin board service worker (issue 13): when the server cannot be reached, answer the kiosk
// page, its assets and its feed from the cache board.js fills, so a reload or a reboot during an
// outage still shows the last bulletins. The feed answered from the cache carries
// `x-nguon-offline: 1` so the page shows its "mất kết nối" badge. Everything else (the change
// stream, proof of display) goes to the network untouched.
"use strict";
var CACHE = "nguon-board-v1";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });

function fromCache(request, offline) {
  return caches.open(CACHE).then(function (c) {
    return c.match(request, { ignoreVary: true }).then(function (hit) {
      if (hit || request.mode !== "navigate") return hit;
      return c.match(request, { ignoreSearch: true, ignoreVary: true });
    });
  }).then(function (hit) {
    if (!hit) return Response.error();
    if (!offline) return hit;
    var headers = new Headers(hit.headers);
    headers.set("x-nguon-offline", "1");
    return hit.blob().then(function (body) { return new Response(body, { status: 200, headers: headers }); });
  });
}

self.addEventListener("fetch", function (e) {
  var req = e.request;
  if (req.method !== "GET") return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  var feed = /^\/api\/v1\/boards\/[^/]+\/feed$/.test(url.pathname);
  var page = req.mode === "navigate" && url.pathname.indexOf("/board/") === 0;
  var asset = url.pathname.indexOf("/board-assets/") === 0;
  if (!feed && !page && !asset) return;
  e.respondWith(fetch(req).then(function (r) {
    if (page && r.ok) {
      var copy = r.clone();
      caches.open(CACHE).then(function (c) { return c.put(req, copy); }).catch(function () {});
    }
    return r;
  }).catch(function () { return fromCache(req, feed); }));
});
