// E-SV lesson log for the instructor's tablet. Plain JS, no build step.
//
// IndexedDB holds everything the app needs offline: "meta" (who is signed in, CSRF
// token, device id, a running lesson), "candidates" and "vehicles" (cached at sign-in),
// "lessons" (what the tablet shows) and "outbox" (edits not yet confirmed by the
// server). A lesson and its outbox edit are written in one IndexedDB transaction; an
// edit leaves the outbox only when the server's answer for its edit_id is in, so a
// tablet closed mid-sync resends it and the server recognises the resend.
"use strict";

const DB_NAME = "lesson-log";
const BATCH = 10;
const LANG_COOKIE = "lang"; // the same cookie as the office pages' language switch
let db = null;
let syncing = false;
const $ = (id) => document.getElementById(id);

// -- texts ------------------------------------------------------------------------------
// The catalog is i18n/<lang>.json ({lang, plural, messages}), from the bridge's gettext
// catalogs, cached by the service worker. msgids are English; without a translation the
// English text shows.

let texts = { lang: "sl", messages: {} };

function fill(text, params) {
  return text.replace(/%\((\w+)\)[sd]/g, (m, k) => (params && k in params ? String(params[k]) : m));
}

function t(msgid, params) {
  const hit = texts.messages[msgid];
  return fill(typeof hit === "string" && hit ? hit : msgid, params);
}

function currentLang() {
  const m = document.cookie.match(/(?:^|;\s*)lang=([a-z]{2})/);
  return m && (m[1] === "en" || m[1] === "sl") ? m[1] : "sl";
}

function locale() {
  return texts.lang === "en" ? "en-GB" : "sl-SI";
}

async function loadTexts(lang) {
  try {
    const resp = await fetch(`i18n/${lang}.json`, { credentials: "same-origin" });
    texts = resp.ok ? await resp.json() : { lang: "en", messages: {} };
  } catch (err) {
    texts = { lang: "en", messages: {} }; // neither network nor cache: the English msgids
  }
  document.documentElement.lang = texts.lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of document.querySelectorAll("[data-t-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.tAriaLabel));
  }
  document.title = t("Lesson log");
  for (const b of document.querySelectorAll(".lang-btn")) {
    b.setAttribute("aria-pressed", String(b.dataset.lang === texts.lang));
  }
}

async function switchLanguage(lang) {
  document.cookie = `${LANG_COOKIE}=${lang}; path=/; max-age=31536000; samesite=lax`;
  await loadTexts(lang);
  // lesson types and the conflict rule come with the data: fetch them in this language
  if (navigator.onLine && (await meta("boot"))) await refresh();
  await render();
}

// -- IndexedDB ----------------------------------------------------------------------

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => {
      const d = open.result;
      d.createObjectStore("meta");
      d.createObjectStore("candidates", { keyPath: "id" });
      d.createObjectStore("vehicles", { keyPath: "id" });
      d.createObjectStore("lessons", { keyPath: "id" });
      d.createObjectStore("outbox", { keyPath: "edit_id" });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

// run `work` (which only queues requests) in one transaction; resolves on commit
function write(stores, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(stores, "readwrite");
    work(tx);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error(t("the tablet's storage refused the change")));
  });
}

const all = (store) => req(db.transaction(store).objectStore(store).getAll());
const meta = (key) => req(db.transaction("meta").objectStore("meta").get(key));
const setMeta = (key, value) => write(["meta"], (tx) => tx.objectStore("meta").put(value, key));

// -- small helpers ---------------------------------------------------------------------

function show(text, isError) {
  $("message").textContent = text || "";
  $("message").className = isError ? "error" : "";
}

function hhmm(iso) {
  return new Date(iso).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

// a day as people read it: 3. 12. 2026 (Slovenian), 03/12/2026 (English)
function showDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  if (texts.lang === "en") return `${String(d).padStart(2, "0")}/${String(m).padStart(2, "0")}/${y}`;
  return `${d}. ${m}. ${y}`;
}

