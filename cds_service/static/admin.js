// Inline checks while typing: bounds and whole numbers, next to the field. The server checks again,
// with the cross-field rules too, and its messages land in the same place.
(function () {
  "use strict";
  function check(input) {
    var out = document.getElementById("e-" + input.name);
    if (!out) { return; }
    var text = input.value.trim();
    var unit = input.dataset.unit ? " " + input.dataset.unit : "";
    var message = "";
    if (text === "") {
      message = input.validity && input.validity.badInput ? "enter a number" : "required: enter a value";
    } else {
      var value = Number(text);
      if (!isFinite(value)) {
        message = "enter a number";
      } else if (input.dataset.kind === "int" && !Number.isInteger(value)) {
        message = "enter a whole number";
      } else if (input.dataset.min !== undefined && value < Number(input.dataset.min)) {
        message = "must be at least " + input.dataset.min + unit;
      } else if (input.dataset.max !== undefined && value > Number(input.dataset.max)) {
        message = "must be at most " + input.dataset.max + unit;
      }
    }
    out.textContent = message;
    var row = document.getElementById("row-" + input.name);
    if (message) {
      input.setAttribute("aria-invalid", "true");
      if (row) { row.classList.add("invalid"); }
    } else {
      input.removeAttribute("aria-invalid");
      if (row) { row.classList.remove("invalid"); }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var inputs = document.querySelectorAll("input[data-kind='int'], input[data-kind='float']");
    Array.prototype.forEach.call(inputs, function (input) {
      input.addEventListener("input", function () { check(input); });
      input.addEventListener("change", function () { check(input); });
    });
  });
})();
