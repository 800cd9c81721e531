// The time-clock kiosk: a card tap or a PIN becomes a punch; every text through t().
"use strict";
const K = window.KIOSK;
const $ = (id) => document.getElementById(id);
const LETTERS = "abcdefghijklmnopqrstuvwxyz-".split("");
const DIGITS = ["1", "2", "3", "4", "5", "6", "7", "8", "9"];
let catalog = {}, pluralOf = (n) => (n === 1 ? 0 : 1), lang = K.lang;
// what the screen shows: idle | pending | result | pin (and the message behind it)
const state = {screen: "idle", msg: null, link: undefined};
const pin = {stage: "emp", emp: "", pin: "", letters: false, note: "", busy: false};
let resetTimer = null;

function t(text) { const v = catalog[text]; return typeof v === "string" && v ? v : text; }
function tn(one, many, n) {
  const forms = catalog[one + "|" + many];
  return Array.isArray(forms) ? forms[pluralOf(n)] || many : (n === 1 ? one : many);
}
function fmt(text, vars) { return text.replace(/%\((\w+)\)[sd]/g, (m, k) => String(vars[k])); }

function punchLabels() {
  return {arrival: t("Arrival"), departure: t("Departure"), break_start: t("Start of break"),
    break_end: t("End of break"), trip_start: t("Leaving on business"),
    trip_end: t("Back from business"), private_start: t("Leaving on private matters"),
    private_end: t("Back from private matters")};
}
function refusalText(problem) {
  const texts = {unknown: t("Unknown card"), malformed: t("Unreadable code"),
    blocked: t("Card blocked"), bad_signature: t("Invalid code"),
    replayed: t("Code already used"), expired: t("Code has expired"),
    wrong: t("Wrong number or PIN"), locked: t("PIN locked, try again later"),
    terminal_locked: t("Too many attempts, please wait")};
  return texts[problem] || t("Refused");
}

async function loadCatalog(wanted) {
  const key = "kiosk-catalog-" + wanted;
  let data = null;
  try {
    const r = await fetch("/kiosk/i18n/" + encodeURIComponent(wanted));
    if (r.ok) { data = await r.json(); localStorage.setItem(key, JSON.stringify(data)); }
  } catch (e) { data = null; }
  if (!data) { try { data = JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { data = null; } }
  catalog = data ? data.messages : {};
  const rule = data ? data.plural : "n == 1 ? 0 : 1";
  pluralOf = new Function("n", "return +(" + rule + ");");
  lang = wanted;
  document.documentElement.lang = wanted;
}

async function setLanguage(wanted) { await loadCatalog(wanted); render(); }

// -- the clock: the site's zone, not the browser's --------------------------------
function tick() {
  const locale = lang === "sl" ? "sl-SI" : "en-GB", now = new Date();
  $("clock").textContent = new Intl.DateTimeFormat(locale, {timeZone: K.zone, hour: "2-digit",
    minute: "2-digit", second: "2-digit", hour12: false}).format(now);
  $("date").textContent = new Intl.DateTimeFormat(locale, {timeZone: K.zone, weekday: "long",
    day: "numeric", month: "long", year: "numeric"}).format(now);
}

// -- drawing ------------------------------------------------------------------------
function renderChrome() {
  document.title = t("Time clock");
  $("terminal").textContent = fmt(t("Terminal %(id)s"), {id: K.terminal});
  $("pinbtn").textContent = t("Enter with PIN");
  $("types").setAttribute("aria-label", t("Punch type"));
  $("keys").setAttribute("aria-label", t("Keypad"));
  const nav = $("langs"); nav.innerHTML = ""; nav.setAttribute("aria-label", t("Language"));
  for (const code of K.languages) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = K.language_names[code]; b.lang = code;
    b.dataset.lang = code; b.setAttribute("aria-pressed", String(code === lang));
    b.onclick = () => setLanguage(code);
    nav.appendChild(b);
  }
  renderLink();
}

function renderLink() {
  const el = $("link"), online = state.link;
  el.className = online === false || online === "agent" ? "offline" : "";
  el.textContent = online === "agent" ? t("Terminal has no connection to the agent")
    : online === false ? t("Offline (work goes on)") : online === true ? t("Connected") : t("Ready");
}

