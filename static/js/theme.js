/* Theme switch: a choice applies at once and is remembered in the background, so the "Change" button is
   hidden. Without JavaScript the button submits the form and the server answers with the page in that theme. */
(function () {
  "use strict";

  var FORMS = "form.theme-form";

  function enhance(root) {
    var buttons = root.querySelectorAll(FORMS + " button[type=submit]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = true;
    }
  }

  function apply(choice) {
    if (choice === "light" || choice === "dark") {
      document.documentElement.setAttribute("data-theme", choice);
    } else {
      document.documentElement.removeAttribute("data-theme");
    }
    // The top bar and the phone menu each have a switch: keep both showing the choice.
    var selects = document.querySelectorAll(FORMS + " select[name=theme]");
    for (var i = 0; i < selects.length; i++) {
      selects[i].value = choice;
    }
  }

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select.matches && select.matches(FORMS + " select[name=theme]"))) {
      return;
    }
    var form = select.form;
    apply(select.value);
    // Answered with 204 (no page) for a request marked as htmx's; a refusal falls back to the plain form.
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "HX-Request": "true" },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (!response.ok) {
          form.submit();
        }
      })
      .catch(function () {
        form.submit();
      });
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      enhance(document);
    });
  } else {
    enhance(document);
  }
})();
