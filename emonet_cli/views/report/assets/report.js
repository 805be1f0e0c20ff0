// emonet report: sorting and filtering the table, and drawing the selected input's pictures
// from the compact data in #report-data (see emonet_cli/views/report/figures.py for the bytes).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var rows = data.rows;
  var tbody = document.getElementById("inputs").tBodies[0];
  var detail = document.getElementById("detail");
  var trs = Array.prototype.slice.call(tbody.rows);
  var byIndex = {};
  var groups = [];
  trs.forEach(function (tr) {
    byIndex[tr.dataset.i] = tr;
    if (tr.dataset.parent === undefined) {
      groups.push({ head: tr, members: [tr] });
    } else if (groups.length) {
      groups[groups.length - 1].members.push(tr);
    }
  });
  var NO = 255;
  var DIM_COLORS = { valence: "#212121", arousal: "#00897B", dominance: "#8E24AA" };
  var NO_FACE = "#B0BEC5";

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function cell(tr, col) {
    var td = tr.querySelector('td[data-col="' + col + '"]');
    return td ? td.dataset.v : "";
  }

  // Sorting: groups (an input and its people) move together, by the input's value.
  var sorted = { col: null, dir: 1 };
  function sortBy(col, dir) {
    var th = document.querySelector('#inputs th[data-col="' + col + '"]');
    if (!th) return;
    sorted.col = col;
    sorted.dir = dir;
    var numeric = th.dataset.kind === "number";
    document.querySelectorAll("#inputs th").forEach(function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", sorted.dir > 0 ? "ascending" : "descending");
    var keyed = groups.map(function (group, order) {
      var v = cell(group.head, col);
      return { group: group, order: order, v: numeric ? (v === "" ? null : parseFloat(v)) : v.toLowerCase() };
    });
    keyed.sort(function (a, b) {
      if (a.v === null || b.v === null || a.v === "" || b.v === "") {
        var ae = a.v === null || a.v === "", be = b.v === null || b.v === "";
        if (ae !== be) return ae ? 1 : -1; // empty last either way
        return a.order - b.order;
      }
      if (a.v < b.v) return -sorted.dir;
      if (a.v > b.v) return sorted.dir;
      return a.order - b.order;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (k) {
      k.group.members.forEach(function (tr) { fragment.appendChild(tr); });
    });
    tbody.appendChild(fragment);
  }
  document.querySelectorAll("#inputs th").forEach(function (th) {
    th.addEventListener("click", function () {
      var col = th.dataset.col;
      sortBy(col, sorted.col === col ? -sorted.dir : 1);
      remember();
    });
  });

  // Filtering: by text anywhere in an input's rows, and by its flags.
  var filter = document.getElementById("filter");
  var show = document.getElementById("show");
  function matches(group, text, kind) {
    var head = group.head;
    var failed = head.classList.contains("failed");
    var few = group.members.some(function (tr) { return tr.classList.contains("few"); });
    var fewUsable = group.members.some(function (tr) { return tr.classList.contains("fewusable"); });
    var warned = head.querySelector(".chip.warn") !== null;
    if (kind === "failed" && !failed) return false;
    if (kind === "few" && !few) return false;
    if (kind === "fewusable" && !fewUsable) return false;
    if (kind === "ok" && failed) return false;
    if (kind === "flagged" && !(failed || few || fewUsable || warned)) return false;
    if (!text) return true;
    return group.members.some(function (tr) {
      return tr.dataset.search.toLowerCase().indexOf(text) >= 0;
    });
  }
  function applyFilter() {
    var text = filter.value.trim().toLowerCase();
    var kind = show.value;
    var visible = 0;
    groups.forEach(function (group) {
      var on = matches(group, text, kind);
      visible += on ? 1 : 0;
      group.members.forEach(function (tr) { tr.classList.toggle("hidden", !on); });
    });
    document.getElementById("shown").textContent = "showing " + visible + " of " + groups.length;
  }
  filter.addEventListener("input", function () { applyFilter(); remember(); });
  show.addEventListener("change", function () { applyFilter(); remember(); });

  // Pictures.
  function bytes(b64) {
    var text = atob(b64 || "");
    var out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }
  function value(b) { return b / 100 - 1; }
  function labelColor(set, k) { return set && k !== NO && set.colors[k] ? set.colors[k] : "#ECEFF1"; }

  function timeline(picture, set, dims) {
    var W = 404, H = 168, x0 = 30, x1 = W - 8, top = 8, h = 104, bandY = top + h + 6, bandH = 14;
    var bins = bytes(picture.bins), n = bins.length / 5;
    var step = (x1 - x0) / Math.max(n, 1);
    var y = function (v) { return top + (1 - v) / 2 * h; };
    var parts = ['<svg class="timeline" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="valence and arousal over time">'];
    parts.push('<rect x="' + x0 + '" y="' + top + '" width="' + (x1 - x0) + '" height="' + h + '" fill="#fff" stroke="#e0e0e0"/>');
    // No-face spans, shaded by the share of the bin's frames without a face.
    for (var k = 0; k < n;) {
      var share = bins[5 * k], j = k;
      while (j < n && bins[5 * j] === share) j++;
      if (share < 255) {
        var o = (0.7 * (1 - share / 255)).toFixed(2);
        parts.push('<rect class="noface" x="' + (x0 + k * step).toFixed(1) + '" y="' + top + '" width="' + ((j - k) * step).toFixed(1) + '" height="' + (bandY + bandH - top) + '" fill="' + NO_FACE + '" fill-opacity="' + o + '"/>');
      }
      k = j;
    }
    [-1, 0, 1].forEach(function (v) {
      parts.push('<line x1="' + x0 + '" x2="' + x1 + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#bdbdbd" stroke-width="' + (v === 0 ? 0.8 : 0.4) + '"/>');
      parts.push('<text x="' + (x0 - 4) + '" y="' + (y(v) + 3) + '" text-anchor="end">' + v + "</text>");
    });
    // Steps: each bin's mean holds over the bin; a gap where it had no face.
    dims.forEach(function (dim, d) {
      var path = "", open = false;
      for (var k = 0; k < n; k++) {
        var b = bins[5 * k + 1 + d];
        if (b === NO) { open = false; continue; }
        var yy = y(value(b)).toFixed(1), xl = (x0 + k * step).toFixed(1), xr = (x0 + (k + 1) * step).toFixed(1);
        path += (open ? "V" + yy : "M" + xl + " " + yy) + "H" + xr;
        open = true;
      }
      if (path) parts.push('<path class="dim-' + dim + '" d="' + path + '" fill="none" stroke="' + DIM_COLORS[dim] + '" stroke-width="1.4"/>');
    });
    // The label band: runs of the bins' most frequent expression (or category).
    for (var k = 0; k < n;) {
      var label = bins[5 * k + 4], j = k;
      while (j < n && bins[5 * j + 4] === label) j++;
      parts.push('<rect class="band" x="' + (x0 + k * step).toFixed(1) + '" y="' + bandY + '" width="' + ((j - k) * step).toFixed(1) + '" height="' + bandH + '" fill="' + labelColor(set, label) + '"><title>' + esc(set && label !== NO ? set.names[label] : "none") + "</title></rect>");
      k = j;
    }
    var t0 = picture.t0 || 0, t1 = picture.t1 || 0;
    [[x0, t0, "start"], [(x0 + x1) / 2, (t0 + t1) / 2, "middle"], [x1, t1, "end"]].forEach(function (tick) {
      parts.push('<text x="' + tick[0] + '" y="' + (H - 18) + '" text-anchor="' + tick[2] + '">' + tick[1].toFixed(1) + " s</text>");
    });
    var lx = x0;
    dims.forEach(function (dim) {
      parts.push('<text x="' + lx + '" y="' + (H - 3) + '" style="fill:' + DIM_COLORS[dim] + ';font-weight:600">' + dim + "</text>");
      lx += 12 + 6 * dim.length;
    });
    parts.push('<rect x="' + lx + '" y="' + (H - 12) + '" width="10" height="10" fill="' + NO_FACE + '"/><text x="' + (lx + 14) + '" y="' + (H - 3) + '">no face</text>');
    parts.push('<text x="' + (lx + 58) + '" y="' + (H - 3) + '">band: ' + esc(set ? set.kind : "") + "</text>");
    parts.push("</svg>");
    return parts.join("");
  }

  function circumplex(picture, set) {
    var S = 176, c = S / 2, r = S / 2 - 14;
    var points = bytes(picture.points), n = points.length / 3;
    var parts = ['<svg class="circumplex" width="' + S + '" height="' + S + '" viewBox="0 0 ' + S + " " + S + '" role="img" aria-label="valence and arousal on the circumplex">'];
    parts.push('<circle cx="' + c + '" cy="' + c + '" r="' + r + '" fill="#fff" stroke="#bdbdbd"/>');
    parts.push('<line x1="' + (c - r) + '" x2="' + (c + r) + '" y1="' + c + '" y2="' + c + '" stroke="#bdbdbd"/>');
    parts.push('<line y1="' + (c - r) + '" y2="' + (c + r) + '" x1="' + c + '" x2="' + c + '" stroke="#bdbdbd"/>');
    for (var k = 0; k < n; k++) {
      var v = value(points[3 * k]), a = value(points[3 * k + 1]), label = points[3 * k + 2];
      parts.push('<circle class="point" cx="' + (c + v * r).toFixed(1) + '" cy="' + (c - a * r).toFixed(1) + '" r="2.4" fill="' + (label === NO ? "#607D8B" : labelColor(set, label)) + '" fill-opacity="0.7"/>');
    }
    parts.push('<text x="' + (S - 2) + '" y="' + (c - 3) + '" text-anchor="end">valence</text>');
    parts.push('<text x="' + (c + 3) + '" y="10">arousal</text>');
    parts.push("</svg>");
    return parts.join("");
  }

  function shares(row, set) {
    if (!set || !row.shares) return "";
    var order = row.shares.map(function (s, k) { return k; }).filter(function (k) { return row.shares[k] > 0; });
    order.sort(function (a, b) { return row.shares[b] - row.shares[a]; });
    order = order.slice(0, 10);
    if (!order.length) return "";
    var what = set.kind === "category" ? "categories: share of the frames with a face" : "expressions: share of the frames with a face";
    var parts = ["<h3>" + what + '</h3><div class="bars">'];
    order.forEach(function (k) {
      var s = row.shares[k];
      parts.push("<span>" + esc(set.names[k]) + '</span><span><span class="bar" style="display:block;width:' + (100 * s).toFixed(1) + "%;background:" + set.colors[k] + '"></span></span><span>' + (100 * s).toFixed(1) + "%</span>");
    });
    parts.push("</div>");
    return parts.join("");
  }

  function figures(tr, row) {
    var text = [];
    var frames = cell(tr, "frames"), faces = cell(tr, "face_share");
    if (frames !== "") text.push(frames + " frames, a face in " + (faces === "" ? "none" : (100 * parseFloat(faces)).toFixed(1) + "%"));
    var usable = cell(tr, "usable_share");
    if (usable !== "") text.push("usable " + (100 * parseFloat(usable)).toFixed(1) + "%");
    (row.dims || []).forEach(function (dim) {
      var mean = cell(tr, "mean_" + dim);
      if (mean === "") return;
      var sd = row.std && row.std[dim];
      text.push(dim + " " + parseFloat(mean).toFixed(3) + (sd === null || sd === undefined ? "" : " \u00B1 " + sd.toFixed(3)));
    });
    return text.length ? '<p class="figures">' + esc(text.join("; ")) + "</p>" : "";
  }

  function files(row) {
    if (!row.links || !row.links.length) return "";
    return '<ul class="files">' + row.links.map(function (link) {
      return '<li><a href="' + link[1] + '">' + esc(link[0]) + "</a></li>";
    }).join("") + "</ul>";
  }

  function pictures(row) {
    if (!row.picture) return "";
    var set = data.labelsets[row.labels];
    return '<div class="pictures">' + timeline(row.picture, set, row.dims || ["valence", "arousal"]) + circumplex(row.picture, set) + "</div>";
  }

  function render(i) {
    var row = rows[i], tr = byIndex[i];
    var parts = ["<h2>" + esc(cell(tr, "input")) + (cell(tr, "person") ? " \u2013 " + esc(cell(tr, "person")) : "") + "</h2>"];
    var status = cell(tr, "status");
    parts.push('<p><span class="chip ' + esc(status) + '">' + esc(status) + "</span> " + esc(cell(tr, "model")) + (tr.classList.contains("few") ? ' <span class="chip few">few faces</span>' : "") + (tr.classList.contains("fewusable") ? ' <span class="chip fewusable">few usable</span>' : "") + "</p>");
    var error = tr.querySelector('td[data-col="status"]').title;
    if (error) parts.push('<p class="error">' + esc(error) + "</p>");
    var warning = tr.querySelector(".chip.warn");
    if (warning) parts.push('<p class="warnings">' + esc(warning.title) + "</p>");
    parts.push(figures(tr, row));
    parts.push(pictures(row));
    parts.push(shares(row, data.labelsets[row.labels]));
    parts.push(files(row));
    rows.forEach(function (person) {
      if (person.parent !== i) return;
      var ptr = byIndex[person.i];
      parts.push("<h3>" + esc(cell(ptr, "person")) + "</h3>" + figures(ptr, person) + pictures(person) + files(person));
    });
    detail.innerHTML = parts.join("");
  }

  function select(i, scroll) {
    if (!rows[i]) return;
    trs.forEach(function (tr) { tr.classList.remove("selected"); });
    byIndex[i].classList.add("selected");
    render(i);
    if (scroll) byIndex[i].scrollIntoView({ block: "nearest" });
    selected = i;
    remember();
  }

  // The view (selected row, sort, filter) lives in the address's #fragment, so that a link
  // or a bookmark opens the same view: #row=3&sort=-mean_valence&show=failed&q=text.
  var selected = null;
  function remember() {
    var parts = [];
    if (selected !== null) parts.push("row=" + selected);
    if (sorted.col) parts.push("sort=" + (sorted.dir < 0 ? "-" : "") + sorted.col);
    if (show.value !== "all") parts.push("show=" + show.value);
    if (filter.value) parts.push("q=" + encodeURIComponent(filter.value));
    if (history.replaceState) history.replaceState(null, "", "#" + parts.join("&"));
  }
  function restore() {
    var view = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var at = part.indexOf("=");
      if (at > 0) view[part.slice(0, at)] = decodeURIComponent(part.slice(at + 1));
    });
    var old = /^#row-(\d+)$/.exec(location.hash);
    if (old) view.row = old[1];
    if (view.q) filter.value = view.q;
    if (view.show && show.querySelector('option[value="' + view.show + '"]')) show.value = view.show;
    if (view.sort) {
      var descending = view.sort.charAt(0) === "-";
      sortBy(descending ? view.sort.slice(1) : view.sort, descending ? -1 : 1);
    }
    applyFilter();
    if (view.row !== undefined && rows[parseInt(view.row, 10)]) select(parseInt(view.row, 10), true);
  }
  tbody.addEventListener("click", function (event) {
    var tr = event.target.closest("tr");
    if (tr && !event.target.closest("a")) select(parseInt(tr.dataset.i, 10), false);
  });
  document.addEventListener("keydown", function (event) {
    if (event.target === filter || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    var visible = Array.prototype.filter.call(tbody.rows, function (tr) { return !tr.classList.contains("hidden"); });
    var at = visible.findIndex(function (tr) { return tr.classList.contains("selected"); });
    var next = visible[Math.min(Math.max(at + (event.key === "ArrowDown" ? 1 : -1), 0), visible.length - 1)];
    if (next) { select(parseInt(next.dataset.i, 10), true); event.preventDefault(); }
  });
  restore();
})();