function text(id, value, cls) { $(id).textContent = value || ""; if (cls !== undefined) $(id).className = cls; }

function render() {
  renderChrome();
  const s = state.screen, msg = state.msg, labels = punchLabels();
  $("pinpanel").hidden = s !== "pin";
  $("pinbtn").hidden = s === "pin";
  for (const id of ["greeting", "result", "hint"]) $(id).hidden = s === "pin";
  $("types").hidden = s !== "pending";
  $("bar").hidden = s !== "pending";
  if (s === "idle") { text("greeting", t("Hold your card to the reader")); text("result", "", ""); text("hint", ""); }
  if (s === "pending") {
    text("greeting", fmt(t("Hello, %(name)s"), {name: msg.first_name}));
    text("result", labels[msg.punch_type], "ok");
    text("hint", t("Wrong type? Choose another:"));
    renderTypes(msg, labels);
  }
  if (s === "result") {
    const ok = msg.status === "recorded";
    text("greeting", "");
    text("result", ok ? fmt(t("%(type)s recorded, %(name)s"), {type: labels[msg.punch_type], name: msg.first_name})
      : refusalText(msg.problem), ok ? "ok" : "bad");
    text("hint", msg.retry_after_s ? retryText(msg.retry_after_s) : "");
  }
  if (s === "pin") renderPin();
}

function retryText(n) { return fmt(t("Try again in %(n)s s"), {n: n}); }

function renderTypes(msg, labels) {
  const types = $("types"); types.innerHTML = "";
  for (const type of msg.choices) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = labels[type]; b.dataset.type = type;
    if (type === msg.punch_type) { b.className = "suggested"; b.setAttribute("aria-current", "true"); }
    b.onclick = () => choose(type);
    types.appendChild(b);
  }
}

// -- screens ------------------------------------------------------------------------
function idleSoon(ms) {
  clearTimeout(resetTimer);
  resetTimer = setTimeout(async () => {
    state.screen = "idle"; state.msg = null;
    if (lang !== K.default_lang) await loadCatalog(K.default_lang);  // the next person
    render();
  }, ms);
}

function showPending(msg) {
  state.screen = "pending"; state.msg = msg; render();
  const bar = $("bar").firstElementChild;
  bar.classList.remove("running");
  bar.style.transitionDuration = K.choose_window_s + "s";
  requestAnimationFrame(() => requestAnimationFrame(() => bar.classList.add("running")));
  idleSoon(15000);
}

function showResult(msg) { state.screen = "result"; state.msg = msg; render(); idleSoon(5000); }

async function choose(type) {
  if (state.screen !== "pending") return;
  const r = await fetch("/kiosk/api/pending/" + state.msg.pending_id, {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({punch_type: type})});
  if (r.ok) showResult(await r.json());
}

function handle(msg) {
  if (msg.kind === "link") { state.link = msg.online; renderLink(); return; }
  // a refusal while someone types a PIN is theirs (shown on the pad) or a stray tap
  if (state.screen === "pin" && msg.status === "refused") return;
  if (msg.status === "pending") showPending(msg); else showResult(msg);
}

// -- PIN: employee number (digits, or letters for older ids), then the PIN -----------
function openPin() {
  clearTimeout(resetTimer);
  Object.assign(pin, {stage: "emp", emp: "", pin: "", letters: false, note: "", busy: false});
  state.screen = "pin"; render();
  idleSoon(60000);
}

function cancelPin() {
  Object.assign(pin, {stage: "emp", emp: "", pin: "", letters: false, note: ""});
  state.screen = "idle"; state.msg = null; render();
}

function keyButton(label, action, extra) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; b.onclick = action;
  for (const [k, v] of Object.entries(extra || {})) {
    if (k === "aria") b.setAttribute("aria-label", v); else b.setAttribute(k, v);
  }
  return b;
}

