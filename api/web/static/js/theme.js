// theme.js: light, dark or auto (the system's prefers-color-scheme). The choice
// is the reader's, kept in localStorage rather than in shared URLs.

const KEY = "wikiflow-theme";
const CHOICES = ["auto", "light", "dark"];
const media = matchMedia("(prefers-color-scheme: dark)");
const listeners = [];
let memory = null; // the choice when localStorage is off

/** choice is the stored choice: auto, light or dark. */
export function choice() {
  let v = memory;
  try {
    v = localStorage.getItem(KEY) || memory;
  } catch {
    /* storage may be off: the in-memory choice */
  }
  return CHOICES.includes(v) ? v : "auto";
}

/** themeName is the theme in effect: light or dark. */
export function themeName() {
  const c = choice();
  if (c !== "auto") return c;
  return media.matches ? "dark" : "light";
}

/** onThemeChange calls fn whenever the theme in effect may have changed. */
export function onThemeChange(fn) {
  listeners.push(fn);
}

function apply() {
  const c = choice();
  if (c === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = c;
  for (const fn of listeners) fn(themeName());
}

/** initTheme applies the stored choice and makes button cycle auto → light → dark. */
export function initTheme(button) {
  const label = button.querySelector(".theme-label");
  const show = () => {
    label.textContent = choice();
    button.setAttribute("aria-label", `Colour theme: ${choice()} (now ${themeName()})`);
  };
  button.addEventListener("click", () => cycle());
  media.addEventListener("change", () => (apply(), show()));
  listeners.push(show);
  apply();
}

/** cycle moves to the next choice. */
export function cycle() {
  const next = CHOICES[(CHOICES.indexOf(choice()) + 1) % CHOICES.length];
  memory = next;
  try {
    localStorage.setItem(KEY, next);
  } catch {
    /* storage may be off */
  }
  apply();
}
