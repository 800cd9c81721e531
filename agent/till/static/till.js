// The 3click till: sign in, ring up a sale, pay cash or card; every text through t().
"use strict";
const T = window.TILL;
const $ = (id) => document.getElementById(id);
let catalog = {}, session = null, products = [], category = "";
const cart = [];  // {product, quantity}
let saleKey = newKey();

function t(text) { const v = catalog[text]; return typeof v === "string" && v ? v : text; }
function fmt(text, vars) { return text.replace(/%\((\w+)\)[sd]/g, (m, k) => String(vars[k])); }
function newKey() { return "till-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10); }
function money(cents) {
  return new Intl.NumberFormat(T.lang === "sl" ? "sl-SI" : "en-GB",
    {style: "currency", currency: "EUR"}).format(cents / 100);
}
function cents(text) {
  const m = String(text).trim().replace(",", ".").match(/^(\d{1,7})(?:\.(\d{1,2}))?$/);
  return m ? parseInt(m[1], 10) * 100 + parseInt((m[2] || "0").padEnd(2, "0"), 10) : null;
}
function say(text, ok) { const m = $("msg"); m.textContent = text; m.className = ok ? "ok" : "bad"; }

async function loadCatalog(lang) {
  const key = "till-catalog-" + lang;
  let data = null;
  try {
    const r = await fetch("/till/i18n/" + encodeURIComponent(lang));
    if (r.ok) { data = await r.json(); localStorage.setItem(key, JSON.stringify(data)); }
  } catch (e) { data = null; }
  if (!data) { try { data = JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { data = null; } }
  catalog = data ? data.messages : {};
  document.documentElement.lang = lang;
}

function labels() {
  const texts = {"signin-title": t("Cashier sign-in"), "l-cashier": t("Cashier number"), "l-pin": t("PIN"),
    "signin-go": t("Sign in"), "signout": t("Sign out"), "l-search": t("Search or scan"),
    "l-products": t("Products"), "l-cart": t("Receipt"), "l-disc": t("Discount %"),
    "l-total": t("Total"), "l-given": t("Cash given"), "l-voucher": t("Voucher code"), "cash": t("Pay cash"), "card": t("Pay by card"),
    "drawer": t("Open drawer"), "refund-open": t("Refund"), "refund-title": t("Refund"),
    "l-refund-of": t("Receipt number"), "refund-load": t("Find"), "refund-close": t("Back to sale"),
    "refund-go": t("Confirm refund"), "close-day": t("Close the day"), "l-move": t("Cash amount"),
    "move-float": t("Opening float"), "move-in": t("Cash in"), "move-out": t("Cash out")};
  for (const [id, text] of Object.entries(texts)) $(id).textContent = text;
}

async function api(path, body) {
  const r = await fetch(path, {method: body === undefined ? "GET" : "POST",
    headers: {"Content-Type": "application/json", "X-Till-Session": session ? session.token : ""},
    body: body === undefined ? undefined : JSON.stringify(body)});
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  return {status: r.status, data};
}

async function signIn(ev) {
  ev.preventDefault();
  const r = await api("/till/api/signin", {cashier: $("cashier").value.trim(), pin: $("pin").value});
  $("pin").value = "";
  if (r.status !== 200) {
    $("signin-msg").textContent = r.data.problem === "locked" ? t("Too many attempts, please wait")
      : t("Wrong cashier number or PIN");
    return;
  }
  await enter(r.data);
}

// signed in (PIN or card at the till's reader): the sale screen
async function enter(data) {
  session = data;
  const cat = await api("/till/api/catalogue");
  products = cat.data.products || [];
  $("signin").hidden = true; $("till").hidden = false; $("signout").hidden = false;
  $("refund-open").hidden = false; $("close-day").hidden = false;
  $("who").textContent = fmt(t("Cashier: %(name)s"), {name: session.name});
  renderCategories(); renderGrid(); renderCart();
  $("search").focus();
}

function signOut() {
  api("/till/api/signout", {});
  session = null; cart.length = 0;
  $("till").hidden = true; $("signout").hidden = true; $("signin").hidden = false;
  $("refund").hidden = true; $("refund-open").hidden = true; $("close-day").hidden = true;
  $("who").textContent = ""; $("signin-msg").textContent = ""; $("cashier").focus();
}

function renderCategories() {
  const names = [...new Set(products.map((p) => p.category).filter(Boolean))];
  const box = $("cats"); box.textContent = "";
  box.setAttribute("aria-label", t("Categories"));
  for (const name of ["", ...names]) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = name || t("All");
    b.setAttribute("aria-pressed", String(name === category));
    b.onclick = () => { category = name; renderCategories(); renderGrid(); };
    box.appendChild(b);
  }
}

function renderGrid() {
  const q = $("search").value.trim().toLowerCase();
  const grid = $("grid"); grid.textContent = "";
  for (const p of products) {
    if (category && p.category !== category) continue;
    if (q && !p.name.toLowerCase().includes(q) && p.barcode !== q) continue;
    const b = document.createElement("button");
    b.type = "button"; b.dataset.product = p.id;
    const name = document.createElement("span"); name.textContent = p.name;
    const price = document.createElement("span"); price.className = "price";
    price.textContent = money(p.price_cents) + " · " + t("VAT") + " " + p.vat_label;
    b.append(name, price);
    b.onclick = () => add(p);
    grid.appendChild(b);
  }
}

function add(p) {
  const found = cart.find((c) => c.product.id === p.id);
  if (found) found.quantity += 1; else cart.push({product: p, quantity: 1});
  say(fmt(t("Added: %(name)s"), {name: p.name}), true);
  const total = renderCart();
  api("/till/api/display", {product: p.id, total_cents: total});  // the customer's line
}

function onSearchKey(ev) {
  if (ev.key.toLowerCase() !== "enter") return;
  ev.preventDefault();
  // a keyboard-wedge scanner types the barcode and Enter into the focused search field
  const q = $("search").value.trim();
  // a value voucher's code scanned while paying goes to the voucher field
  if (q.startsWith("ET1")) { $("voucher").value = q; $("search").value = ""; return; }
  const hit = products.find((p) => p.barcode === q) ||
    (products.filter((p) => p.name.toLowerCase().includes(q.toLowerCase())).length === 1
      ? products.find((p) => p.name.toLowerCase().includes(q.toLowerCase())) : null);
  if (hit) { add(hit); $("search").value = ""; renderGrid(); }
  else say(fmt(t("No product for \"%(code)s\""), {code: q}), false);
}

function renderCart() {
  const list = $("cart"); list.textContent = "";
  let sum = 0;
  cart.forEach((c, i) => {
    const li = document.createElement("li");
    const name = document.createElement("span"); name.textContent = c.product.name;
    const minus = document.createElement("button"); minus.type = "button"; minus.textContent = "−";
    minus.setAttribute("aria-label", fmt(t("One less %(name)s"), {name: c.product.name}));
    minus.onclick = () => { c.quantity -= 1; if (c.quantity <= 0) cart.splice(i, 1); renderCart(); };
    const qty = document.createElement("span"); qty.textContent = "× " + c.quantity;
    const plus = document.createElement("button"); plus.type = "button"; plus.textContent = "+";
    plus.setAttribute("aria-label", fmt(t("One more %(name)s"), {name: c.product.name}));
    plus.onclick = () => { c.quantity += 1; renderCart(); };
    const pct = document.createElement("button"); pct.type = "button";
    pct.textContent = c.discount ? "−" + c.discount + " %" : "%";
    pct.setAttribute("aria-label", fmt(t("Line discount: %(name)s"), {name: c.product.name}));
    // the percentage typed in the discount field goes to this line only
    pct.onclick = () => {
      const v = $("discount").value.trim().replace(",", ".");
      c.discount = v && parseFloat(v) > 0 ? v : null; $("discount").value = ""; renderCart();
    };
    const amount = document.createElement("span"); amount.className = "amount";
    const gross = c.product.price_cents * c.quantity;
    amount.textContent = money(c.discount ? gross - Math.round(gross * parseFloat(c.discount) / 100) : gross);
    li.append(name, minus, qty, plus, pct, amount);
    list.appendChild(li);
    sum += c.discount ? gross - Math.round(gross * parseFloat(c.discount) / 100) : gross;
  });
  $("sum").textContent = money(sum);
  return sum;
}

async function pay(method) {
  if (!cart.length) { say(t("The receipt is empty"), false); return; }
  const body = {idempotency_key: saleKey, payment: {method},
    lines: cart.map((c) => (c.discount
      ? {product: c.product.id, quantity: String(c.quantity), discount_percent: c.discount}
      : {product: c.product.id, quantity: String(c.quantity)}))};
  const disc = $("discount").value.trim();
  if (disc) body.receipt_discount_percent = disc.replace(",", ".");
  if (method === "cash" && $("given").value.trim()) {
    const given = cents($("given").value);
    if (given === null) { say(t("Enter the cash given, e.g. 20,00"), false); return; }
    body.payment.given = (given / 100).toFixed(2);
  }
  const voucher = $("voucher").value.trim();
  if (voucher) body.payment.voucher = voucher;
  const r = await api("/till/api/sale", body);
  if (r.status === 403) { say(t("You are not permitted to give discounts"), false); return; }
  if (r.status === 401) { signOut(); return; }
  if (r.status === 409 && r.data.problem === "tickets_unavailable") {
    say(ticketProblem(r.data.reason), false); return;
  }
  if (r.status === 409 && r.data.problem === "voucher_refused") {
    say(voucherProblem(r.data.reason), false); $("voucher").focus(); return;
  }
  if (r.status !== 200) {
    say(r.data.problem === "not_enough_cash" ? t("The cash given is less than the total")
      : t("The sale was refused") + ": " + (r.data.detail || r.data.problem || r.status), false);
    return;
  }
  const d = r.data;
  let text = fmt(t("Receipt %(number)s printed"), {number: d.invoice_id});
  if (d.voucher_left_cents !== null) text += " · " + fmt(t("Voucher paid %(paid)s, %(left)s left on it"), {paid: money(d.voucher_cents), left: money(d.voucher_left_cents)});
  if (method === "cash") text += " · " + fmt(t("Change: %(amount)s"), {amount: money(d.change_cents)});
  if (d.fiscal_state !== "fiscalised") text += " · " + t("FURS confirmation follows later");
  say(text, true);
  cart.length = 0; $("given").value = ""; $("voucher").value = ""; $("discount").value = ""; saleKey = newKey();
  renderCart();
  refreshCatalogue();
}

// between customers: the bridge may have sent a newer catalogue (docs/pos.md)
async function refreshCatalogue() {
  const cat = await api("/till/api/catalogue");
  if (cat.status !== 200 || cart.length) return;
  products = cat.data.products || [];
  renderCategories(); renderGrid();
}

async function drawer() {
  const r = await api("/till/api/drawer", {});
  say(r.status === 200 ? t("Drawer opened") : t("You are not permitted to open the drawer"),
    r.status === 200);
}

// -- refunds: lines of an earlier receipt, each up to what is left of it ------------
let refundOf = null, refundKey = newKey();
function showRefund(open) {
  $("refund").hidden = !open; $("till").hidden = open;
  $("refund-msg").textContent = ""; $("refund-lines").textContent = ""; $("refund-go").hidden = true;
  if (open) $("refund-of").focus();
}
async function loadRefund() {
  const id = $("refund-of").value.trim();
  const r = await api("/till/api/receipts/" + encodeURIComponent(id));
  $("refund-lines").textContent = ""; $("refund-go").hidden = true;
  if (r.status === 403) { $("refund-msg").textContent = t("You are not permitted to give refunds"); return; }
  if (r.status !== 200) { $("refund-msg").textContent = t("No such receipt on this till"); return; }
  refundOf = id; refundKey = newKey();
  $("refund-msg").textContent = "";
  for (const ln of r.data.lines) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const name = document.createElement("span");
    name.textContent = fmt(t("%(name)s (left: %(left)s)"), {name: ln.name, left: ln.left});
    const input = document.createElement("input");
    input.inputMode = "decimal"; input.value = "0"; input.size = 5; input.dataset.line = ln.line;
    label.append(name, " ", input); li.appendChild(label);
    $("refund-lines").appendChild(li);
  }
  $("refund-go").hidden = r.data.lines.length === 0;
}
async function confirmRefund() {
  const lines = [...$("refund-lines").querySelectorAll("input")]
    .map((i) => ({line: parseInt(i.dataset.line, 10), quantity: i.value.trim().replace(",", ".")}))
    .filter((l) => l.quantity && parseFloat(l.quantity) > 0);
  if (!lines.length) { $("refund-msg").textContent = t("Choose what to refund"); return; }
  const r = await api("/till/api/refund", {idempotency_key: refundKey, original: refundOf,
    lines, method: "cash"});
  if (r.status === 403) { $("refund-msg").textContent = t("You are not permitted to give refunds"); return; }
  if (r.status !== 200) {
    $("refund-msg").textContent = r.data.problem === "refund_too_large"
      ? t("More than is left to refund") : t("The refund was refused");
    return;
  }
  const total = cents(String(r.data.total).replace("-", ""));
  $("refund-msg").textContent = fmt(t("Refund %(number)s printed, pay back %(amount)s"),
    {number: r.data.invoice_id, amount: money(total || 0)});
  $("refund-go").hidden = true; refundKey = newKey();
}

