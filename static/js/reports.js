// Reports: charts drawn from JSON in data attributes, custom ranges, and download progress.
// Chart.js (vendored) loads only on pages that have a chart. No inline scripts (CSP).
(function () {
  "use strict";

  var charts = [];
  var loading = null;

  function loadChartJs(done) {
    if (window.Chart) { done(); return; }
    var holder = document.querySelector("[data-chart-src]");
    if (!holder) { return; }
    if (!loading) {
      loading = [];
      var script = document.createElement("script");
      script.src = holder.getAttribute("data-chart-src");
      script.integrity = holder.getAttribute("data-chart-sri");
      script.crossOrigin = "anonymous";
      script.onload = function () { loading.forEach(function (fn) { fn(); }); loading = null; };
      document.head.appendChild(script);
    }
    if (loading) { loading.push(done); } else { done(); }
  }

  function color(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function config(data) {
    var accent = color("--accent", "#1f5fbf");
    var second = color("--ok", "#1e7a46");
    var base = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
    };
    var first = data.series[0];
    if (data.kind === "funnel") {
      base.indexAxis = "y";
      base.scales = { x: { beginAtZero: true, ticks: { precision: 0 } } };
      return { type: "bar", data: { labels: data.labels, datasets: [
        { label: first.label, data: first.data, backgroundColor: accent, borderRadius: 3 }
      ] }, options: base };
    }
    if (data.kind === "outcomes") {
      var revenue = data.series[1];
      base.plugins.legend = { display: true, position: "bottom" };
      base.scales.y1 = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } };
      return { type: "bar", data: { labels: data.labels, datasets: [
        { label: first.label, data: first.data, backgroundColor: accent, yAxisID: "y", order: 2 },
        { label: revenue.label, data: revenue.data, type: "line", borderColor: second,
          backgroundColor: second, yAxisID: "y1", order: 1, tension: 0.2 }
      ] }, options: base };
    }
    return { type: "bar", data: { labels: data.labels, datasets: [
      { label: first.label, data: first.data, backgroundColor: accent, borderRadius: 3 }
    ] }, options: base };
  }

  function drawCharts(root) {
    var canvases = (root || document).querySelectorAll("canvas[data-chart]");
    if (!canvases.length) { return; }
    loadChartJs(function () {
      canvases.forEach(function (canvas) {
        if (!canvas.isConnected || window.Chart.getChart(canvas)) { return; }
        var chart = new window.Chart(canvas, config(JSON.parse(canvas.getAttribute("data-chart"))));
        charts.push(chart);
      });
    });
  }

  function forgetCharts() {
    charts = charts.filter(function (chart) {
      if (chart.canvas && chart.canvas.isConnected) { return true; }
      chart.destroy();
      return false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function () {
    forgetCharts();
    drawCharts(document);
  });

  // Editing a date means a custom range: say so before htmx reads the form.
  document.addEventListener("change", function (event) {
    var input = event.target.closest("input[data-custom-range]");
    if (!input || !input.form) { return; }
    var preset = input.form.querySelector("select[name=preset]");
    if (preset) { preset.value = "custom"; }
  }, true);

  // The participant list's filters change without reloading the page: exports follow the URL.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-export-list]");
    if (!link) { return; }
    var url = new URL(link.href, window.location.href);
    var current = new URLSearchParams(window.location.search);
    ["q", "program", "role", "status", "managed", "activity", "sort"].forEach(function (name) {
      url.searchParams.delete(name);
      if (current.get(name)) { url.searchParams.set(name, current.get(name)); }
    });
    link.href = url.toString();
  }, true);

  // A download link shows "preparing" until the response arrives, which sets a cookie
  // named "download" to the token the link sent.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-download]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) {
      return;
    }
    var status = document.getElementById(link.getAttribute("data-download"));
    if (!status) { return; }
    event.preventDefault();
    var token = Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    var url = new URL(link.href, window.location.href);
    url.searchParams.set("download", token);
    status.textContent = status.getAttribute("data-preparing");
    status.hidden = false;
    status.classList.add("preparing");
    link.setAttribute("aria-disabled", "true");
    var started = Date.now();
    var timer = window.setInterval(function () {
      var arrived = document.cookie.split("; ").indexOf("download=" + token) !== -1;
      if (arrived || Date.now() - started > 300000) {
        window.clearInterval(timer);
        document.cookie = "download=; Max-Age=0; path=/; SameSite=Strict";
        status.classList.remove("preparing");
        status.textContent = status.getAttribute("data-ready");
        link.removeAttribute("aria-disabled");
      }
    }, 250);
    window.location.assign(url.toString());
  });
})();
