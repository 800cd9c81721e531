// The member's phone QR page (cloud_bridge/member_qr.py): a fresh signed code every
// time step. Offline is said only for a real network failure; when the bridge answers
// that the code is not valid now, the page says that.
(function () {
  var me = document.currentScript;
  var tokenUrl = me.dataset.tokenUrl;
  var key = new URLSearchParams(location.hash.slice(1)).get("k");
  var qr = document.getElementById("qr"), state = document.getElementById("state");
  function say(text, refused) {
    state.textContent = text;
    state.className = refused ? "refused" : "";
  }
  function refresh() {
    fetch(tokenUrl, {method: "POST", cache: "no-store",
                     headers: {authorization: "Bearer " + key, accept: "application/json"}})
      .then(function (r) {
        if (r.ok) return r.json();
        qr.classList.add("stale");
        if (r.status === 404) { say(t("This link is not valid. Ask the reception for a new one."), true); return null; }
        if (r.status === 403) {
          say(t("Your entry code is not valid now: there is no valid membership or the card is blocked. Ask the reception."), true);
          setTimeout(refresh, 60000);
          return null;
        }
        say(t("The server could not make a code. Trying again…"), true);
        setTimeout(refresh, 10000);
        return null;
      })
      .then(function (data) {
        if (!data) return;
        qr.innerHTML = data.svg;
        qr.classList.remove("stale");
        if (data.first_name) document.getElementById("hello").textContent = data.first_name;
        say(t("Next code in %(n)s s.").replace("%(n)s", data.refresh_s), false);
        setTimeout(refresh, data.refresh_s * 1000);
      }, function () {
        qr.classList.add("stale");
        say(t("No connection: the code is not fresh."), true);
        setTimeout(refresh, 5000);
      });
  }
  window.i18nReady.then(function () {
    if (!key) { say(t("The link is incomplete."), true); return; }
    refresh();
  });
})();
