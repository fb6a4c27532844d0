/* Language switcher: submit the form as soon as another language is picked, and hide
   the now-unneeded "Change" button. Without JavaScript the button submits the form. */
(function () {
  "use strict";

  function enhance(root) {
    var forms = Array.prototype.slice.call(root.querySelectorAll("form.language-form"));
    if (root.matches && root.matches("form.language-form")) {
      forms.push(root);
    }
    for (var i = 0; i < forms.length; i++) {
      var button = forms[i].querySelector("button[type=submit], input[type=submit]");
      if (button) {
        button.hidden = true;
      }
    }
  }

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("form.language-form select[name=language]")) {
      var form = select.form;
      if (form.requestSubmit) {
        form.requestSubmit();
      } else {
        form.submit();
      }
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      enhance(document);
    });
  } else {
    enhance(document);
  }

  // Content swapped in by htmx may bring its own switcher.
  document.addEventListener("htmx:load", function (event) {
    enhance(event.target);
  });
})();