function localDay(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

async function deviceId() {
  let id = await meta("device");
  if (!id) {
    id = "tablet-" + crypto.randomUUID().slice(0, 8);
    await setMeta("device", id);
  }
  return id;
}

// -- signing in and caching ------------------------------------------------------------

async function storeBootstrap(boot) {
  const queued = new Set((await all("outbox")).map((e) => e.lesson.id));
  const local = new Map((await all("lessons")).map((l) => [l.id, l]));
  await write(["meta", "candidates", "vehicles", "lessons"], (tx) => {
    const { candidates, vehicles, lessons, ...rest } = boot;
    tx.objectStore("meta").put(rest, "boot");
    tx.objectStore("candidates").clear();
    for (const c of candidates) tx.objectStore("candidates").put(c);
    tx.objectStore("vehicles").clear();
    for (const v of vehicles) tx.objectStore("vehicles").put(v);
    for (const l of lessons) {
      // a lesson with edits still queued here keeps what the instructor typed
      if (queued.has(l.id)) continue;
      const mine = local.get(l.id);
      const status = mine && mine.status === "conflict" && mine.version === l.version
        ? "conflict" : "synced";
      tx.objectStore("lessons").put({ ...l, status });
    }
  });
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  if (!navigator.onLine) {
    $("login-error").textContent = t("Signing in needs a network connection.");
    return;
  }
  const previous = await meta("boot");
  const waiting = (await all("outbox")).length;
  const username = $("username").value.trim().toLowerCase();
  if (previous && waiting && previous.username !== username) {
    $("login-error").textContent = t(
      "Unsent lessons of %(user)s on this tablet: %(n)s. They must sign in first.",
      { n: waiting, user: previous.username });
    return;
  }
  try {
    const resp = await fetch("api/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password: $("password").value }),
    });
    const body = await resp.json();
    if (!resp.ok) {
      $("login-error").textContent = typeof body.detail === "string" ? body.detail : t("Signing in failed.");
      return;
    }
    $("password").value = "";
    await storeBootstrap(body);
    await render();
    sync();
  } catch (err) {
    $("login-error").textContent = t("The server cannot be reached (%(error)s).", { error: err.message });
  }
}

async function refresh() {
  // fresher candidates and lessons when the network is there; offline the cache stays
  try {
    const resp = await fetch("api/bootstrap", { credentials: "same-origin" });
    if (resp.ok) await storeBootstrap(await resp.json());
  } catch (err) { /* offline: keep the cache */ }
}

async function logout() {
  const waiting = (await all("outbox")).length;
  if (waiting) {
    show(t("Lessons not sent yet: %(n)s. You can sign out once they are sent.", { n: waiting }), true);
    return;
  }
  const boot = await meta("boot");
  try {
    await fetch("api/logout", { method: "POST", credentials: "same-origin",
                                headers: { "X-CSRF-Token": boot ? boot.csrf : "" } });
  } catch (err) { /* the session expires by itself */ }
  await write(["meta", "candidates", "vehicles", "lessons"], (tx) => {
    tx.objectStore("meta").delete("boot");
    tx.objectStore("meta").delete("running");
    tx.objectStore("candidates").clear();
    tx.objectStore("vehicles").clear();
    tx.objectStore("lessons").clear();
  });
  await render();
}

// -- the signature pad -------------------------------------------------------------------

const pad = { strokes: 0, drawing: false };

function clearSignature() {
  const c = $("signature");
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff"; // opaque, so the PNG prints as black on white
  ctx.fillRect(0, 0, c.width, c.height);
  pad.strokes = 0;
}

function setupSignature() {
  const c = $("signature");
  const ctx = c.getContext("2d");
  const at = (e) => {
    const r = c.getBoundingClientRect();
    return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height];
  };
  c.addEventListener("pointerdown", (e) => {
    pad.drawing = true;
    c.setPointerCapture(e.pointerId);
    ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.strokeStyle = "#000";
    ctx.beginPath(); ctx.moveTo(...at(e));
  });
  c.addEventListener("pointermove", (e) => {
    if (!pad.drawing) return;
    ctx.lineTo(...at(e)); ctx.stroke();
    pad.strokes += 1;
  });
  const stop = () => { pad.drawing = false; };
  c.addEventListener("pointerup", stop);
  c.addEventListener("pointercancel", stop);
  clearSignature();
}

// -- recording a lesson ------------------------------------------------------------------

async function startLesson() {
  $("form-error").textContent = "";
  const running = {
    started_at: new Date().toISOString(),
    candidate_id: Number($("candidate").value),
    vehicle_id: Number($("vehicle").value),
    lesson_type: $("lesson-type").value,
    lesson_count: Number($("lesson-count").value),
    km_start: Number($("km-start").value),
  };
  if (!running.candidate_id || !running.vehicle_id || $("km-start").value === "") {
    $("form-error").textContent = t("Choose the candidate and the vehicle and enter the km at the start.");
    return;
  }
  await setMeta("running", running); // survives a reload or a flat battery
  clearSignature();
  await render();
}

