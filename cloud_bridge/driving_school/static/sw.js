// Service worker of the lesson log: keeps the app shell so the app starts offline.
// The server writes the hash of the shell files into the cache name, so a new app
// version is a new sw.js, installed by the browser, caching the new files.
"use strict";
const CACHE = "lesson-log-__SHELL_VERSION__";
// the texts of every language ("__CATALOGS__" becomes "i18n/sl.json", "i18n/en.json")
const SHELL = ["./", "app.js", "app.css", "manifest.webmanifest", "icon-192.png", "icon-512.png",
               "__CATALOGS__"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("lesson-log-") && k !== CACHE)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  // the API is never cached: lessons travel through the IndexedDB outbox instead
  if (event.request.method !== "GET" || url.origin !== self.location.origin ||
      url.pathname.includes("/api/")) {
    return;
  }
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const hit = await cache.match(event.request, { ignoreSearch: true });
    return hit || fetch(event.request);
  }));
});
