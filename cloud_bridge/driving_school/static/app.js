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
let db = null;
let syncing = false;
const $ = (id) => document.getElementById(id);

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
    const t = db.transaction(stores, "readwrite");
    work(t);
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error("transaction aborted"));
  });
}

const all = (store) => req(db.transaction(store).objectStore(store).getAll());
const meta = (key) => req(db.transaction("meta").objectStore("meta").get(key));
const setMeta = (key, value) => write(["meta"], (t) => t.objectStore("meta").put(value, key));

// -- small helpers ---------------------------------------------------------------------

function show(text, isError) {
  $("message").textContent = text || "";
  $("message").className = isError ? "error" : "";
}

function hhmm(iso) {
  return new Date(iso).toLocaleTimeString("sl-SI", { hour: "2-digit", minute: "2-digit" });
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
  await write(["meta", "candidates", "vehicles", "lessons"], (t) => {
    const { candidates, vehicles, lessons, ...rest } = boot;
    t.objectStore("meta").put(rest, "boot");
    t.objectStore("candidates").clear();
    for (const c of candidates) t.objectStore("candidates").put(c);
    t.objectStore("vehicles").clear();
    for (const v of vehicles) t.objectStore("vehicles").put(v);
    for (const l of lessons) {
      // a lesson with edits still queued here keeps what the instructor typed
      if (queued.has(l.id)) continue;
      const mine = local.get(l.id);
      const status = mine && mine.status === "conflict" && mine.version === l.version
        ? "conflict" : "synced";
      t.objectStore("lessons").put({ ...l, status });
    }
  });
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  if (!navigator.onLine) {
    $("login-error").textContent = "Za prijavo je potrebna povezava.";
    return;
  }
  const previous = await meta("boot");
  const waiting = (await all("outbox")).length;
  const username = $("username").value.trim().toLowerCase();
  if (previous && waiting && previous.username !== username) {
    $("login-error").textContent =
      `Na tablici je ${waiting} neposlanih ur uporabnika ${previous.username}; najprej se prijavi on.`;
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
      $("login-error").textContent = body.detail || "Prijava ni uspela.";
      return;
    }
    $("password").value = "";
    await storeBootstrap(body);
    await render();
    sync();
  } catch (err) {
    $("login-error").textContent = "Strežnik ni dosegljiv: " + err.message;
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
    show(`Odjava ni mogoča: ${waiting} ur še ni poslanih.`, true);
    return;
  }
  const boot = await meta("boot");
  try {
    await fetch("api/logout", { method: "POST", credentials: "same-origin",
                                headers: { "X-CSRF-Token": boot ? boot.csrf : "" } });
  } catch (err) { /* the session expires by itself */ }
  await write(["meta", "candidates", "vehicles", "lessons"], (t) => {
    t.objectStore("meta").delete("boot");
    t.objectStore("meta").delete("running");
    t.objectStore("candidates").clear();
    t.objectStore("vehicles").clear();
    t.objectStore("lessons").clear();
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
    $("form-error").textContent = "Izberi kandidata in vozilo ter vpiši km ob začetku.";
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
    $("form-error").textContent = "km ob koncu mora biti vsaj toliko kot ob začetku.";
    return;
  }
  if (pad.strokes < 3) {
    $("form-error").textContent = "Kandidat se mora podpisati.";
    return;
  }
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
  await write(["lessons", "outbox", "meta"], (t) => {
    t.objectStore("lessons").put({ ...lesson, day: localDay(lesson.started_at), version: 0,
                                   status: "pending", conflicts: [] });
    t.objectStore("outbox").put(edit);
    t.objectStore("meta").delete("running");
  });
  $("km-end").value = ""; $("remarks").value = ""; $("km-start").value = kmEnd;
  clearSignature();
  show("Ura je shranjena na tablici.");
  await render();
  sync();
}

async function cancelLesson() {
  await write(["meta"], (t) => t.objectStore("meta").delete("running"));
  await render();
}

// -- correcting a saved lesson -------------------------------------------------------------

let editing = null;

function openEdit(lesson) {
  editing = lesson;
  $("edit-title").textContent = `${localDay(lesson.started_at)} ${hhmm(lesson.started_at)}`;
  $("edit-km-end").value = lesson.km_end;
  $("edit-remarks").value = lesson.remarks;
  $("edit-error").textContent = "";
  $("edit-view").hidden = false;
  $("edit-view").scrollIntoView();
}

async function saveEdit() {
  const km = Number($("edit-km-end").value);
  if (!(km >= editing.km_start)) {
    $("edit-error").textContent = "km ob koncu mora biti vsaj toliko kot ob začetku.";
    return;
  }
  const lesson = {};
  for (const k of ["id", "candidate_id", "vehicle_id", "started_at", "ended_at", "lesson_count",
                   "lesson_type", "km_start", "signature"]) lesson[k] = editing[k];
  lesson.km_end = km;
  lesson.remarks = $("edit-remarks").value.trim();
  const now = Date.now();
  // base_version: the server version this tablet last saw (0 if never synced)
  const edit = { edit_id: crypto.randomUUID(), base_version: editing.version || 0,
                 edited_ms: now, queued: now, lesson };
  await write(["lessons", "outbox"], (t) => {
    t.objectStore("lessons").put({ ...editing, ...lesson, status: "pending" });
    t.objectStore("outbox").put(edit);
  });
  editing = null;
  $("edit-view").hidden = true;
  await render();
  sync();
}

