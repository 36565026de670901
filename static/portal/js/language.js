// The language switch submits itself when a language is picked; its Apply button stays for keyboards
// and for browsers without scripts.
const form = document.querySelector(".lang-form");
if (form) {
  form.querySelector("select")?.addEventListener("change", () => form.requestSubmit());
}
