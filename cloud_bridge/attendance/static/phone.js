// The phone punch (cloud_bridge/attendance/phone_routes.py). Each punch gets an id and
// the moment it happened by this phone's clock, and waits in IndexedDB until the bridge
// has stored it; when sent, it carries the phone's clock at sending, so the bridge can
// measure and correct (and flag) a wrong clock. The location is read only at a punch.
(function () {
  "use strict";
  const main = document.getElementById("phone");
  const tenant = main.dataset.tenant;
  const statusEl = document.getElementById("status");
  const SESSION_KEY = "edc-phone-session:" + tenant;

  function say(key, isError) {
    statusEl.textContent = main.dataset[key] || key;
    statusEl.classList.toggle("error", !!isError);
  }

  // -- the queue (IndexedDB) --------------------------------------------------------
  function db() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open("edc-phone-" + tenant, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("punches", {keyPath: "id"});
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  async function store(mode, work) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const tx = d.transaction("punches", mode);
      const result = work(tx.objectStore("punches"));
      tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  }
  const queueAdd = (p) => store("readwrite", (s) => s.put(p));
  const queueDel = (id) => store("readwrite", (s) => s.delete(id));
  const queueAll = () => store("readonly", (s) => s.getAll());

  async function showQueued() {
    document.getElementById("queued").textContent = String((await queueAll()).length);
  }

  // -- location, read once per punch ------------------------------------------------
  function locate() {
    return new Promise((resolve) => {
      if (!navigator.geolocation) return resolve(null);
      navigator.geolocation.getCurrentPosition(
        (pos) => resolve({lat: pos.coords.latitude, lon: pos.coords.longitude,
                          accuracy: pos.coords.accuracy}),
        () => resolve(null), {enableHighAccuracy: true, timeout: 10000, maximumAge: 0});
    });
  }

  // -- sending ----------------------------------------------------------------------
  async function send(p) {
    const body = Object.assign({}, p, {sent_at: new Date().toISOString()});
    const resp = await fetch("/api/v1/phone/punch", {
      method: "POST",
      headers: {"content-type": "application/json", "accept": "application/json",
                "authorization": "Bearer " + localStorage.getItem(SESSION_KEY)},
      body: JSON.stringify(body)});
    return {status: resp.status, body: await resp.json().catch(() => ({}))};
  }

  function outcome(r) {
    if (r.status === 200 || r.status === 201) {
      const flags = r.body.flags || [];
      if (flags.includes("outside_fence")) say("msgFlagOutside");
      else if (flags.includes("clock_skew")) say("msgFlagSkew");
      else say("msgRecorded");
      return true;
    }
    if (r.status === 403) say(r.body.reason === "no_location" ? "msgNoLocation" : "msgOutside", true);
    else if (r.status === 401) { localStorage.removeItem(SESSION_KEY); say("msgSignedOut", true); }
    else say("msgError", true);
    return r.status < 500;  // a refusal is final; a server error is tried again
  }

  let syncing = false;
  async function sync() {
    if (syncing || !localStorage.getItem(SESSION_KEY)) return;
    syncing = true;
    let sent = 0;
    try {
      const waiting = (await queueAll()).sort((a, b) => a.at.localeCompare(b.at));
      for (const p of waiting) {
        let r;
        try { r = await send(p); } catch (e) { break; }  // still offline
        if (outcome(r)) { await queueDel(p.id); sent++; }
        else break;
      }
    } finally {
      syncing = false;
      await showQueued();
    }
    return sent;
  }

  async function punch(type) {
    const p = {id: crypto.randomUUID(), type: type, at: new Date().toISOString()};
    Object.assign(p, await locate() || {});
    await queueAdd(p);  // first on the phone, so that nothing is lost if sending fails
    await showQueued();
    if (!navigator.onLine) { say("msgQueued"); return; }
    try {
      const r = await send(p);
      if (outcome(r)) await queueDel(p.id);
    } catch (e) {
      say("msgQueued");
    }
    await showQueued();
  }

  // -- enrolment --------------------------------------------------------------------
  async function enrol(ev) {
    ev.preventDefault();
    const token = new URLSearchParams(location.hash.slice(1)).get("t") || "";
    const resp = await fetch("/api/v1/phone/" + tenant + "/session", {
      method: "POST", headers: {"content-type": "application/json", "accept": "application/json"},
      body: JSON.stringify({token: token, pin: document.getElementById("pin").value})});
    if (resp.ok) {
      localStorage.setItem(SESSION_KEY, (await resp.json()).session);
      history.replaceState(null, "", location.pathname);  // the link is used up
      show();
    } else {
      say(resp.status === 401 ? "msgBadLink"
          : resp.status === 429 ? "msgPinLocked" : "msgBadPin", true);
    }
  }

  function show() {
    const signedIn = !!localStorage.getItem(SESSION_KEY);
    document.getElementById("enrol").hidden = signedIn;
    document.getElementById("punch").hidden = !signedIn;
    if (signedIn) showQueued();
  }

  document.getElementById("enrol-form").addEventListener("submit", enrol);
  document.querySelectorAll("[data-punch]").forEach((b) =>
    b.addEventListener("click", () => punch(b.dataset.punch)));
  window.addEventListener("online", async () => { if (await sync()) say("msgSynced"); });
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/phone/" + tenant + "/sw.js", {scope: "/phone/" + tenant})
      .catch(() => {});
  }
  show();
  sync();
})();
