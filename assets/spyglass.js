// SpyGlass in the browser: send task files straight to their presigned upload URLs, and
// sign in, register and sign out through the HTTP API.
//
// The New task page asks `spyglass.describeFiles` what is chosen, the server answers
// with one presigned PUT per file, and `spyglass.upload` sends them (XMLHttpRequest,
// for upload progress) while it moves the page's progress bar. Files never pass
// through the app's websocket. Drop zones ([data-dropzone=KEY]) fill #file-KEY.
//
// The session cookie is HttpOnly and set by the server: `spyglass.signIn` posts the
// sign-in form to /api/session and then loads the next page afresh, so that its new
// socket carries the cookie. Passwords go to the HTTP API only, never over the socket.
(function () {
  "use strict";
  const S = (window.spyglass = window.spyglass || {});
  if (S.loaded) return; // loaded once per page, whatever includes it
  S.loaded = true;

  function chosen(key) {
    const input = document.getElementById("file-" + key);
    return input && input.files && input.files.length ? input.files[0] : null;
  }

  S.describeFiles = function (keys) {
    const out = {};
    for (const key of keys) {
      const file = chosen(key);
      if (file) out[key] = { filename: file.name, size: file.size, type: file.type };
    }
    return out;
  };

  // The upload may start before the bar is drawn: wait for it, a frame at a time (~2 s).
  function showProgress(sent, total, tries = 0) {
    const pct = total > 0 ? Math.min(100, Math.floor((100 * sent) / total)) : 100;
    const bar = document.getElementById("upload-bar");
    if (!bar && tries < 120) {
      return requestAnimationFrame(() => showProgress(sent, total, tries + 1));
    }
    if (bar) {
      bar.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
    }
    const label = document.getElementById("upload-percent");
    if (label) label.textContent = pct + "%";
  }

  function reason(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.detail) return body.detail;
    } catch (_) {
      /* not JSON (S3 answers XML) */
    }
    return "the storage answered HTTP " + xhr.status;
  }

  function put(ticket, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(ticket.method || "PUT", ticket.url);
      for (const [name, value] of Object.entries(ticket.headers || {})) {
        xhr.setRequestHeader(name, value);
      }
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () =>
        xhr.status >= 200 && xhr.status < 300
          ? resolve()
          : reject(new Error(file.name + ": " + reason(xhr)));
      xhr.onerror = () => reject(new Error(file.name + ": the connection failed"));
      xhr.send(file);
    });
  }

  // Resolves {ok: true, bytes} once every file is stored, or {ok: false, error}.
  S.upload = async function (uploads) {
    const jobs = [];
    for (const [key, ticket] of Object.entries(uploads)) {
      const file = chosen(key);
      if (!file) return { ok: false, error: "the " + key + " file is no longer selected" };
      jobs.push({ key, ticket, file });
    }
    const total = jobs.reduce((n, job) => n + job.file.size, 0);
    const sent = {};
    const report = () => showProgress(Object.values(sent).reduce((a, b) => a + b, 0), total);
    showProgress(0, total);
    try {
      await Promise.all(
        jobs.map((job) =>
          put(job.ticket, job.file, (n) => {
            sent[job.key] = n;
            report();
          }),
        ),
      );
    } catch (e) {
      return { ok: false, error: e.message };
    }
    showProgress(total, total);
    return { ok: true, bytes: total };
  };

  // -- accounts ---------------------------------------------------------------------------
  function field(formId, name) {
    const form = document.getElementById(formId);
    const value = form ? new FormData(form).get(name) : null;
    return typeof value === "string" ? value : "";
  }

  // {ok: true} or {ok: false, error} with the server's own words.
  async function call(method, url, body) {
    let response;
    try {
      response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (_) {
      return { ok: false, error: "The server could not be reached; try again" };
    }
    if (response.ok) return { ok: true };
    let detail = null;
    try {
      detail = (await response.json()).detail;
    } catch (_) {
      /* not JSON */
    }
    return {
      ok: false,
      error: typeof detail === "string" ? detail : "Check the email and the password",
    };
  }

  S.signIn = async function (next) {
    const outcome = await call("POST", "/api/session", {
      email: field("login-form", "email"),
      password: field("login-form", "password"),
    });
    if (outcome.ok) window.location.assign(next);
    return outcome;
  };

  // The answer is the same whether the address was new or taken: on to the sign-in page.
  S.register = async function (next) {
    const password = field("register-form", "password");
    if (password !== field("register-form", "confirm")) {
      return { ok: false, error: "The two passwords differ" };
    }
    const outcome = await call("POST", "/api/register", {
      email: field("register-form", "email"),
      password,
    });
    if (outcome.ok) {
      const query = "registered=1" + (next !== "/tasks" ? "&next=" + encodeURIComponent(next) : "");
      window.location.assign("/login?" + query);
    }
    return outcome;
  };

  S.signOut = async function () {
    const outcome = await call("DELETE", "/api/session");
    if (outcome.ok) window.location.assign("/login");
    return outcome;
  };

  // Drag and drop onto a zone puts the file into the zone's file input.
  function zoneOf(event) {
    return event.target && event.target.closest ? event.target.closest("[data-dropzone]") : null;
  }
  document.addEventListener("dragover", (event) => {
    const zone = zoneOf(event);
    if (!zone) return;
    event.preventDefault();
    zone.setAttribute("data-over", "true");
  });
  document.addEventListener("dragleave", (event) => {
    const zone = zoneOf(event);
    if (zone) zone.removeAttribute("data-over");
  });
  document.addEventListener("drop", (event) => {
    const zone = zoneOf(event);
    if (!zone) return;
    event.preventDefault();
    zone.removeAttribute("data-over");
    const input = document.getElementById("file-" + zone.getAttribute("data-dropzone"));
    if (!input || !event.dataTransfer || !event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // While a select, menu or dialog is open, Radix hides the rest of the page from screen
  // readers (aria-hidden on the other children of <body>) and keeps focus inside it. Make
  // that hidden part inert as well, so nothing in it can take focus either; undone when
  // Radix shows it again (before it puts the focus back on the control that opened it).
  new MutationObserver((records) => {
    for (const record of records) {
      const el = record.target;
      if (!(el instanceof HTMLElement) || el.parentElement !== document.body) continue;
      if (el.getAttribute("aria-hidden") === "true") {
        if (!el.inert) {
          el.inert = true;
          el.setAttribute("data-spyglass-inert", "");
        }
      } else if (el.hasAttribute("data-spyglass-inert")) {
        el.inert = false;
        el.removeAttribute("data-spyglass-inert");
      }
    }
  }).observe(document.documentElement, {
    subtree: true,
    attributes: true,
    attributeFilter: ["aria-hidden"],
  });
})();
