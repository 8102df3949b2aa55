/* Live figures of the vaecourse book: they run in the reader's browser, with no kernel.
 *
 * A chapter's output holds <div class="vc-live" data-vc-live="latent|results|kl|samples" ...> (written by
 * coursekit/live.py); this script, loaded on every page, turns each such div into a figure:
 *   latent   sliders over z and a 2-D pad (drag the point, or focus it and use the arrow keys);
 *            the decoder (float32 weights from the JSON) runs here and the digit is drawn on a canvas.
 *   results  a slider over precomputed settings (betas, sigma_x^2 values): images, KL per latent
 *            dimension as bars, active units and other numbers.
 *   kl       sliders over the mean and variance of each dimension of q = N(mu, diag sigma^2): the
 *            densities of q_j against the prior N(0, 1) on a canvas, KL_j as bars and the total, from
 *            KL_j = (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2) / 2 (no model, the spec is embedded).
 *   samples  a slider over settings (the K of an IWAE bound), each with repeated estimates: their
 *            histogram (SVG bars, one axis for every setting), reference lines, mean, spread and the
 *            share of estimates above each line.
 * The JSON comes from data-src (resolved against this script's folder, _static/live/) or from an
 * embedded <script type="application/json" class="vc-live-data">. Formats: see coursekit/live.py.
 * Grey levels: floor(255 * clip(p, 0, 1) + 0.5), drawn as ink on white (canvas value 255 - level),
 * the same numbers as coursekit.live.pixels. No library, nothing loaded from another host.
 */
