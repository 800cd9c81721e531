// Live entries: rows arrive over Server-Sent Events; text only (never innerHTML).
(function () {
  const table = document.getElementById("live-rows");
  if (!table || !window.EventSource) return;
  const url = table.dataset.stream;
  const max = 100;
  const source = new EventSource(url);
  const cell = (tr, text, cls) => {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
  };
  source.addEventListener("decision", (msg) => {
    const d = JSON.parse(msg.data);
    if (document.querySelector(`tr[data-key="${CSS.escape(d.key)}"]`)) return;
    const tr = document.createElement("tr");
    tr.dataset.key = d.key;
    tr.className = "fresh";
    cell(tr, d.local);
    cell(tr, `${d.device} / ${d.gate || ""} ${d.direction_text || ""}`);
    cell(tr, d.name || d.member || "—");
    cell(tr, d.decision, d.granted ? "granted" : "denied");
    cell(tr, d.why, "opt");
    table.insertBefore(tr, table.firstChild);
    while (table.children.length > max) table.removeChild(table.lastChild);
  });
  source.addEventListener("figures", (msg) => {
    const f = JSON.parse(msg.data);
    for (const k of ["occupancy", "granted", "denied"]) {
      const el = document.getElementById(`fig-${k}`);
      if (el) el.textContent = f[k];
    }
    document.getElementById("live-state").textContent = t("live");
  });
  source.onerror = () => { document.getElementById("live-state").textContent = t("reconnecting…"); };
})();
