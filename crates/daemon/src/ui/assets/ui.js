// msp-ticketd Ticketing tab: optional conveniences. Every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // "Select all rows" checkbox in a rule table's header.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      var table = all.closest("table");
      table.querySelectorAll('tbody input[name="select"]').forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });
  // Sub-issue types follow the chosen issue type in the Edit window.
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
      var selected = sub.options[sub.selectedIndex];
      if (selected && selected.parentElement.tagName === "OPTGROUP" && selected.parentElement.disabled) {
        sub.value = "";
      }
    }
    issue.addEventListener("change", filter);
    filter();
  });
});
