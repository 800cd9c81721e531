// t("English") and tn("one", "many", n) for page scripts, over the catalog of the page's
// language (<html lang>) served by /i18n/{lang}.json (cloud_bridge/web/script_catalogs.py).
// English needs no catalog: the msgid is the text.
(function () {
  var messages = {}, pluralIndex = function (n) { return n === 1 ? 0 : 1; };
  // the plural rules of the languages here (contracts.i18n.plural_rule), written out:
  // the pages' Content-Security-Policy allows no eval of the served expression
  var rules = {
    sl: function (n) { var m = n % 100; return m === 1 ? 0 : m === 2 ? 1 : (m === 3 || m === 4) ? 2 : 3; }
  };
  window.t = function (msgid) { return messages[msgid] || msgid; };
  window.tn = function (one, many, n) {
    var forms = messages[one + "|" + many];
    if (forms && forms.length) return forms[Math.min(pluralIndex(n), forms.length - 1)];
    return n === 1 ? one : many;
  };
  var lang = document.documentElement.lang || "sl";
  window.i18nReady = lang === "en" ? Promise.resolve() :
    fetch("/i18n/" + encodeURIComponent(lang) + ".json")
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (c) { messages = c.messages || {}; if (rules[c.lang]) pluralIndex = rules[c.lang]; })
      .catch(function () {});
})();