async function endLesson() {
  const running = await meta("running");
  if (!running) return;
  const kmEnd = $("km-end").value === "" ? NaN : Number($("km-end").value);
  if (!(kmEnd >= running.km_start)) {
    $("form-error").textContent = t("The km at the end must be at least the km at the start.");
    return;
  }
  if (pad.strokes < 3) {
    $("form-error").textContent = t("The candidate must sign.");
    return;
  }
  $("form-error").textContent = "";
  const lesson = {
    id: crypto.randomUUID(),
    candidate_id: running.candidate_id, vehicle_id: running.vehicle_id,
    started_at: running.started_at, ended_at: new Date().toISOString(),
    lesson_count: running.lesson_count, lesson_type: running.lesson_type,
    km_start: running.km_start, km_end: kmEnd,
    remarks: $("remarks").value.trim(),
    signature: $("signature").toDataURL("image/png"),
  };
  const now = Date.now();
  const edit = { edit_id: crypto.randomUUID(), base_version: 0, edited_ms: now, queued: now, lesson };
  await write(["lessons", "outbox", "meta"], (tx) => {
    tx.objectStore("lessons").put({ ...lesson, day: localDay(lesson.started_at), version: 0,
                                   status: "pending", conflicts: [] });
    tx.objectStore("outbox").put(edit);
    tx.objectStore("meta").delete("running");
  });
  $("km-end").value = ""; $("remarks").value = ""; $("km-start").value = kmEnd;
  clearSignature();
  show(t("The lesson is saved on the tablet."));
  await render();
  sync();
}

async function cancelLesson() {
  await write(["meta"], (tx) => tx.objectStore("meta").delete("running"));
  await render();
}

// -- correcting a saved or refused lesson ------------------------------------------------
// A lesson the server refused (e.g. 9 lesson hours) comes back with the reason; the
// instructor corrects it here and it is queued again under the same lesson id.

let editing = null;

function openEdit(lesson) {
  editing = lesson;
  $("edit-title").textContent = `${showDay(localDay(lesson.started_at))} ${hhmm(lesson.started_at)}`;
  $("edit-lesson-count").value = lesson.lesson_count;
  $("edit-km-end").value = lesson.km_end;
  $("edit-remarks").value = lesson.remarks;
  $("edit-reason").textContent = lesson.status === "rejected" ? lesson.error || "" : "";
  $("edit-error").textContent = "";
  $("edit-view").hidden = false;
  $("edit-view").scrollIntoView();
  const focus = { lesson_count: "edit-lesson-count", km_end: "edit-km-end", remarks: "edit-remarks" };
  $(focus[lesson.field] || "edit-km-end").focus();
}

async function saveEdit() {
  const km = Number($("edit-km-end").value);
  const count = Number($("edit-lesson-count").value);
  if ($("edit-km-end").value === "" || !(km >= editing.km_start)) {
    $("edit-error").textContent = t("The km at the end must be at least the km at the start.");
    return;
  }
  if (!Number.isInteger(count) || count < 1) {
    $("edit-error").textContent = t("Enter the lesson hours as a whole number from 1 to 4.");
    return;
  }
  const lesson = {};
  for (const k of ["id", "candidate_id", "vehicle_id", "started_at", "ended_at",
                   "lesson_type", "km_start", "signature"]) lesson[k] = editing[k];
  lesson.lesson_count = count;
  lesson.km_end = km;
  lesson.remarks = $("edit-remarks").value.trim();
  const now = Date.now();
  // base_version: the server version this tablet last saw (0 if never stored there)
  const edit = { edit_id: crypto.randomUUID(), base_version: editing.version || 0,
                 edited_ms: now, queued: now, lesson };
  const { error, code, field, ...kept } = editing;
  await write(["lessons", "outbox"], (tx) => {
    tx.objectStore("lessons").put({ ...kept, ...lesson, status: "pending" });
    tx.objectStore("outbox").put(edit);
  });
  editing = null;
  $("edit-view").hidden = true;
  show(t("The correction is saved on the tablet."));
  await render();
  sync();
}

// -- sync -----------------------------------------------------------------------------------

