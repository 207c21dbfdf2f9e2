// Staff inbox (shown once signed in): lists the reports of the member's departments through
// the staff API and changes them. The session cookie (HttpOnly) authenticates each call; every
// state-changing call carries the page's CSRF token. Texts come from the page's catalogue.
(function () {
  "use strict";
  const area = document.getElementById("arbeitsbereich");
  if (!area) return;
  const tenant = area.dataset.tenant;
  const say = document.getElementById("meldung-status");
  const lang = document.documentElement.lang || "de";
  const texts = JSON.parse(document.getElementById("texte").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let current = null;
  let templates = [];

  function t(key, params) {
    return texts[key].replace(/\{(\w+)\}/g, function (_, name) { return String(params[name]); });
  }

  async function call(method, path, body) {
    const headers = { "Accept-Language": lang };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch("/api/v1" + path, { method: method, headers: headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) {  // the session ended (idle, signed out elsewhere, new password)
      say.textContent = t("signed_out", {});
      location.reload();
      throw new Error(t("signed_out", {}));
    }
    const data = res.status === 204 ? null : await res.json();
    if (!res.ok) {
      const detail = data && data.detail;
      const text = Array.isArray(detail) ? detail.map(function (d) { return d.msg; }).join(" ") : detail;
      throw new Error(text || t("error", { status: res.status }));
    }
    return data;
  }

  function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.append(td); return td; }
  function when(iso) { return iso ? new Date(iso).toLocaleString(lang === "en" ? "en-GB" : "de-DE", { dateStyle: "short", timeStyle: "short" }) : ""; }
  function item(dl, label, value) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt"); dt.textContent = label;
    const dd = document.createElement("dd"); dd.textContent = value;
    dl.append(dt, dd);
  }

  async function list() {
    const form = document.getElementById("filter");
    const q = new URLSearchParams();
    const status = form.status.value;
    if (status === "open") { q.append("status", "received"); q.append("status", "in_progress"); }
    else if (status) q.append("status", status);
    if (form.category.value) q.set("category", form.category.value);
    if (form.q.value.trim()) q.set("q", form.q.value.trim());
    if (form.overdue.checked) q.set("overdue", "true");
    const page = await call("GET", "/reports?" + q.toString());
    const body = document.querySelector("#liste tbody");
    body.replaceChildren();
    page.items.forEach(function (r) {
      const row = document.createElement("tr");
      cell(row, r.id.slice(0, 8));
      cell(row, when(r.created_at));
      cell(row, r.category_label);
      cell(row, r.status_label);
      cell(row, r.agency_responsible || t("unassigned", {}));
      const due = cell(row, r.overdue ? t("overdue", {}) : (r.expected_datetime ? t("due_by", { date: when(r.expected_datetime) }) : ""));
      if (r.overdue) due.className = "overdue";
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = t("open", {});
      open.setAttribute("aria-label", t("open_report", { id: r.id.slice(0, 8) }));
      open.addEventListener("click", function () { show(r.id); });
      row.append(document.createElement("td"));
      row.lastChild.append(open);
      body.append(row);
    });
    say.textContent = t("reports_count", { count: page.items.length });
  }

  async function show(id) {
    const r = await call("GET", "/reports/" + id);
    current = r;
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-titel").textContent = t("report_heading", { id: r.id.slice(0, 8), category: r.category_label });
    const dl = document.getElementById("detail-daten");
    dl.replaceChildren();
    item(dl, t("report_number", {}), r.id);
    item(dl, t("status", {}), r.status_label + (r.overdue ? t("overdue_suffix", {}) : ""));
    item(dl, t("department", {}), r.agency_responsible);
    item(dl, t("description", {}), r.description);
    item(dl, t("place", {}), r.lat.toFixed(6) + ", " + r.lon.toFixed(6) + (r.address ? " (" + r.address + ")" : ""));
    const c = r.contact || {};
    item(dl, t("contact", {}), [c.name, c.email, c.phone].filter(Boolean).join(", ") || t("anonymous", {}));
    item(dl, t("supporters", {}), r.supporters ? t("persons", { count: r.supporters }) : "");
    item(dl, t("duplicates", {}), r.merged.join(", "));
    item(dl, t("publication", {}), r.moderation === "pending" ? t("awaiting_approval", {}) : "");
    const photos = document.getElementById("detail-fotos");
    photos.replaceChildren();
    r.photos.forEach(function (p, i) {
      const li = document.createElement("li"); const img = document.createElement("img");
      img.src = "/api/v1/" + tenant + "/reports/" + r.id + "/photos/" + p; img.alt = t("photo", { n: i + 1 });
      li.append(img); photos.append(li);
    });
    const history = document.getElementById("detail-verlauf");
    history.replaceChildren();
    r.history.forEach(function (h) { const li = document.createElement("li"); li.textContent = when(h.at) + ": " + h.status_label + (h.note ? " – " + h.note : ""); history.append(li); });
    const comments = document.getElementById("detail-kommentare");
    comments.replaceChildren();
    r.comments.forEach(function (k) { const li = document.createElement("li"); li.textContent = when(k.at) + " " + k.by_name + ": " + k.text; comments.append(li); });
    document.getElementById("detail-titel").focus();
  }

  async function act(work, done) {
    try { await work(); await show(current.id); await list(); say.textContent = done; }
    catch (e) { say.textContent = e.message; }
  }

  document.getElementById("status-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const f = e.target;
    act(function () {
      return call("POST", "/reports/" + current.id + "/status", { status: f.status.value, note: f.note.value.trim() || null, template: f.template.value || null });
    }, t("status_changed", {})).then(function () { f.note.value = ""; });
  });
  document.getElementById("s-template").addEventListener("change", function (e) {
    const t = templates.find(function (x) { return x.id === e.target.value; });
    if (t) { document.getElementById("s-note").value = t.text; if (t.status) document.getElementById("s-status").value = t.status; }
  });
  document.getElementById("comment-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const f = e.target;
    act(function () { return call("POST", "/reports/" + current.id + "/comments", { text: f.text.value }); }, t("comment_saved", {})).then(function () { f.text.value = ""; });
  });
  document.getElementById("assign-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const f = e.target;
    act(function () { return call("POST", "/reports/" + current.id + "/assignment", { department: f.department.value, reason: f.reason.value.trim() || null }); }, t("forwarded", {}));
  });
  document.getElementById("merge-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const f = e.target;
    act(function () { return call("POST", "/reports/" + current.id + "/merge", { into: f.into.value.trim() }); }, t("merged", {}));
  });
  document.getElementById("filter").addEventListener("submit", function (e) { e.preventDefault(); list().catch(function (x) { say.textContent = x.message; }); });

  async function start() {
    try {
      templates = await call("GET", "/templates");
      const select = document.getElementById("s-template");
      templates.forEach(function (x) { const o = document.createElement("option"); o.value = x.id; o.textContent = x.title; select.append(o); });
      const departments = await call("GET", "/departments");
      const target = document.getElementById("a-department");
      departments.forEach(function (d) { const o = document.createElement("option"); o.value = d.id; o.textContent = d.name; target.append(o); });
      await list();
    } catch (e) {
      say.textContent = e.message;
    }
  }
  document.getElementById("detail-titel").tabIndex = -1;
  start();
})();
