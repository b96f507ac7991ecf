// Partner Console behaviour that htmx attributes cannot express. No inline scripts (CSP).
(function () {
  "use strict";

  function banner(message) {
    var box = document.getElementById("error-banner");
    if (!box) { return; }
    box.textContent = message;
    box.hidden = false;
  }

  function clearBanner() {
    var box = document.getElementById("error-banner");
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  // htmx 2 does not swap 4xx/5xx responses: say what went wrong instead of doing nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var message = "The request failed (" + xhr.status + ").";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var detail = doc.querySelector("[data-error-detail]");
      if (detail && detail.textContent.trim()) { message = detail.textContent.trim(); }
    } catch (ignored) { /* keep the generic message */ }
    banner(message);
  });

  document.addEventListener("htmx:sendError", function () {
    banner("The console could not be reached. Check your connection and try again.");
  });

  document.addEventListener("htmx:beforeRequest", clearBanner);

  // "Select all" ticks every row checkbox in its own form.
  document.addEventListener("change", function (event) {
    var all = event.target.closest("input[data-select-all]");
    if (!all) { return; }
    all.form.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = all.checked; });
  });

  // The org switcher navigates on change; without JavaScript its button does.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-navigate]");
    if (select && select.value) { window.location.assign(select.value); }
  });
})();
