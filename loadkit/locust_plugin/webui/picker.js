// The class picker ticks every persona when its form appears; untick the opt-in ones
// (window.LOADKIT_UNTICKED, e.g. DefectProber, which spends limits on purpose) once per form,
// so a test started with the defaults runs only the load personas. The user may tick them again.
(function () {
  "use strict";
  var names = window.LOADKIT_UNTICKED || [];
  var handled = typeof WeakSet === "function" ? new WeakSet() : null;
  if (!names.length || !handled) { return; }

  function untick() {
    document.querySelectorAll("tr").forEach(function (row) {
      var cells = row.querySelectorAll("td");
      if (cells.length < 2 || handled.has(row)) { return; }
      if (names.indexOf(cells[1].textContent.trim()) === -1) { return; }
      handled.add(row);
      var box = cells[0].querySelector("input[type=checkbox]");
      if (box && box.checked) { cells[0].click(); }
    });
  }

  setInterval(untick, 250);
})();