async function sendBatch(boot, device, queue) {
  const batch = queue.slice(0, BATCH);
  const resp = await fetch("api/sync", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
    body: JSON.stringify({ device, edits: batch.map(({ queued, ...e }) => e) }),
  });
  if (resp.status === 401 || resp.status === 403) return null;
  if (!resp.ok) throw new Error(t("the server answered %(status)s", { status: resp.status }));
  const { results } = await resp.json();
  const later = new Set(queue.slice(batch.length).map((e) => e.lesson.id));
  const local = new Map((await all("lessons")).map((l) => [l.id, l]));
  let refused = 0;
  await write(["lessons", "outbox"], (tx) => {
    for (const r of results) {
      const mine = local.get(r.lesson_id);
      if (r.outcome === "rejected") {
        refused += 1;
        if (mine) {
          tx.objectStore("lessons").put({ ...mine, status: "rejected", error: r.error,
                                          code: r.code, field: r.field });
        }
      } else if (r.lesson && !later.has(r.lesson_id)) {
        tx.objectStore("lessons").put({ ...r.lesson, conflicts: r.conflicts || [],
                                        status: r.outcome === "conflict" ? "conflict" : "synced" });
      }
      tx.objectStore("outbox").delete(r.edit_id); // only now: the server has answered
    }
  });
  return { sent: batch.length, refused };
}

async function sync() {
  if (syncing || !navigator.onLine) return;
  const boot = await meta("boot");
  if (!boot) return;
  syncing = true;
  try {
    const device = await deviceId();
    let queue = (await all("outbox")).sort((a, b) => a.queued - b.queued);
    let refused = 0;
    let sent = 0;
    while (queue.length) {
      const done = await sendBatch(boot, device, queue);
      if (done === null) {
        show(t("Your sign-in has expired: sign in again; the unsent lessons stay on the tablet."), true);
        await setMeta("boot", { ...boot, expired: true });
        return;
      }
      refused += done.refused;
      sent += done.sent;
      queue = queue.slice(done.sent);
    }
    if (!queue.length) await refresh();
    if (refused) {
      show(t("Refused lessons: %(n)s. The reason is in the list: correct the lesson and send it again.",
             { n: refused }), true);
    } else if (sent || $("message").className === "error") {
      show(sent ? t("All lessons are sent.") : ""); // an old error goes once sending works
    }
  } catch (err) {
    show(t("Sending failed (%(error)s); the lessons stay in the queue.", { error: err.message }), true);
  } finally {
    syncing = false;
    await render();
  }
}

// -- rendering ---------------------------------------------------------------------------------

function options(select, items, label, keep) {
  const value = keep ? select.value : "";
  select.replaceChildren(...items.map((it) => el("option", { value: it.id }, label(it))));
  if (value) select.value = value;
}

function noteText(note) {
  const d = note.data;
  const parts = [`km ${d.km_start}–${d.km_end}`, t("remarks: “%(text)s”", { text: d.remarks })];
  if (d.signature_differs) parts.push(t("a different signature"));
  return t("Not applied (%(device)s, %(user)s, %(when)s): %(what)s", {
    device: note.device, user: note.username,
    when: new Date(note.edited_ms).toLocaleString(locale()), what: parts.join(", ") });
}

function statusText(l) {
  const names = { pending: t("waiting to be sent"), synced: t("saved"), conflict: t("conflict"),
                  rejected: t("refused") };
  return names[l.status] + (l.version ? ` (v${l.version})` : "");
}

function lessonRow(l, boot, people, cars) {
  const who = people.get(l.candidate_id);
  const car = cars.get(l.vehicle_id);
  const state = el("td", { className: "state" }, statusText(l));
  if (l.status === "rejected" && l.error) state.append(el("div", { className: "note", "data-refusal": l.code || "" }, l.error));
  for (const n of l.conflicts || []) {
    state.append(el("div", { className: "note conflict-note" }, noteText(n)));
  }
  const rejected = l.status === "rejected";
  const fix = el("button", { type: "button", className: "edit", "data-fix": rejected ? "resend" : "edit" },
                 rejected ? t("Correct and send again") : t("Correct"));
  fix.addEventListener("click", () => openEdit(l));
  const heads = [...document.querySelectorAll("#lessons-head th")].map((th) => th.textContent);
  const cells = [
    el("td", {}, showDay(l.day || localDay(l.started_at))),
    el("td", {}, `${hhmm(l.started_at)}–${hhmm(l.ended_at)}`),
    el("td", {}, who ? `${who.last_name} ${who.first_name}` : `#${l.candidate_id}`),
    el("td", {}, boot.lesson_types[l.lesson_type] || l.lesson_type),
    el("td", { className: "count" }, l.lesson_count),
    el("td", {}, car ? car.registration : `#${l.vehicle_id}`),
    el("td", { className: "km" }, `${l.km_start}–${l.km_end}`),
    el("td", { className: "remarks" }, l.remarks),
    el("td", {}, el("img", { src: l.signature, alt: t("candidate's signature") })),
    state,
    el("td", { className: "actions" }, fix),
  ];
  cells.forEach((c, i) => c.setAttribute("data-label", heads[i] || ""));
  return el("tr", { "data-lesson-id": l.id, "data-status": l.status }, ...cells);
}