(function () {
  "use strict";

  var SCRIPT_URL = (document.currentScript && document.currentScript.src) || document.baseURI;
  var DECODER_FORMAT = "vaecourse.live.decoder/1";
  var RESULTS_FORMAT = "vaecourse.live.results/1";
  var KL_FORMAT = "vaecourse.live.kl/1";
  var SAMPLES_FORMAT = "vaecourse.live.samples/1";
  var SVG = "http://www.w3.org/2000/svg";
  var uid = 0;

  // ------------------------------------------------------------------------------------ data
  function bytes(b64) {
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function float32s(b64, count, what) {
    var raw = bytes(b64);
    if (raw.length !== 4 * count) throw new Error(what + ": expected " + count + " float32 values, got " + raw.length / 4);
    var view = new DataView(raw.buffer), out = new Float64Array(count);
    for (var i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true); // little-endian
    return out;
  }

  function erf(x) { // Abramowitz & Stegun 7.1.26, as coursekit.live._erf
    var s = x < 0 ? -1 : x > 0 ? 1 : 0, a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
    var poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1 - poly * Math.exp(-a * a));
  }

  var ACTIVATIONS = {
    relu: function () { return function (v) { return v > 0 ? v : 0; }; },
    leaky_relu: function (l) { return function (v) { return v >= 0 ? v : v * l.slope; }; },
    elu: function (l) { return function (v) { return v > 0 ? v : l.alpha * Math.expm1(v); }; },
    tanh: function () { return Math.tanh; },
    sigmoid: function () { return function (v) { return 1 / (1 + Math.exp(-v)); }; },
    softplus: function (l) {
      return function (v) { return v * l.beta > l.threshold ? v : Math.log1p(Math.exp(v * l.beta)) / l.beta; };
    },
    gelu: function (l) {
      if (l.approximate === "tanh") {
        var c = Math.sqrt(2 / Math.PI);
        return function (v) { return 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v))); };
      }
      return function (v) { return 0.5 * v * (1 + erf(v / Math.SQRT2)); };
    },
    identity: function () { return function (v) { return v; }; },
  };

  function Decoder(spec) {
    if (!spec || spec.format !== DECODER_FORMAT) throw new Error("not a decoder file (format " + DECODER_FORMAT + ")");
    this.zDim = spec.z_dim;
    this.xDim = spec.x_dim;
    this.shape = spec.image_shape;
    this.layers = spec.layers.map(function (l, i) {
      if (l.type === "linear") {
        return {linear: true, inSize: l["in"], outSize: l.out,
                w: float32s(l.weight, l["in"] * l.out, "layer " + i + " weight"),
                b: float32s(l.bias, l.out, "layer " + i + " bias")};
      }
      if (!ACTIVATIONS[l.type]) throw new Error("unknown layer type " + l.type);
      return {linear: false, f: ACTIVATIONS[l.type](l)};
    });
  }

  // z (array of zDim numbers) -> decoder means (Float64Array of xDim), float64 sums of float32 weights.
  Decoder.prototype.decode = function (z) {
    var h = Float64Array.from(z);
    for (var k = 0; k < this.layers.length; k++) {
      var l = this.layers[k];
      if (l.linear) {
        var out = new Float64Array(l.outSize);
        for (var o = 0; o < l.outSize; o++) {
          var s = l.b[o], row = o * l.inSize;
          for (var i = 0; i < l.inSize; i++) s += l.w[row + i] * h[i];
          out[o] = s;
        }
        h = out;
      } else {
        for (var j = 0; j < h.length; j++) h[j] = l.f(h[j]);
      }
    }
    return h;
  };

  function level(p) { // 0..255, as coursekit.live._levels
    return Math.floor(Math.min(1, Math.max(0, p)) * 255 + 0.5);
  }

  // Levels (0..255, 255 = ink) onto a canvas of the image's own size, as ink on white.
  function paint(canvas, levels, shape) {
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(shape[1], shape[0]);
    for (var i = 0; i < levels.length; i++) {
      var v = 255 - levels[i];
      img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // ------------------------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, parent) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  function svgEl(tag, attrs, parent) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function fmt(v) { return (Math.abs(v) < 0.005 ? 0 : v).toFixed(2); }

  function decimals(step) {
    var s = String(step);
    return s.indexOf(".") < 0 ? 0 : s.length - s.indexOf(".") - 1;
  }

  function settingSlider(view, root, id, spec) { // a slider over spec.settings: view.show(index) on every move
    var row = el("div", {"class": "vc-live-slider vc-live-setting"}, root);
    el("label", {"for": id + "-s", text: spec.label}, row);
    view.input = el("input", {type: "range", id: id + "-s", min: "0", max: String(spec.settings.length - 1),
                              step: "1", value: "0"}, row);
    view.output = el("output", {"for": id + "-s"}, row);
    view.input.addEventListener("input", function () { view.show(parseInt(view.input.value, 10)); });
  }

  function imageCanvas(shape, parent, cls) {
    return el("canvas", {"class": cls, width: shape[1], height: shape[0]}, parent);
  }

  function inkSummary(levels, shape) { // a few words on the image: how much ink, and where its centre is
    var total = 0, rows = 0, cols = 0;
    for (var i = 0; i < levels.length; i++) {
      total += levels[i];
      rows += levels[i] * Math.floor(i / shape[1]);
      cols += levels[i] * (i % shape[1]);
    }
    if (total === 0) return "a blank image";
    var third = function (c, n, lo, mid, hi) { return c < n / 3 ? lo : c > 2 * n / 3 ? hi : mid; };
    var v = third(rows / total, shape[0], "top", "", "bottom"), h = third(cols / total, shape[1], "left", "", "right");
    var where = v || h ? "towards the " + [v, h].filter(Boolean).join(" ") : "in the middle";
    return "ink covers " + Math.round((100 * total) / (255 * levels.length)) + "% of the image, its centre " + where;
  }

  // ------------------------------------------------------------------------------------ latent explorer
  function LatentExplorer(root, spec, options) {
    var self = this;
    this.root = root;
    this.net = new Decoder(spec);
    this.extent = options.extent || 3;
    this.step = options.step || 0.1;
    this.digits = decimals(this.step);
    this.dims = options.dims || Array.from({length: Math.min(this.net.zDim, 8)}, function (_, i) { return i; });
    this.pad = options.pad === undefined ? (this.dims.length >= 2 ? [this.dims[0], this.dims[1]] : null) : options.pad;
    this.z = new Array(this.net.zDim).fill(0);
    var id = "vc-live-" + ++uid;

    var body = el("div", {"class": "vc-live-body"}, root);
    var controls = el("div", {"class": "vc-live-controls"}, body);
    if (this.pad) {
      var px = this.pad[0] + 1, py = this.pad[1] + 1;
      var padBox = el("div", {"class": "vc-live-padbox"}, controls);
      this.padEl = el("div", {
        "class": "vc-live-pad", tabindex: "0", role: "slider",
        "aria-roledescription": "2-D latent pad",
        "aria-label": "z" + px + " (left to right) and z" + py + " (bottom to top); arrow keys move the point, " +
          "Shift for larger steps, Home returns to 0",
        "aria-valuemin": String(-this.extent), "aria-valuemax": String(this.extent),
      }, padBox);
      this.padCanvas = el("canvas", {"class": "vc-live-manifold", width: 196, height: 196, "aria-hidden": "true"}, this.padEl);
      this.dot = el("div", {"class": "vc-live-dot", "aria-hidden": "true"}, this.padEl);
      el("div", {"class": "vc-live-padlabel", text: "drag: z" + px + " \u2194, z" + py + " \u2195"}, padBox);
      this.padEl.addEventListener("pointerdown", function (e) {
        self.padEl.setPointerCapture(e.pointerId);
        self.padEl.focus();
        self.fromPointer(e);
      });
      this.padEl.addEventListener("pointermove", function (e) {
        if (self.padEl.hasPointerCapture(e.pointerId)) self.fromPointer(e);
      });
      this.padEl.addEventListener("keydown", function (e) { self.padKey(e); });
    }
    var sliders = el("div", {"class": "vc-live-sliders"}, controls);
    this.inputs = {};
    this.outputs = {};
    this.dims.forEach(function (d) {
      var row = el("div", {"class": "vc-live-slider"}, sliders);
      el("label", {"for": id + "-z" + d, text: "z" + (d + 1)}, row);
      var input = el("input", {type: "range", id: id + "-z" + d, min: String(-self.extent), max: String(self.extent),
                               step: String(self.step), value: "0", "data-dim": String(d)}, row);
      self.outputs[d] = el("output", {"for": id + "-z" + d, text: fmt(0)}, row);
      input.addEventListener("input", function () { self.set(d, parseFloat(input.value)); });
      self.inputs[d] = input;
    });
    var figure = el("div", {"class": "vc-live-image"}, body);
    this.canvas = imageCanvas(this.net.shape, figure, "vc-live-digit");
    this.canvas.setAttribute("role", "img");
    this.desc = el("p", {"class": "vc-live-desc", "aria-live": "polite", id: id + "-desc"}, root);
    this.draw();
    if (this.pad) setTimeout(function () { self.drawManifold(); }, 0);
  }

  LatentExplorer.prototype.set = function (d, value, fromPad) {
    var v = Math.max(-this.extent, Math.min(this.extent, value));
    this.z[d] = v;
    if (this.inputs[d] && fromPad) this.inputs[d].value = String(v);
    this.draw();
  };

  LatentExplorer.prototype.fromPointer = function (e) {
    var r = this.padEl.getBoundingClientRect(), ext = this.extent, st = this.step;
    var snap = function (v) { return Math.round(v / st) * st; };
    var x = snap(((e.clientX - r.left) / r.width) * 2 * ext - ext);
    var y = snap(ext - ((e.clientY - r.top) / r.height) * 2 * ext);
    this.z[this.pad[0]] = Math.max(-ext, Math.min(ext, x));
    this.set(this.pad[1], y, true);
    this.inputs[this.pad[0]].value = String(this.z[this.pad[0]]);
    e.preventDefault();
  };

  LatentExplorer.prototype.padKey = function (e) {
    var big = e.shiftKey ? 10 : 1, st = this.step * big, a = this.pad[0], b = this.pad[1];
    var moves = {ArrowLeft: [a, -st], ArrowRight: [a, st], ArrowDown: [b, -st], ArrowUp: [b, st]};
    if (e.key === "Home") {
      this.z[a] = 0;
      this.inputs[a].value = "0";
      this.set(b, 0, true);
    } else if (moves[e.key]) {
      var m = moves[e.key], v = Math.round((this.z[m[0]] + m[1]) / this.step) * this.step;
      this.set(m[0], v, true);
    } else {
      return;
    }
    e.preventDefault();
  };

  LatentExplorer.prototype.draw = function () {
    var self = this, p = this.net.decode(this.z), levels = new Uint8Array(p.length);
    for (var i = 0; i < p.length; i++) levels[i] = level(p[i]);
    paint(this.canvas, levels, this.net.shape);
    this.levels = levels;
    var shown = this.dims.map(function (d) { return "z" + (d + 1) + " = " + fmt(self.z[d]); }).join(", ");
    this.dims.forEach(function (d) {
      self.outputs[d].textContent = fmt(self.z[d]);
      self.inputs[d].setAttribute("aria-valuetext", "z" + (d + 1) + " = " + fmt(self.z[d]));
    });
    var rest = this.net.zDim > this.dims.length ? " (the other " + (this.net.zDim - this.dims.length) + " at 0)" : "";
    var text = "Decoded image for " + shown + rest + ": " + inkSummary(levels, this.net.shape) + ".";
    this.canvas.setAttribute("aria-label", text);
    this.desc.textContent = text;
    if (this.pad) {
      var e = this.extent, a = this.z[this.pad[0]], b = this.z[this.pad[1]];
      this.dot.style.left = (100 * (a + e)) / (2 * e) + "%";
      this.dot.style.top = (100 * (e - b)) / (2 * e) + "%";
      this.padEl.setAttribute("aria-valuetext", "z" + (this.pad[0] + 1) + " = " + fmt(a) + ", z" +
        (this.pad[1] + 1) + " = " + fmt(b));
    }
  };

  // The pad's background: a 7 x 7 grid of decoded images over its square (other dimensions at 0).
  LatentExplorer.prototype.drawManifold = function () {
    var n = 7, shape = this.net.shape, ctx = this.padCanvas.getContext("2d");
    var cw = this.padCanvas.width / n, ch = this.padCanvas.height / n;
    var tile = document.createElement("canvas");
    tile.width = shape[1];
    tile.height = shape[0];
    ctx.imageSmoothingEnabled = true;
    for (var r = 0; r < n; r++) {
      for (var c = 0; c < n; c++) {
        var z = new Array(this.net.zDim).fill(0);
        z[this.pad[0]] = -this.extent + ((c + 0.5) * 2 * this.extent) / n;
        z[this.pad[1]] = this.extent - ((r + 0.5) * 2 * this.extent) / n;
        var p = this.net.decode(z), levels = new Uint8Array(p.length);
        for (var i = 0; i < p.length; i++) levels[i] = level(p[i]);
        paint(tile, levels, shape);
        ctx.drawImage(tile, c * cw, r * ch, cw, ch);
      }
    }
  };

  // ------------------------------------------------------------------------------------ results slider
  function ResultsExplorer(root, spec) {
    if (!spec || spec.format !== RESULTS_FORMAT) throw new Error("not a results file (format " + RESULTS_FORMAT + ")");
    var self = this, id = "vc-live-" + ++uid;
    this.root = root;
    this.spec = spec;
    var shape = spec.image_shape, per = shape[0] * shape[1];
    this.levels = spec.settings.map(function (s) { return bytes(s.images); });
    this.levels.forEach(function (l, i) {
      if (l.length !== spec.n_images * per) throw new Error("setting " + i + ": wrong number of pixels");
    });
    this.klMax = Math.max.apply(null, spec.settings.map(function (s) { return Math.max.apply(null, s.kl_per_dim); }));
    if (spec.threshold !== null && spec.threshold !== undefined) this.klMax = Math.max(this.klMax, spec.threshold);
    this.klMax = this.klMax > 0 ? this.klMax : 1;

    settingSlider(this, root, id, spec);

    var body = el("div", {"class": "vc-live-body"}, root);
    var grid = el("div", {"class": "vc-live-grid", role: "img"}, body);
    grid.style.gridTemplateColumns = "repeat(" + spec.ncols + ", auto)";
    this.grid = grid;
    this.canvases = [];
    for (var i = 0; i < spec.n_images; i++) this.canvases.push(imageCanvas(shape, grid, "vc-live-thumb"));
    var chart = el("figure", {"class": "vc-live-chart"}, body);
    var z = spec.settings[0].kl_per_dim.length, w = 320, h = 120, bw = w / z;
    this.svg = svgEl("svg", {viewBox: "0 0 " + w + " " + (h + 2), width: w, height: h + 2, role: "img"}, chart);
    this.bars = [];
    for (var j = 0; j < z; j++) {
      var bar = svgEl("rect", {x: (j * bw + 0.1 * bw).toFixed(2), width: (0.8 * bw).toFixed(2), "class": "vc-live-bar"}, this.svg);
      bar.appendChild(svgEl("title", {}));
      this.bars.push(bar);
    }
    svgEl("line", {x1: 0, x2: w, y1: h, y2: h, "class": "vc-live-axis"}, this.svg);
    if (spec.threshold !== null && spec.threshold !== undefined) {
      var ty = h - (h * spec.threshold) / this.klMax;
      svgEl("line", {x1: 0, x2: w, y1: ty, y2: ty, "class": "vc-live-threshold"}, this.svg);
    }
    this.h = h;
    el("figcaption", {text: spec.bar_label + ", one bar per latent dimension; same scale for every setting (max " +
                      this.klMax.toFixed(2) + ")"}, chart);
    this.desc = el("p", {"class": "vc-live-desc", "aria-live": "polite"}, root);
    this.show(0);
  }

  ResultsExplorer.prototype.show = function (index) {
    var spec = this.spec, s = spec.settings[index], shape = spec.image_shape, per = shape[0] * shape[1];
    this.index = index;
    for (var i = 0; i < spec.n_images; i++) paint(this.canvases[i], this.levels[index].subarray(i * per, (i + 1) * per), shape);
    var h = this.h, max = this.klMax, self = this;
    s.kl_per_dim.forEach(function (v, j) {
      var bh = Math.max(0, (h * v) / max);
      self.bars[j].setAttribute("y", (h - bh).toFixed(2));
      self.bars[j].setAttribute("height", bh.toFixed(2));
      self.bars[j].firstChild.textContent = "dimension " + (j + 1) + ": " + v.toFixed(3);
    });
    this.output.textContent = s.label;
    this.input.setAttribute("aria-valuetext", s.label);
    var stats = Object.keys(s.stats).map(function (k) {
      var v = s.stats[k];
      return k + " " + (Number.isInteger(v) ? String(v) : v.toFixed(2));
    });
    var z = s.kl_per_dim.length, total = s.kl_per_dim.reduce(function (a, b) { return a + b; }, 0);
    var text = s.label + ": " + s.active_units + " of " + z + " latent dimensions active; " +
      (stats.length ? stats.join(", ") : "KL " + total.toFixed(2)) + (s.caption ? ". " + s.caption : "") + ".";
    this.grid.setAttribute("aria-label", spec.n_images + " images for " + s.label);
    this.svg.setAttribute("aria-label", spec.bar_label + " for " + s.label + ": " +
      s.kl_per_dim.map(function (v) { return v.toFixed(2); }).join(", "));
    this.desc.textContent = text;
  };

  // ------------------------------------------------------------------------------------ KL explorer
  function klTerm(m, v) { return 0.5 * (m * m + v - 1 - Math.log(v)); } // KL(N(m, v) || N(0, 1)), nats

  function KLExplorer(root, spec) {
    if (!spec || spec.format !== KL_FORMAT) throw new Error("not a KL spec (format " + KL_FORMAT + ")");
    var self = this, id = "vc-live-" + ++uid, Z = spec.mu.length;
    this.root = root;
    this.spec = spec;
    this.mu = spec.mu.slice();
    this.var = spec.var.slice();
    this.digits = decimals(spec.step);
    // one bar scale for every setting: the largest KL_j the sliders can reach
    this.klMax = Math.max(klTerm(spec.extent, spec.var_min), klTerm(spec.extent, spec.var_max));

    var body = el("div", {"class": "vc-live-body"}, root);
    var sliders = el("div", {"class": "vc-live-sliders"}, body);
    this.inputs = {mu: [], "var": []};
    this.outputs = {mu: [], "var": []};
    var ranges = {mu: [-spec.extent, spec.extent], "var": [spec.var_min, spec.var_max]};
    var names = {mu: "\u03bc", "var": "\u03c3\u00b2"};
    for (var j = 0; j < Z; j++) {
      ["mu", "var"].forEach(function (kind) {
        var row = el("div", {"class": "vc-live-slider"}, sliders);
        var input = el("input", {type: "range", id: id + "-" + kind + j, min: String(ranges[kind][0]),
                                 max: String(ranges[kind][1]), step: String(spec.step),
                                 value: String(self[kind][j])}, row);
        row.insertBefore(el("label", {"for": input.id, text: names[kind] + (j + 1)}), input);
        var out = el("output", {"for": input.id}, row);
        var dim = j;
        input.addEventListener("input", function () { self.set(kind, dim, parseFloat(input.value)); });
        self.inputs[kind].push(input);
        self.outputs[kind].push(out);
      });
    }
    var w = 320, h = 120, plots = el("div", {"class": "vc-live-stack"}, body);  // the two plots, one above the other
    var plot = el("figure", {"class": "vc-live-chart"}, plots);
    this.canvas = el("canvas", {"class": "vc-live-density", width: w, height: h, role: "img"}, plot);
    el("figcaption", {text: "densities of q_j (solid, one colour per dimension) and of the prior N(0, 1) (dashed), " +
                      "z from -5 to 5"}, plot);
    var chart = el("figure", {"class": "vc-live-chart"}, plots);
    var bw = Math.min(60, w / Z);
    h = 70;
    this.svg = svgEl("svg", {viewBox: "0 0 " + w + " " + (h + 2), width: w, height: h + 2, role: "img"}, chart);
    this.bars = [];
    for (j = 0; j < Z; j++) {
      var bar = svgEl("rect", {x: (j * bw + 0.1 * bw).toFixed(2), width: (0.8 * bw).toFixed(2),
                               "class": "vc-live-bar vc-live-dim" + (j % 4)}, this.svg);
      bar.appendChild(svgEl("title", {}));
      this.bars.push(bar);
    }
    svgEl("line", {x1: 0, x2: w, y1: h, y2: h, "class": "vc-live-axis"}, this.svg);
    this.h = h;
    el("figcaption", {text: "KL_j in nats, one bar per dimension (scale up to " + this.klMax.toFixed(1) + ")"}, chart);
    this.desc = el("p", {"class": "vc-live-desc", "aria-live": "polite"}, root);
    this.draw();
  }

  KLExplorer.prototype.set = function (kind, j, value) {
    if (!isFinite(value)) return;
    this[kind][j] = value;
    this.draw();
  };

  KLExplorer.prototype.draw = function () {
    var self = this, Z = this.mu.length, h = this.h;
    this.kl = this.mu.map(function (m, j) { return klTerm(m, self["var"][j]); });
    this.total = this.kl.reduce(function (a, b) { return a + b; }, 0);
    var d = this.digits;
    for (var j = 0; j < Z; j++) {
      this.outputs.mu[j].textContent = this.mu[j].toFixed(d);
      this.outputs["var"][j].textContent = this["var"][j].toFixed(d);
      this.inputs.mu[j].setAttribute("aria-valuetext", "mean of dimension " + (j + 1) + ": " + this.mu[j].toFixed(d));
      this.inputs["var"][j].setAttribute("aria-valuetext", "variance of dimension " + (j + 1) + ": " +
                                         this["var"][j].toFixed(d));
      var bh = Math.max(0, Math.min(h, (h * this.kl[j]) / this.klMax));
      this.bars[j].setAttribute("y", (h - bh).toFixed(2));
      this.bars[j].setAttribute("height", bh.toFixed(2));
      this.bars[j].firstChild.textContent = "dimension " + (j + 1) + ": " + this.kl[j].toFixed(3) + " nats";
    }
    // densities on [-5, 5], a common vertical scale: the tallest curve (or the prior) reaches the top
    var ctx = this.canvas.getContext("2d"), W = this.canvas.width, H = this.canvas.height, n = 161;
    var pdf = function (x, m, v) { return Math.exp(-0.5 * (x - m) * (x - m) / v) / Math.sqrt(2 * Math.PI * v); };
    var top = Math.max.apply(null, this["var"].map(function (v) { return pdf(0, 0, v); }).concat([pdf(0, 0, 1)]));
    var curve = function (m, v, colour, dashed) {
      ctx.beginPath();
      ctx.setLineDash(dashed ? [5, 4] : []);
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      for (var i = 0; i < n; i++) {
        var x = -5 + (10 * i) / (n - 1), y = H - 2 - ((H - 6) * pdf(x, m, v)) / top;
        if (i === 0) ctx.moveTo((W * i) / (n - 1), y);
        else ctx.lineTo((W * i) / (n - 1), y);
      }
      ctx.stroke();
    };
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    curve(0, 1, "#777", true);
    var colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
    for (j = 0; j < Z; j++) curve(this.mu[j], this["var"][j], colours[j % 4], false);
    ctx.setLineDash([]);
    var terms = this.kl.map(function (v, j) { return "dimension " + (j + 1) + " " + v.toFixed(3); });
    var text = "KL(q || p) = " + this.total.toFixed(3) + " nats: " + terms.join(", ") + ". q = N(mu, diag sigma^2) " +
      "with mu = (" + this.mu.map(function (m) { return m.toFixed(d); }).join(", ") + ") and sigma^2 = (" +
      this["var"].map(function (v) { return v.toFixed(d); }).join(", ") + ").";
    this.canvas.setAttribute("aria-label", "Densities of q_j and of the prior. " + text);
    this.svg.setAttribute("aria-label", "KL per dimension: " + terms.join(", "));
    this.desc.textContent = text;
  };

  // ------------------------------------------------------------------------------------ samples explorer
  function SamplesExplorer(root, spec) {
    if (!spec || spec.format !== SAMPLES_FORMAT) throw new Error("not a samples spec (format " + SAMPLES_FORMAT + ")");
    var self = this, id = "vc-live-" + ++uid, edges = spec.edges, nb = edges.length - 1;
    this.root = root;
    this.spec = spec;
    // counts per setting, as numpy.histogram: right-open bins, the last one closed
    this.counts = spec.settings.map(function (s) {
      var c = new Array(nb).fill(0);
      s.values.forEach(function (v) {
        var lo = 0, hi = nb; // edges[lo] <= v < edges[hi]
        if (v < edges[0] || v > edges[nb]) return;
        while (hi - lo > 1) {
          var mid = (lo + hi) >> 1;
          if (v >= edges[mid]) lo = mid; else hi = mid;
        }
        c[lo] += 1;
      });
      return c;
    });
    this.countMax = Math.max.apply(null, this.counts.map(function (c) { return Math.max.apply(null, c); }));

    settingSlider(this, root, id, spec);

    var w = 480, h = 150, chart = el("figure", {"class": "vc-live-chart vc-live-wide"}, root);
    this.svg = svgEl("svg", {viewBox: "0 0 " + w + " " + (h + 18), width: w, height: h + 18, role: "img"}, chart);
    var x = function (v) { return (w * (v - edges[0])) / (edges[nb] - edges[0]); };
    this.bars = [];
    for (var i = 0; i < nb; i++) {
      var bar = svgEl("rect", {x: x(edges[i]).toFixed(2), width: Math.max(0.5, x(edges[i + 1]) - x(edges[i]) - 1).toFixed(2),
                               "class": "vc-live-bar"}, this.svg);
      bar.appendChild(svgEl("title", {}));
      this.bars.push(bar);
    }
    svgEl("line", {x1: 0, x2: w, y1: h, y2: h, "class": "vc-live-axis"}, this.svg);
    [edges[0], (edges[0] + edges[nb]) / 2, edges[nb]].forEach(function (v, k) {
      var t = svgEl("text", {x: x(v).toFixed(1), y: h + 14, "class": "vc-live-tick",
                             "text-anchor": ["start", "middle", "end"][k]}, self.svg);
      t.textContent = v.toFixed(2);
    });
    spec.lines.forEach(function (line, k) {
      svgEl("line", {x1: x(line.value), x2: x(line.value), y1: 0, y2: h,
                     "class": "vc-live-ref vc-live-ref" + (k % 3)}, self.svg).appendChild(svgEl("title", {}))
        .textContent = line.label + ": " + line.value.toFixed(3);
    });
    this.meanLine = svgEl("line", {y1: 0, y2: h, "class": "vc-live-mean"}, this.svg);
    this.h = h;
    this.x = x;
    var legend = spec.lines.map(function (l, k) { return ["dashed", "dotted", "dash-dotted"][k % 3] + ": " + l.label; });
    el("figcaption", {text: "Histogram of the estimates (" + spec.x_label + "), one axis for every setting; " +
                      (legend.length ? legend.join(", ") + "; " : "") + "solid: their mean"}, chart);
    this.desc = el("p", {"class": "vc-live-desc", "aria-live": "polite"}, root);
    this.show(0);
  }

  SamplesExplorer.prototype.show = function (index) {
    var s = this.spec.settings[index], c = this.counts[index], h = this.h, self = this, edges = this.spec.edges;
    this.index = index;
    c.forEach(function (n, i) {
      var bh = (h * n) / self.countMax;
      self.bars[i].setAttribute("y", (h - bh).toFixed(2));
      self.bars[i].setAttribute("height", bh.toFixed(2));
      self.bars[i].firstChild.textContent = n + " estimates in [" + edges[i].toFixed(2) + ", " + edges[i + 1].toFixed(2) + ")";
    });
    var n = s.values.length, mean = s.values.reduce(function (a, b) { return a + b; }, 0) / n;
    var sd = Math.sqrt(s.values.reduce(function (a, v) { return a + (v - mean) * (v - mean); }, 0) / (n - 1));
    this.mean = mean;
    this.sd = sd;
    this.meanLine.setAttribute("x1", this.x(mean).toFixed(2));
    this.meanLine.setAttribute("x2", this.x(mean).toFixed(2));
    this.above = this.spec.lines.map(function (line) {
      return s.values.filter(function (v) { return v > line.value; }).length / n;
    });
    this.output.textContent = s.label;
    this.input.setAttribute("aria-valuetext", s.label);
    var refs = this.spec.lines.map(function (line, k) {
      return Math.round(100 * self.above[k]) + "% above " + line.label + " (" + line.value.toFixed(2) + ")";
    });
    var text = s.label + ": " + n + " estimates, mean " + mean.toFixed(2) + ", standard deviation " + sd.toFixed(2) +
      (refs.length ? "; " + refs.join(", ") : "") + ".";
    this.svg.setAttribute("aria-label", "Histogram for " + text);
    this.desc.textContent = text;
  };

  // ------------------------------------------------------------------------------------ start-up
  function readSpec(root) {
    var inline = root.querySelector("script.vc-live-data");
    if (inline) return Promise.resolve(JSON.parse(inline.textContent));
    var src = root.getAttribute("data-src");
    if (!src) return Promise.reject(new Error("no data-src and no embedded data"));
    var url = new URL(src, SCRIPT_URL);
    return fetch(url).then(function (r) {
      if (!r.ok) throw new Error("could not load " + url + " (HTTP " + r.status + ")");
      return r.json();
    }, function () {
      var local = location.protocol === "file:";
      throw new Error("could not load " + url + (local ? ": browsers do not let a page opened from a file read " +
        "other files; serve the book (python -m http.server -d _build/html) and open it over http" : ""));
    });
  }

  function start(root) {
    if (root.vcLive) return Promise.resolve(root.vcLive);
    root.vcLive = "loading";
    var kind = root.getAttribute("data-vc-live");
    var options = JSON.parse(root.getAttribute("data-options") || "{}");
    return readSpec(root).then(function (spec) {
      var fallback = root.querySelector(".vc-live-fallback");
      var view = kind === "latent" ? new LatentExplorer(root, spec, options)
        : kind === "kl" ? new KLExplorer(root, spec)
        : kind === "samples" ? new SamplesExplorer(root, spec) : new ResultsExplorer(root, spec);
      if (fallback) fallback.remove();
      root.vcLive = view;
      root.setAttribute("data-ready", "true");
      return view;
    }).catch(function (err) {
      root.vcLive = null;
      root.setAttribute("data-ready", "error");
      var fallback = root.querySelector(".vc-live-fallback") || el("p", {"class": "vc-live-fallback"}, root);
      fallback.textContent = "This live figure could not start: " + err.message;
      fallback.setAttribute("role", "alert");
      console.warn("vaecourse live figure:", err);
    });
  }

  function startAll() {
    return Promise.all(Array.from(document.querySelectorAll("div.vc-live[data-vc-live]")).map(start));
  }

  window.vcLive = {start: start, startAll: startAll, Decoder: Decoder, level: level, klTerm: klTerm};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
