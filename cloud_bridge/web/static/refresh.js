// Reload the page while a remote command still waits for its result (fleet, receipts).
(function () {
  const ms = Number(document.currentScript && document.currentScript.dataset.after) || 2000;
  setTimeout(() => window.location.reload(), ms);
})();
