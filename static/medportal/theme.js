// Loaded before the page paints (not deferred), so a chosen theme never flashes the other one.
// Without a choice the system's preference applies (prefers-color-scheme, in medportal.css).
"use strict";
try {
  const theme = localStorage.getItem("medportal-theme");
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
} catch (error) {
  // Storage refused (private mode, policy): the system's preference applies.
}