// -- cash in the drawer and the day's closing ------------------------------------------
async function cashMove(kind) {
  const amount = cents($("move").value);
  if (!amount) { say(t("Enter an amount, e.g. 100,00"), false); return; }
  const r = await api("/till/api/cash", {kind, amount: (amount / 100).toFixed(2)});
  if (r.status === 403) { say(t("You are not permitted to open the drawer"), false); return; }
  if (r.status !== 200) { say(t("The cash move was refused"), false); return; }
  $("move").value = "";
  say(fmt(t("Cash recorded: %(amount)s"), {amount: money(amount)}), true);
}
async function closeDay() {
  const r = await api("/till/api/close", {});
  if (r.status === 403) { say(t("You are not permitted to close the day"), false); return; }
  if (r.status !== 200) { say(t("The closing failed"), false); return; }
  const d = r.data;
  say(fmt(t("Closing %(number)s: %(count)s receipts, total %(total)s, cash in the drawer %(cash)s"),
    {number: d.closing_id, count: d.receipts, total: money(d.total_cents),
     cash: money(d.expected_cash_cents)}), true);
}

async function start() {
  await loadCatalog(T.lang);
  labels();
  $("signin").addEventListener("submit", signIn);
  $("signout").onclick = signOut;
  $("search").addEventListener("input", renderGrid);
  $("search").addEventListener("keydown", onSearchKey);
  $("cash").onclick = () => pay("cash");
  $("card").onclick = () => pay("card");
  $("drawer").onclick = drawer;
  $("refund-open").onclick = () => showRefund(true);
  $("refund-close").onclick = () => showRefund(false);
  $("refund-load").onclick = loadRefund;
  $("refund-go").onclick = confirmRefund;
  $("close-day").onclick = closeDay;
  for (const kind of ["float", "in", "out"]) $("move-" + kind).onclick = () => cashMove(kind);
  $("cashier").focus();
  document.body.dataset.ready = "1";
  pollReads();
}
start();

