// The phone punch's service worker: keeps the page and its script so that the app opens
// without a connection (network first, the cached copy when offline). Punches made
// offline wait in IndexedDB (phone.js), never in this cache.
const CACHE = "edc-phone-v1";
self.addEventListener("install", (event) => {
  const page = new URL("./", self.registration.scope).pathname.replace(/\/$/, "");
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll([page, "/phone-app/phone.js"])));
  self.skipWaiting();
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  event.respondWith(fetch(event.request).then((resp) => {
    const copy = resp.clone();
    caches.open(CACHE).then((c) => c.put(event.request, copy));
    return resp;
  }).catch(() => caches.match(event.request, {ignoreSearch: true})));
});
