// msp-ticketd Ticketing tab: optional conveniences. Every page works without this script
// (nojs.css then shows the Edit window's fields under the table).
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  // The section's form, or a row's ticket text editor: their edits are warned about alike.
  var form = document.getElementById("rules-form") || document.getElementById("text-form");

  // The left pane folds behind "Sections" on narrow screens.
  var toggle = document.getElementById("nav-toggle");
  var nav = document.getElementById("nav");
  if (toggle && nav) {
    toggle.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Selected rows: the count above the table, the Edit button enabled once any is ticked.
  var boxes = Array.prototype.slice.call(document.querySelectorAll('#rules-table tbody input[name="select"]'));
  var editOpen = document.getElementById("edit-open");
  var countText = document.getElementById("selected-count");
  var dialogCount = document.getElementById("edit-count");
  function selected() {
    return boxes.filter(function (b) { return b.checked; });
  }
  function rows(n) {
    return n === 1 ? "1 row" : n + " rows";
  }
  function updateSelection() {
    var sel = selected();
    if (editOpen) editOpen.disabled = sel.length === 0;
    if (countText) {
      countText.textContent = sel.length === 0
        ? "No rows selected: tick rows, then Edit changes them all at once."
        : rows(sel.length) + " selected";
    }
    if (dialogCount) {
      dialogCount.textContent = sel.length === 0
        ? "No rows selected."
        : rows(sel.length) + " selected: " + sel.map(function (b) { return b.getAttribute("data-label"); }).join(", ");
    }
    var all = document.querySelector("input[data-select-all]");
    if (all) {
      all.checked = sel.length > 0 && sel.length === boxes.length;
      all.indeterminate = sel.length > 0 && sel.length < boxes.length;
    }
  }
  boxes.forEach(function (b) { b.addEventListener("change", updateSelection); });
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
      updateSelection();
    });
  });
  updateSelection();

  // The Edit window as a modal dialog.
  var dialog = document.getElementById("edit-dialog");
  if (dialog && editOpen && typeof dialog.showModal === "function") {
    editOpen.addEventListener("click", function () {
      updateSelection();
      dialog.showModal();
    });
    var close = document.getElementById("edit-close");
    if (close) close.addEventListener("click", function () { dialog.close(); });
  }

  // Issue subtypes follow the chosen issue type in the Edit window.
  document.querySelectorAll("select[data-issue-select]").forEach(function (issue) {
    var sub = document.getElementById(issue.getAttribute("data-issue-select"));
    if (!sub) return;
    function filter() {
      var chosen = issue.value.charAt(0) === "=" ? issue.value.slice(1) : null;
      sub.querySelectorAll("optgroup").forEach(function (group) {
        var show = chosen === null || group.label === chosen;
        group.hidden = !show;
        group.disabled = !show;
      });
      var option = sub.options[sub.selectedIndex];
      if (option && option.parentElement.tagName === "OPTGROUP" && option.parentElement.disabled) {
        sub.value = "";
      }
    }
    issue.addEventListener("change", filter);
    filter();
  });

  // Unsaved inline edits: warn before leaving the section without saving them.
  var dirty = false;
  var leaving = false;
  var warning = "This section has edits that are not saved. Leave without saving them?";
  if (form) {
    form.querySelectorAll("[data-inline]").forEach(function (field) {
      field.addEventListener("input", function () { dirty = true; });
      field.addEventListener("change", function () { dirty = true; });
    });
    // Save changes and the Edit window post the edits: nothing is lost.
    form.addEventListener("submit", function () { leaving = true; });
  }
  // Cancel changes and Reset to defaults discard edits on purpose.
  document.querySelectorAll("form[data-discards]").forEach(function (f) {
    f.addEventListener("submit", function () { leaving = true; });
  });
  function confirmLeave(event) {
    if (!dirty || leaving) return;
    if (window.confirm(warning)) {
      leaving = true;
    } else {
      event.preventDefault();
    }
  }
  document.querySelectorAll("nav a, header a").forEach(function (a) {
    a.addEventListener("click", confirmLeave);
  });
  document.querySelectorAll("form[data-leaves]").forEach(function (f) {
    f.addEventListener("submit", confirmLeave);
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty && !leaving) {
      event.preventDefault();
      event.returnValue = warning;
    }
  });
});