// the till's own reader (agent/till/reads.py): a cashier's card, a scanned barcode
let readSeq = 0;
async function pollReads() {
  try {
    const r = await api("/till/api/reads?after=" + readSeq);
    if (r.status === 200) {
      readSeq = r.data.last;
      for (const read of r.data.reads) await onRead(read);
    }
  } catch (e) { /* the agent restarts: keep polling */ }
  setTimeout(pollReads, 500);
}

async function onRead(read) {
  if (read.kind === "signin") {
    if (session) { cart.length = 0; saleKey = newKey(); }
    $("signin-msg").textContent = "";
    await enter(read.session);
  } else if (read.kind === "unknown_card") {
    const where = session ? $("msg") : $("signin-msg");
    where.textContent = t("This card belongs to no cashier");
  } else if (read.kind === "product" && session) {
    const hit = products.find((p) => p.id === read.product);
    if (hit) add(hit);
  } else if (read.kind === "unknown_barcode" && session) {
    say(t("No product with the scanned barcode"), false);
  }
}

// why the till may not sell a ticket or voucher now (agent/till/ticket_issuer.py)
// the voucher stays in its field so the cashier can correct it or remove it
function voucherProblem(reason) {
  if (reason === "voucher_used_up") return t("Nothing is left on this voucher");
  if (reason === "voucher_expired") return t("This voucher has expired");
  if (reason === "voucher_not_yet_valid") return t("This voucher is not valid yet");
  if (reason === "voucher_other_site") return t("This voucher is for another location");
  if (reason === "voucher_revoked") return t("This voucher was refunded or cancelled");
  if (reason === "voucher_no_value") return t("This code is a ticket, not a voucher with a value");
  if (reason === "voucher_balance_changed") return t("The voucher was just used elsewhere; pay again");
  return t("This voucher code is not valid");
}

function ticketProblem(reason) {
  if (reason === "no_delegation") return t("Tickets cannot be sold on this till yet: the bridge has not authorised it to issue them");
  if (reason === "delegation_expired") return t("This till's authorisation to issue tickets has expired; ask for a new one");
  if (reason === "ticket_quantity") return t("Tickets are sold in whole pieces, at most 50 in one sale");
  return t("This till cannot issue tickets");
}