async function renderForm(boot, candidates, vehicles, cars) {
  options($("candidate"), candidates, (c) => (c.mine ? "" : t("(substitute)") + " ") +
          `${c.last_name} ${c.first_name} (${c.register_no})`, true);
  options($("vehicle"), vehicles, (v) => `${v.registration} ${v.make_model}`, true);
  const types = Object.entries(boot.lesson_types).map(([id, label]) => ({ id, label }));
  options($("lesson-type"), types, (x) => x.label, true);
  if ($("km-start").value === "" && vehicles.length) {
    $("km-start").value = (cars.get(Number($("vehicle").value)) || vehicles[0]).last_km;
  }
  $("candidates").replaceChildren(...candidates.filter((c) => c.mine).map((c) => el("li", { "data-candidate": c.id },
    `${c.last_name} ${c.first_name} — ` + (c.category ? `${c.category} — ` : "") + (c.required_lessons
      ? t("lesson hours done: %(done)s of %(required)s", { done: c.lessons_done, required: c.required_lessons })
      : t("lesson hours done: %(done)s", { done: c.lessons_done })))));
  const running = await meta("running");
  $("running").hidden = !running;
  $("start").hidden = Boolean(running);
  for (const id of ["candidate", "vehicle", "lesson-type", "lesson-count", "km-start"]) {
    $(id).disabled = Boolean(running);
  }
  if (running) {
    $("started-at").textContent = hhmm(running.started_at);
    $("candidate").value = running.candidate_id;
    $("vehicle").value = running.vehicle_id;
    $("lesson-type").value = running.lesson_type;
    $("lesson-count").value = running.lesson_count;
    $("km-start").value = running.km_start;
  }
}

async function render() {
  const boot = await meta("boot");
  const online = navigator.onLine;
  $("net").textContent = online ? t("online") : t("offline");
  $("net").className = "badge " + (online ? "online" : "offline");
  const outbox = await all("outbox");
  $("pending").textContent = t("To send: %(n)s", { n: outbox.length });
  $("pending").dataset.count = String(outbox.length);
  $("login-view").hidden = Boolean(boot) && !boot.expired;
  $("main-view").hidden = !boot;
  $("logout").hidden = !boot;
  $("sync-now").hidden = !boot;
  if (!boot) return;
  if (boot.expired) $("username").value = boot.username;
  $("who").textContent = `${boot.instructor.name} (${boot.username})`;
  $("conflict-rule").textContent = boot.conflict_rule;

  const candidates = (await all("candidates")).sort((x, y) => (y.mine - x.mine) ||
    `${x.last_name} ${x.first_name}`.localeCompare(`${y.last_name} ${y.first_name}`, "sl"));
  const vehicles = await all("vehicles");
  const byId = (list) => new Map(list.map((x) => [x.id, x]));
  const people = byId(candidates);
  const cars = byId(vehicles);
  await renderForm(boot, candidates, vehicles, cars);
  const lessons = (await all("lessons")).sort((a, b) => b.started_at.localeCompare(a.started_at));
  $("lessons").replaceChildren(...lessons.map((l) => lessonRow(l, boot, people, cars)));
}

// -- start -----------------------------------------------------------------------------------

async function main() {
  db = await openDb();
  await loadTexts(currentLang());
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch((err) =>
      show(t("The app will not work offline (%(error)s).", { error: err.message }), true));
  }
  setupSignature();
  $("login-form").addEventListener("submit", login);
  $("start").addEventListener("click", startLesson);
  $("end").addEventListener("click", endLesson);
  $("cancel").addEventListener("click", cancelLesson);
  $("clear-signature").addEventListener("click", clearSignature);
  $("edit-save").addEventListener("click", saveEdit);
  $("edit-cancel").addEventListener("click", () => { $("edit-view").hidden = true; editing = null; });
  $("sync-now").addEventListener("click", sync);
  $("logout").addEventListener("click", logout);
  for (const b of document.querySelectorAll(".lang-btn")) {
    b.addEventListener("click", () => switchLanguage(b.dataset.lang));
  }
  $("vehicle").addEventListener("change", async () => {
    const car = (await all("vehicles")).find((v) => v.id === Number($("vehicle").value));
    if (car) $("km-start").value = car.last_km;
  });
  window.addEventListener("online", () => { render(); sync(); });
  window.addEventListener("offline", () => render());
  setInterval(sync, 30000);
  await render();
  document.body.dataset.ready = "1";
  sync();
}

main();
