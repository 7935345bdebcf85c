// The proofread beside the Sign button: "Fix" records the choice and takes the radiologist to
// the field it is about; "Sign anyway" is a checkbox in the sign form itself (no script needed).
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest(".proofread-fix");
  if (!button) return;
  const body = new FormData();
  body.append("rule", button.dataset.rule);
  const csrf = document.querySelector("#report-sign-form input[name=csrfmiddlewaretoken]");
  fetch(button.dataset.fixUrl, { method: "POST", body, headers: { "X-CSRFToken": csrf ? csrf.value : "" } });
  const issue = button.closest(".proofread-issue");
  if (issue) issue.classList.add("fixing");
  const field = document.getElementById(button.dataset.field);
  if (field) {
    field.scrollIntoView({ block: "center" });
    field.focus();
  }
});
