// The order page's live update: server-sent events carry the page fragments that changed, and
// each replaces its element. The page is complete without this script; it only keeps it current.
"use strict";

(() => {
  const status = document.querySelector("[data-live]");
  if (!status || !("EventSource" in window)) {
    return;
  }

  // Replace one fragment, keeping which disclosures are open and which control has focus (by id),
  // so an update does not undo what the reader was doing.
  const replaceFragment = (id, html) => {
    const current = document.getElementById(id);
    const template = document.createElement("template");
    template.innerHTML = html;
    const fresh = template.content.firstElementChild;
    if (!current || !fresh || fresh.id !== id) {
      return;
    }
    for (const details of current.querySelectorAll("details[id]")) {
      const twin = fresh.querySelector(`#${CSS.escape(details.id)}`);
      if (twin) {
        twin.open = details.open;
      }
    }
    const focused = current.contains(document.activeElement) ? document.activeElement.id : "";
    current.replaceWith(fresh);
    if (focused) {
      document.getElementById(focused)?.focus();
    }
  };

  const source = new EventSource(status.dataset.live);
  source.addEventListener("open", () => {
    status.textContent = "Live: changes appear as the worker applies them.";
  });
  source.addEventListener("fragments", (message) => {
    const update = JSON.parse(message.data);
    for (const [id, html] of Object.entries(update.fragments)) {
      replaceFragment(id, html);
    }
    status.textContent = `Live: updated at ${new Date().toLocaleTimeString()}.`;
  });
  source.addEventListener("gone", () => {
    source.close();
    status.textContent = "This order is no longer in the store. Reload the page.";
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) {
      status.textContent = "Live updates interrupted: reconnecting…";
    }
  });
})();
