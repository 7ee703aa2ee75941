(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll(".image-card"));
  var patients = Array.prototype.slice.call(document.querySelectorAll(".patient"));
  var search = document.getElementById("filter-search");
  var referableOnly = document.getElementById("filter-referable");
  var ungradableOnly = document.getElementById("filter-ungradable");
  var counter = document.getElementById("filter-count");
  var empty = document.getElementById("filter-empty");

  function applyFilters() {
    var query = search.value.trim().toLowerCase();
    var shown = 0;
    cards.forEach(function (card) {
      var visible = (!referableOnly.checked || card.dataset.referable === "yes") &&
        (!ungradableOnly.checked || card.dataset.ungradable === "yes") &&
        (query === "" || card.dataset.search.indexOf(query) !== -1);
      card.hidden = !visible;
      if (visible) { shown += 1; }
    });
    patients.forEach(function (patient) {
      patient.hidden = patient.querySelector(".image-card:not([hidden])") === null;
    });
    counter.textContent = shown + " of " + cards.length + " images shown";
    empty.style.display = shown === 0 ? "block" : "none";
  }

  function showLayer(card, kind, visible) {
    var layer = card.querySelector('img.layer[data-layer="' + kind + '"]');
    var box = card.querySelector('input[data-layer="' + kind + '"]');
    if (layer) { layer.hidden = !visible; }
    if (box) { box.checked = visible; }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches(".controls input[data-layer]")) {
      showLayer(target.closest(".image-card"), target.dataset.layer, target.checked);
    } else if (target.matches(".toolbar input[data-all-layer]")) {
      cards.forEach(function (card) { showLayer(card, target.dataset.allLayer, target.checked); });
    } else if (target === referableOnly || target === ungradableOnly) {
      applyFilters();
    }
  });
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.matches(".controls input[data-opacity]")) {
      target.closest(".image-card").querySelector(".viewer").style.setProperty("--overlay-opacity", target.value / 100);
    } else if (target === search) {
      applyFilters();
    }
  });
  applyFilters();
})();
