// The web client's entry point: the sign-in form, or the chat when this tab is signed in.

import * as api from "./api.js";
import { startChat } from "./chat.js";
import { $ } from "./dom.js";

// A session that ends on its own (a refused refresh, a revoked token) starts over at sign-in.
api.hooks.signedOut = () => location.reload();

function showChat() {
  $("#signin").hidden = true;
  $("#chat").hidden = false;
  startChat();
}

/** Says why a sign-in or registration failed, in words. */
function reason(e, mode) {
  if (e.status === 401) return "Wrong username or password.";
  if (e.status === 409) return "That username is taken.";
  if (e.status === 429) return "Too many attempts. Wait a minute and try again.";
  if (e.details?.fields) {
    return Object.entries(e.details.fields)
      .map(([field, why]) => `${field}: ${why}`)
      .join("; ");
  }
  return mode === "register" ? `Could not create the account: ${e.message}` : e.message;
}

function showSignIn() {
  const form = $("#signin-form");
  $("#signin").hidden = false;
  form.username.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const mode = e.submitter?.value ?? "login";
    const username = form.username.value.trim();
    const password = form.password.value;
    const error = $("#signin-error");
    error.textContent = "";
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    try {
      if (mode === "register") await api.register(username, password);
      await api.login(username, password);
      showChat();
    } catch (err) {
      error.textContent = reason(err, mode);
    } finally {
      for (const button of form.querySelectorAll("button")) button.disabled = false;
    }
  });
}

if (api.me()) showChat();
else showSignIn();
