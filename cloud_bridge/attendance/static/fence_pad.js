// The drawing pad of a site's geofence on the staff page /t/{tenant}/phones: an SVG plan
// in local metres around an anchor point, with no map tiles (nothing is loaded from any
// other server). A click adds a polygon corner to the "Corners of the polygon" field, or
// for a circle sets the centre fields and then, with a second click, the radius field:
// the pad only writes the typed fields the form sends, which stay the keyboard's way to
// enter the same area. Without this script the pad stays hidden and the form works typed.
(function () {
  "use strict";
  var pad = document.getElementById("fence-pad");
  if (!pad) return;
  var R = 6371008.8, DEG = Math.PI / 180, SIZE = 400, NS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("pad-plan"), status = document.getElementById("pad-status");
  var span = document.getElementById("pad-span");
  var field = function (name) { return document.getElementById("f-" + name); };
  var sites = JSON.parse(pad.getAttribute("data-sites") || "[]");
  var anchor = null, circleStep = 0;

  function num(text) {
    var v = parseFloat(String(text || "").replace(",", ".").trim());
    return isFinite(v) ? v : null;
  }
  function corners() {
    var out = [];
    String(field("polygon").value || "").replace(/\n/g, ";").split(";").forEach(function (part) {
      var bits = part.replace(/\s/g, "").split(",");
      if (bits.length === 2 && num(bits[0]) !== null && num(bits[1]) !== null) {
        out.push([num(bits[0]), num(bits[1])]);
      }
    });
    return out;
  }
  function centre() {
    var lat = num(field("lat").value), lon = num(field("lon").value);
    return lat === null || lon === null ? null : [lat, lon];
  }
  // the plan's origin: your position if asked, the typed centre, the first corner, or the
  // first point of a saved site
  function origin() {
    if (anchor) return anchor;
    var c = centre() || corners()[0];
    if (c) return c;
    var s = sites[0];
    if (!s) return null;
    return s.polygon && s.polygon.length ? s.polygon[0] : [s.lat, s.lon];
  }
  function toXY(o, p) {  // metres east and north of o, as pixels (north up)
    var m = SIZE / Number(span.value);
    var e = (p[1] - o[1]) * DEG * R * Math.cos(o[0] * DEG), n = (p[0] - o[0]) * DEG * R;
    return [SIZE / 2 + e * m, SIZE / 2 - n * m];
  }
  function toLatLon(o, x, y) {
    var m = Number(span.value) / SIZE;
    var e = (x - SIZE / 2) * m, n = (SIZE / 2 - y) * m;
    return [o[0] + n / R / DEG, o[1] + e / (R * Math.cos(o[0] * DEG)) / DEG];
  }
  function el(name, attrs) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    svg.appendChild(node);
    return node;
  }
  function shape(o, s, cls) {
    if (s.polygon && s.polygon.length) {
      var pts = s.polygon.map(function (p) { return toXY(o, p).join(","); }).join(" ");
      el(s.polygon.length > 2 ? "polygon" : "polyline", {points: pts, "class": cls});
      s.polygon.forEach(function (p) {
        var xy = toXY(o, p);
        el("circle", {cx: xy[0], cy: xy[1], r: 4, "class": cls + " corner"});
      });
    } else if (s.lat !== null && s.lon !== null && s.lat !== undefined) {
      var c = toXY(o, [s.lat, s.lon]);
      el("circle", {cx: c[0], cy: c[1], r: 4, "class": cls + " corner"});
      if (s.radius_m) {
        el("circle", {cx: c[0], cy: c[1], r: s.radius_m * SIZE / Number(span.value), "class": cls});
      }
    }
  }
  function grid() {
    var step = Number(span.value) / 5;
    for (var i = 0; i <= 5; i++) {
      var v = i * SIZE / 5;
      el("line", {x1: v, y1: 0, x2: v, y2: SIZE, "class": "grid"});
      el("line", {x1: 0, y1: v, x2: SIZE, y2: v, "class": "grid"});
    }
    el("line", {x1: 10, y1: SIZE - 12, x2: 10 + SIZE / 5, y2: SIZE - 12, "class": "scale"});
    el("text", {x: 12, y: SIZE - 18, "class": "scale-text"}).textContent = step + " m";
  }
  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    grid();
    var o = origin();
    if (!o) { status.textContent = pad.getAttribute("data-need-origin"); return; }
    sites.forEach(function (s) { shape(o, s, "saved"); });
    var c = centre();
    if (field("shape").value === "polygon") {
      shape(o, {polygon: corners()}, "drawn");
    } else if (c) {
      shape(o, {lat: c[0], lon: c[1], radius_m: num(field("radius_m").value)}, "drawn");
    }
  }
  function say(text) { status.textContent = text; }
  svg.addEventListener("click", function (ev) {
    var o = origin();
    if (!o) { say(pad.getAttribute("data-need-origin")); return; }
    var box = svg.getBoundingClientRect();
    var x = (ev.clientX - box.left) * SIZE / box.width, y = (ev.clientY - box.top) * SIZE / box.height;
    var p = toLatLon(o, x, y), typed = p[0].toFixed(6) + ", " + p[1].toFixed(6);
    if (field("shape").value === "polygon") {
      if (!anchor && !centre() && !corners().length) anchor = o;  // keep the view still
      var text = field("polygon").value.trim();
      field("polygon").value = text ? text.replace(/;\s*$/, "") + "; " + typed : typed;
      say(pad.getAttribute("data-corners").replace("%(n)s", corners().length));
    } else if (circleStep === 0 || !centre()) {
      if (!anchor) anchor = o;
      field("lat").value = p[0].toFixed(6);
      field("lon").value = p[1].toFixed(6);
      circleStep = 1;
      say(pad.getAttribute("data-centre-set"));
    } else {
      var c = toXY(o, centre());
      var metres = Math.hypot(x - c[0], y - c[1]) * Number(span.value) / SIZE;
      field("radius_m").value = String(Math.max(1, Math.round(metres)));
      circleStep = 0;
      say(pad.getAttribute("data-radius-set").replace("%(r)s", field("radius_m").value));
    }
    draw();
  });
  document.getElementById("pad-clear").addEventListener("click", function () {
    if (field("shape").value === "polygon") field("polygon").value = "";
    else { field("lat").value = ""; field("lon").value = ""; field("radius_m").value = ""; }
    anchor = null; circleStep = 0;
    say(""); draw();
  });
  var here = document.getElementById("pad-here");
  if (navigator.geolocation) {
    here.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        anchor = [pos.coords.latitude, pos.coords.longitude];
        draw();
      }, function () { say(pad.getAttribute("data-no-position")); });
    });
  } else {
    here.hidden = true;
  }
  ["lat", "lon", "radius_m", "polygon", "shape"].forEach(function (name) {
    field(name).addEventListener("input", draw);
    field(name).addEventListener("change", draw);
  });
  span.addEventListener("change", draw);
  pad.hidden = false;
  draw();
})();
