// Sortable, filterable tables and full-size figures; the page reads fine without it.
(function () {
  "use strict";
  function key(td) {
    var v = td.getAttribute("data-v");
    return v === null ? null : Number(v);
  }
  function compare(a, b) {
    var x = key(a), y = key(b);
    if (x !== null && y !== null) return x - y;
    if (x !== null) return -1;
    if (y !== null) return 1;
    return a.textContent.localeCompare(b.textContent, undefined, {numeric: true});
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.querySelector("button").addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var d = compare(r.cells[col], s.cells[col]);
          return up ? d : -d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var text = r.textContent.toLowerCase();
        r.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      });
    });
  });
  // A data: URI cannot be opened as a page; a blob URL of the same bytes can.
  document.querySelectorAll("a.full").forEach(function (a) {
    a.addEventListener("click", function (event) {
      var img = a.closest("figure").querySelector("img");
      var b64 = img.src.split(",")[1];
      var raw = atob(b64), bytes = new Uint8Array(raw.length);
      for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
      var url = URL.createObjectURL(new Blob([bytes], {type: "image/png"}));
      if (window.open(url, "_blank")) event.preventDefault();
    });
  });
})();
