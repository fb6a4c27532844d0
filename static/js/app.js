/* Registry UI: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // Lets the stylesheet show controls that only work with JavaScript (e.g. copy buttons).
  document.documentElement.classList.add("js");

  var RESET_AFTER_MS = 1600;

  function isTextField(element) {
    return element && (element.tagName === "INPUT" || element.tagName === "TEXTAREA");
  }

  // The element whose text a [data-copy] button copies: the one named by the attribute's
  // value, else the input or textarea next to the button (inside the same .copy box).
  function copySource(button) {
    var id = button.getAttribute("data-copy");
    if (id) {
      return document.getElementById(id);
    }
    var box = button.closest(".copy") || button.parentElement;
    return box ? box.querySelector("input, textarea") : null;
  }

  function textOf(element) {
    return isTextField(element) ? element.value : element.textContent.trim();
  }

  // For pages served over plain HTTP, where navigator.clipboard does not exist.
  function legacyCopy(element, text) {
    var field = element;
    var scratch = null;
    if (!isTextField(element)) {
      scratch = document.createElement("textarea");
      scratch.className = "copy-scratch";
      scratch.setAttribute("readonly", "");
      scratch.setAttribute("aria-hidden", "true");
      scratch.value = text;
      document.body.appendChild(scratch);
      field = scratch;
    }
    var copied = false;
    try {
      field.focus();
      field.select();
      field.setSelectionRange(0, text.length);
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    if (scratch) {
      scratch.remove();
    }
    return copied;
  }

  function showResult(button, copied) {
    if (!button.hasAttribute("data-original-label")) {
      button.setAttribute("data-original-label", button.innerHTML);
    }
    var label = copied
      ? button.getAttribute("data-copied-label") || "Copied"
      : button.getAttribute("data-failed-label") || "Press Ctrl+C";
    button.setAttribute("aria-live", "polite");
    button.textContent = label;
    button.classList.toggle("copied", copied);
    button.classList.toggle("copy-failed", !copied);
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.innerHTML = button.getAttribute("data-original-label");
      button.removeAttribute("data-original-label");
      button.classList.remove("copied", "copy-failed");
    }, RESET_AFTER_MS);
  }

  function copy(button) {
    var source = copySource(button);
    if (!source) {
      return;
    }
    var text = textOf(source);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          showResult(button, true);
        },
        function () {
          showResult(button, legacyCopy(source, text));
        }
      );
    } else {
      var copied = legacyCopy(source, text);
      if (!copied && isTextField(source)) {
        source.select(); // leave the text selected so that Ctrl+C works
      }
      showResult(button, copied);
    }
  }

  // Delegated, so buttons inside content swapped in by htmx work too.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button && !button.disabled) {
      event.preventDefault();
      copy(button);
    }
  });

  // "/" puts the cursor in the top bar's search, as on many sites, unless one is typing somewhere already.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
    var search = document.getElementById("topbar-search");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey && search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  });

  // Clicking into a read-only copy field selects all of it, ready for Ctrl+C.
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (isTextField(field) && field.readOnly && field.closest(".copy")) {
      field.select();
    }
  });

  // The phone menu (a <details>) closes on Escape and on a click outside it, as menus do.
  document.addEventListener("keydown", function (event) {
    var menu = document.querySelector(".phone-menu[open]");
    if (menu && event.key === "Escape") {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });

  document.addEventListener("click", function (event) {
    var menu = document.querySelector(".phone-menu[open]");
    if (menu && !menu.contains(event.target)) {
      menu.open = false;
    }
  });
})();
