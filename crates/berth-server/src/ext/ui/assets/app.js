// Berth's web UI: enhancements only, every page works without them.
// Copy buttons, and search as you type in the header's search box.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#id"> copies the text of #id.
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-copy]");
    if (!b) return;
    var el = document.querySelector(b.getAttribute("data-copy"));
    if (!el || !navigator.clipboard) return;
    navigator.clipboard.writeText(el.textContent.trim()).then(function () {
      var old = b.textContent;
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = old; }, 1500);
    });
  });
  document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });

  // Search as you type: suggestions under the header's box, from the
  // repository list's own page (the same access rules as every page).
  var input = document.getElementById("q");
  if (!input) return;
  var list = document.createElement("ul");
  list.className = "suggest";
  list.id = "q-suggest";
  list.hidden = true;
  list.setAttribute("role", "listbox");
  input.setAttribute("aria-controls", "q-suggest");
  input.setAttribute("autocomplete", "off");
  input.parentNode.appendChild(list);
  var timer = null, asked = "";
  function hide() { list.hidden = true; input.setAttribute("aria-expanded", "false"); }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = input.value.trim();
      if (!q) { hide(); return; }
      asked = q;
      fetch("/ui/repos?suggest=1&q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (names) {
          if (q !== asked) return;
          list.textContent = "";
          names.forEach(function (n) {
            var li = document.createElement("li");
            var a = document.createElement("a");
            a.href = "/ui/repo/" + n.split("/").map(encodeURIComponent).join("/");
            a.textContent = n;
            a.setAttribute("role", "option");
            li.appendChild(a);
            list.appendChild(li);
          });
          list.hidden = names.length === 0;
          input.setAttribute("aria-expanded", String(!list.hidden));
        })
        .catch(hide);
    }, 150);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown" && !list.hidden) {
      var first = list.querySelector("a");
      if (first) { first.focus(); e.preventDefault(); }
    } else if (e.key === "Escape") { hide(); }
  });
  list.addEventListener("keydown", function (e) {
    var a = document.activeElement;
    if (e.key === "ArrowDown" && a.parentNode.nextSibling) { a.parentNode.nextSibling.firstChild.focus(); e.preventDefault(); }
    else if (e.key === "ArrowUp") {
      if (a.parentNode.previousSibling) a.parentNode.previousSibling.firstChild.focus(); else input.focus();
      e.preventDefault();
    } else if (e.key === "Escape") { hide(); input.focus(); }
  });
  document.addEventListener("click", function (e) { if (!e.target.closest("form.search")) hide(); });
})();