// -- sync -----------------------------------------------------------------------------------

async function sync() {
  if (syncing || !navigator.onLine) return;
  const boot = await meta("boot");
  if (!boot) return;
  syncing = true;
  try {
    const device = await deviceId();
    let queue = (await all("outbox")).sort((a, b) => a.queued - b.queued);
    while (queue.length) {
      const batch = queue.slice(0, BATCH);
      const resp = await fetch("api/sync", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
        body: JSON.stringify({ device, edits: batch.map(({ queued, ...e }) => e) }),
      });
      if (resp.status === 401 || resp.status === 403) {
        show("Prijava je potekla: prijavi se znova, neposlane ure ostanejo na tablici.", true);
        await setMeta("boot", { ...boot, expired: true });
        break;
      }
      if (!resp.ok) throw new Error(`strežnik je odgovoril ${resp.status}`);
      const { results } = await resp.json();
      const later = new Set(queue.slice(batch.length).map((e) => e.lesson.id));
      const local = new Map((await all("lessons")).map((l) => [l.id, l]));
      await write(["lessons", "outbox"], (t) => {
        for (const r of results) {
          const mine = local.get(r.lesson_id);
          if (r.outcome === "rejected") {
            if (mine) t.objectStore("lessons").put({ ...mine, status: "rejected", error: r.error });
          } else if (r.lesson && !later.has(r.lesson_id)) {
            t.objectStore("lessons").put({ ...r.lesson, conflicts: r.conflicts || [],
                                           status: r.outcome === "conflict" ? "conflict" : "synced" });
          }
          t.objectStore("outbox").delete(r.edit_id); // only now: the server has answered
        }
      });
      queue = queue.slice(batch.length);
    }
    if (!queue.length) await refresh();
  } catch (err) {
    show("Pošiljanje ni uspelo (" + err.message + "); ure ostanejo v čakalni vrsti.", true);
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
  const parts = [`km ${d.km_start}–${d.km_end}`, `opombe: "${d.remarks}"`];
  if (d.signature_differs) parts.push("drug podpis");
  return `Ni uveljavljeno (${note.device}, ${note.username}, ` +
    `${new Date(note.edited_ms).toLocaleString("sl-SI")}): ${parts.join(", ")}`;
}

async function render() {
  const boot = await meta("boot");
  const online = navigator.onLine;
  $("net").textContent = online ? "povezan" : "brez povezave";
  $("net").className = "badge " + (online ? "online" : "offline");
  const outbox = await all("outbox");
  $("pending").textContent = `Za pošiljanje: ${outbox.length}`;
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
  options($("candidate"), candidates,
          (c) => `${c.mine ? "" : "(nadomeščanje) "}${c.last_name} ${c.first_name} (${c.register_no})`, true);
  options($("vehicle"), vehicles, (v) => `${v.registration} ${v.make_model}`, true);
  const types = Object.entries(boot.lesson_types).map(([id, label]) => ({ id, label }));
  options($("lesson-type"), types, (t) => t.label, true);
  if ($("km-start").value === "" && vehicles.length) {
    $("km-start").value = (cars.get(Number($("vehicle").value)) || vehicles[0]).last_km;
  }
  $("candidates").replaceChildren(...candidates.filter((c) => c.mine).map((c) => el("li", { "data-candidate": c.id },
    `${c.last_name} ${c.first_name} — ${c.category} — opravljenih ur: ${c.lessons_done}` +
    (c.required_lessons ? ` / ${c.required_lessons}` : ""))));

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

  const lessons = (await all("lessons")).sort((a, b) => b.started_at.localeCompare(a.started_at));
  const statusText = { pending: "čaka na pošiljanje", synced: "shranjeno",
                       conflict: "spor", rejected: "zavrnjeno" };
  $("lessons").replaceChildren(...lessons.map((l) => {
    const who = people.get(l.candidate_id);
    const car = cars.get(l.vehicle_id);
    const state = el("td", { className: "state" },
      statusText[l.status] + (l.version ? ` (v${l.version})` : ""));
    if (l.error) state.append(el("div", { className: "note" }, l.error));
    for (const n of l.conflicts || []) {
      state.append(el("div", { className: "note conflict-note" }, noteText(n)));
    }
    const fix = el("button", { type: "button", className: "edit" }, "Popravi");
    fix.addEventListener("click", () => openEdit(l));
    return el("tr", { "data-lesson-id": l.id, "data-status": l.status },
      el("td", {}, l.day || localDay(l.started_at)),
      el("td", {}, `${hhmm(l.started_at)}–${hhmm(l.ended_at)}`),
      el("td", {}, who ? `${who.last_name} ${who.first_name}` : `#${l.candidate_id}`),
      el("td", {}, boot.lesson_types[l.lesson_type] || l.lesson_type),
      el("td", {}, l.lesson_count),
      el("td", {}, car ? car.registration : `#${l.vehicle_id}`),
      el("td", { className: "km" }, `${l.km_start}–${l.km_end}`),
      el("td", { className: "remarks" }, l.remarks),
      el("td", {}, el("img", { src: l.signature, alt: "podpis" })),
      state,
      el("td", {}, l.status === "rejected" ? "" : fix));
  }));
}

// -- start -----------------------------------------------------------------------------------

async function main() {
  db = await openDb();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch((err) => show("Brez načina brez povezave: " + err.message, true));
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
