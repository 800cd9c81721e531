// A signature pad (docs/waivers.md): each .signature-pad holds a <canvas> and a
// "clear" button; strokes drawn with a finger, a pen or the mouse are kept as the d of
// one SVG path in a 600 x 200 box ("M x,y" starts a stroke, "L x,y" continues it) and
// written to the input named by data-input (the server checks it: waiver_drawing.py).
// The texts are in the page; typing the full name stays the alternative to drawing.
(function () {
  "use strict";
  var W = 600, H = 200, MAX_CHARS = 19000;
  function pad(box) {
    var canvas = box.querySelector("canvas");
    var input = document.getElementById(box.getAttribute("data-input"));
    var clear = box.querySelector(".clear-signature");
    var ink = canvas.getContext("2d");
    var parts = [], size = 0, down = false, last = null;
    ink.lineWidth = 3; ink.lineCap = "round"; ink.lineJoin = "round"; ink.strokeStyle = "#1d2330";
    function at(ev) {
      var r = canvas.getBoundingClientRect();
      var x = Math.round((ev.clientX - r.left) * W / r.width);
      var y = Math.round((ev.clientY - r.top) * H / r.height);
      return [Math.max(0, Math.min(W, x)), Math.max(0, Math.min(H, y))];
    }
    function store() {
      input.value = parts.join(" ");
      input.dispatchEvent(new Event("input", {bubbles: true}));
    }
    function add(cmd, p) {
      var part = cmd + p[0] + "," + p[1];
      if (size + part.length + 1 > MAX_CHARS) return false;
      parts.push(part); size += part.length + 1; last = p;
      return true;
    }
    canvas.addEventListener("pointerdown", function (ev) {
      ev.preventDefault();
      canvas.setPointerCapture(ev.pointerId);
      var p = at(ev);
      if (!add("M", p)) return;
      down = true;
      ink.beginPath(); ink.moveTo(p[0], p[1]);
    });
    canvas.addEventListener("pointermove", function (ev) {
      if (!down) return;
      var p = at(ev);
      if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) < 3) return;  // keep it small
      if (!add("L", p)) { down = false; return; }
      ink.lineTo(p[0], p[1]); ink.stroke();
      store();
    });
    function up() { if (down) { down = false; store(); } }
    canvas.addEventListener("pointerup", up);
    canvas.addEventListener("pointercancel", up);
    clear.addEventListener("click", function () {
      parts = []; size = 0; last = null;
      ink.clearRect(0, 0, W, H);
      store();
    });
    // a form shown again after a refusal keeps what was drawn
    if (input.value) {
      parts = input.value.split(" ");
      size = input.value.length + 1;
      parts.forEach(function (part) {
        var m = /^([ML])(\d+),(\d+)$/.exec(part);
        if (!m) return;
        if (m[1] === "M") { ink.beginPath(); ink.moveTo(+m[2], +m[3]); }
        else { ink.lineTo(+m[2], +m[3]); ink.stroke(); }
      });
    }
  }
  Array.prototype.forEach.call(document.querySelectorAll(".signature-pad"), pad);
})();
