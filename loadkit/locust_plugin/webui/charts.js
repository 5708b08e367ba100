// Live charts of the server under test, fed by /server-charts/data (polled every 2 s).
// Drawn with uPlot, shipped in ./vendor/uplot so the page works offline.
(function () {
  "use strict";
  var FEED = "/server-charts/data";
  var POLL_MS = 2000;
  var WIDTH = 560;
  var HEIGHT = 260;

  function axes(leftLabel, leftScale, rightLabel, rightScale) {
    var list = [{}, { label: leftLabel, scale: leftScale }];
    if (rightLabel) {
      list.push({ label: rightLabel, scale: rightScale, side: 1, grid: { show: false } });
    }
    return list;
  }

  function makeChart(id, title, series, axisList, scales) {
    var opts = {
      title: title, width: WIDTH, height: HEIGHT,
      series: [{}].concat(series), axes: axisList, scales: scales || {},
    };
    var empty = [[]].concat(series.map(function () { return []; }));
    return new uPlot(opts, empty, document.getElementById(id));
  }

  var charts = [
    {
      keys: ["server_rss_mb", "server_cpu_percent"],
      plot: makeChart("chart-memory", "Server memory and CPU", [
        { label: "RSS (MB)", stroke: "#1565c0", scale: "mb" },
        { label: "CPU (%)", stroke: "#ef6c00", scale: "%" },
      ], axes("MB", "mb", "%", "%")),
    },
    {
      keys: ["pool_checked_out", "pool_open", "pool_capacity"],
      plot: makeChart("chart-pool", "DB pool connections", [
        { label: "in use", stroke: "#2e7d32" },
        { label: "open", stroke: "#1565c0" },
        { label: "capacity", stroke: "#9e9e9e", dash: [6, 4] },
      ], axes("connections", "y"), {
        // Pool counts are small integers: keep 0 in view and a little headroom, not uPlot's 0-100.
        y: { range: function (u, min, max) { return [Math.min(0, min), Math.max(max + 1, 4)]; } },
      }),
    },
    {
      keys: ["p95_ms", "requests_per_second"],
      plot: makeChart("chart-latency", "Latency p95 and throughput", [
        { label: "p95 (ms)", stroke: "#6a1b9a", scale: "ms" },
        { label: "req/s", stroke: "#00838f", scale: "rps" },
      ], axes("ms", "ms", "req/s", "rps")),
    },
  ];

  function showVerdict(verdict) {
    var box = document.getElementById("verdict");
    if (!verdict || verdict.passed === null || verdict.passed === undefined) {
      box.className = "verdict unknown";
      box.textContent = "thresholds: no figures yet";
      return;
    }
    box.className = verdict.passed ? "verdict pass" : "verdict fail";
    box.textContent = "thresholds: " + verdict.text;
  }

  function update(data) {
    var s = data.series;
    charts.forEach(function (c) {
      c.plot.setData([s.t].concat(c.keys.map(function (k) { return s[k]; })));
    });
    showVerdict(data.verdict);
    document.getElementById("status").textContent =
      "test " + data.state + " · " + s.t.length + " samples · updated " +
      new Date().toLocaleTimeString();
    document.body.setAttribute("data-samples", String(s.t.length));
  }

  function poll() {
    fetch(FEED, { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(update)
      .catch(function (e) {
        document.getElementById("status").textContent = "feed unavailable: " + e;
      });
  }

  poll();
  setInterval(poll, POLL_MS);
})();