function renderPin() {
  $("emplabel").textContent = t("Employee number");
  $("pinlabel").textContent = t("PIN");
  $("pincancel").textContent = t("Cancel");
  $("empfield").value = pin.emp; $("pinfield").value = pin.pin;
  $("empfield").className = pin.stage === "emp" ? "active" : "";
  $("pinfield").className = pin.stage === "pin" ? "active" : "";
  $("pinmsg").className = pin.note ? "error" : "";
  $("pinmsg").textContent = pin.note || (pin.stage === "emp"
    ? t("Type your employee number, then press Next.") : t("Type your PIN, then press Confirm."));
  const keys = $("keys"); keys.innerHTML = "";
  const letters = pin.stage === "emp" && pin.letters;
  keys.className = letters ? "letters" : "";
  for (const k of letters ? LETTERS : DIGITS) keys.appendChild(keyButton(k, () => type(k), {"data-key": k}));
  if (pin.stage === "emp") {
    keys.appendChild(letters
      ? keyButton("123", () => { pin.letters = false; renderPin(); }, {aria: t("Digits") + " 123", "data-key": "digits", class: "key-wide"})
      : keyButton("ABC", () => { pin.letters = true; renderPin(); }, {aria: t("Letters") + " ABC", "data-key": "letters", class: "key-wide"}));
  } else {
    keys.appendChild(keyButton("⌫", () => back(), {aria: t("Delete last character"), "data-key": "back"}));
  }
  if (!letters) keys.appendChild(keyButton("0", () => type("0"), {"data-key": "0"}));
  if (pin.stage === "emp") keys.appendChild(keyButton("⌫", () => back(), {aria: t("Delete last character"), "data-key": "back"}));
  keys.appendChild(keyButton(pin.stage === "emp" ? t("Next") : t("Confirm"), () => submit(),
    {"data-key": "ok", class: pin.stage === "emp" && !letters ? "key-wide key-ok key-full" : "key-wide key-ok"}));
}

function type(k) {
  pin.note = "";
  if (pin.stage === "emp" && pin.emp.length < 64) pin.emp += k;
  else if (pin.stage === "pin" && pin.pin.length < 12) pin.pin += k;
  idleSoon(60000); renderPin();
}

function back() {
  if (pin.stage === "emp") pin.emp = pin.emp.slice(0, -1); else pin.pin = pin.pin.slice(0, -1);
  renderPin();
}

async function submit() {
  if (pin.stage === "emp") {
    if (!pin.emp) { pin.note = t("Type your employee number first."); renderPin(); return; }
    pin.stage = "pin"; pin.note = ""; renderPin(); return;
  }
  if (pin.busy || !pin.pin) return;
  pin.busy = true;
  let reply = null;
  try {
    const r = await fetch("/kiosk/api/pin", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({terminal: K.terminal, employee: pin.emp, pin: pin.pin})});
    reply = r.ok ? await r.json() : {status: "refused", problem: r.status === 422 ? "wrong" : ""};
  } finally { pin.busy = false; }
  if (reply.status === "refused") {
    pin.pin = ""; pin.note = refusalText(reply.problem)
      + (reply.retry_after_s ? " " + retryText(reply.retry_after_s) : "");
    renderPin(); return;
  }
  handle(reply);
}

function onKey(e) {
  if (state.screen !== "pin") return;
  const name = e.key.toLowerCase();
  if (name === "escape") cancelPin();
  else if (name === "enter") submit();
  else if (name === "backspace") back();
  else if (/^[0-9]$/.test(e.key) || (pin.stage === "emp" && /^[a-zA-Z.\-_]$/.test(e.key))) type(e.key.toLowerCase());
  else return;
  e.preventDefault();
}

// -- start --------------------------------------------------------------------------
async function start() {
  await loadCatalog(lang);
  $("pinbtn").onclick = openPin;
  $("pincancel").onclick = cancelPin;
  $("empfield").onclick = () => { pin.stage = "emp"; renderPin(); };
  document.addEventListener("keydown", onKey);
  render(); tick(); setInterval(tick, 500);
  const es = new EventSource("/kiosk/events/" + encodeURIComponent(K.terminal));
  es.onmessage = (e) => handle(JSON.parse(e.data));
  es.onerror = () => { state.link = "agent"; renderLink(); };
  document.body.dataset.ready = "1";
}
start();
