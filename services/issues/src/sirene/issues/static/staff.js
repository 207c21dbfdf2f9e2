// Staff inbox: signs in with a staff token (kept in this tab's sessionStorage only), lists the
// reports of the member's departments through the staff API, and changes them.
(function () {
  "use strict";
  const login = document.getElementById("login");
  const tenant = login.dataset.tenant;
  const say = document.getElementById("meldung-status");
  const area = document.getElementById("arbeitsbereich");
  const key = "sirene-issues-token-" + tenant;
  let current = null;
  let templates = [];

  async function call(method, path, body) {
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(key) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch("/api/v1" + path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = res.status === 204 ? null : await res.json();
    if (!res.ok) {
      const detail = data && data.detail;
      const text = Array.isArray(detail) ? detail.map(function (d) { return d.msg; }).join(" ") : detail;
      throw new Error(text || "Fehler " + res.status);
    }
    return data;
  }

  function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.append(td); return td; }
  function when(iso) { return iso ? new Date(iso).toLocaleString("de-DE", { dateStyle: "short", timeStyle: "short" }) : ""; }
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
      cell(row, r.agency_responsible || "nicht zugeordnet");
      const due = cell(row, r.overdue ? "überfällig" : (r.expected_datetime ? "bis " + when(r.expected_datetime) : ""));
      if (r.overdue) due.className = "overdue";
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Öffnen";
      open.setAttribute("aria-label", "Meldung " + r.id.slice(0, 8) + " öffnen");
      open.addEventListener("click", function () { show(r.id); });
      row.append(document.createElement("td"));
      row.lastChild.append(open);
      body.append(row);
    });
    say.textContent = page.items.length + " Meldungen";
  }

  async function show(id) {
    const r = await call("GET", "/reports/" + id);
    current = r;
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-titel").textContent = "Meldung " + r.id.slice(0, 8) + " – " + r.category_label;
    const dl = document.getElementById("detail-daten");
    dl.replaceChildren();
    item(dl, "Meldungsnummer", r.id);
    item(dl, "Status", r.status_label + (r.overdue ? " (überfällig)" : ""));
    item(dl, "Abteilung", r.agency_responsible);
    item(dl, "Beschreibung", r.description);
    item(dl, "Ort", r.lat.toFixed(6) + ", " + r.lon.toFixed(6) + (r.address ? " (" + r.address + ")" : ""));
    const c = r.contact || {};
    item(dl, "Kontakt", [c.name, c.email, c.phone].filter(Boolean).join(", ") || "anonym");
    item(dl, "Unterstützt von", r.supporters ? r.supporters + " Personen" : "");
    item(dl, "Duplikate", r.merged.join(", "));
    item(dl, "Veröffentlichung", r.moderation === "pending" ? "wartet auf Freigabe" : "");
    const photos = document.getElementById("detail-fotos");
    photos.replaceChildren();
    r.photos.forEach(function (p, i) {
      const li = document.createElement("li"); const img = document.createElement("img");
      img.src = "/api/v1/" + tenant + "/reports/" + r.id + "/photos/" + p; img.alt = "Foto " + (i + 1);
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
    }, "Status geändert.").then(function () { f.note.value = ""; });
  });
  document.getElementById("s-template").addEventListener("change", function (e) {
    const t = templates.find(function (x) { return x.id === e.target.value; });
    if (t) { document.getElementById("s-note").value = t.text; if (t.status) document.getElementById("s-status").value = t.status; }
  });
  document.getElementById("comment-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const f = e.target;
    act(function () { return call("POST", "/reports/" + current.id + "/comments", { text: f.text.value }); }, "Kommentar gespeichert.").then(function () { f.text.value = ""; });
  });
  document.getElementById("assign-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const f = e.target;
    act(function () { return call("POST", "/reports/" + current.id + "/assignment", { department: f.department.value, reason: f.reason.value.trim() || null }); }, "Weitergeleitet.");
  });
  document.getElementById("merge-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const f = e.target;
    act(function () { return call("POST", "/reports/" + current.id + "/merge", { into: f.into.value.trim() }); }, "Zusammengeführt.");
  });
  document.getElementById("filter").addEventListener("submit", function (e) { e.preventDefault(); list().catch(function (x) { say.textContent = x.message; }); });
  document.getElementById("abmelden").addEventListener("click", function () { sessionStorage.removeItem(key); location.reload(); });

  async function start() {
    try {
      const me = await call("GET", "/me");
      if (me.tenant !== tenant) throw new Error("Dieser Zugang gehört zu einer anderen Gemeinde.");
      document.getElementById("wer").textContent = me.name + " (" + me.role + ")";
      login.hidden = true;
      area.hidden = false;
      templates = await call("GET", "/templates");
      const select = document.getElementById("s-template");
      templates.forEach(function (t) { const o = document.createElement("option"); o.value = t.id; o.textContent = t.title; select.append(o); });
      const departments = await call("GET", "/departments");
      const target = document.getElementById("a-department");
      departments.forEach(function (d) { const o = document.createElement("option"); o.value = d.id; o.textContent = d.name; target.append(o); });
      await list();
    } catch (e) {
      sessionStorage.removeItem(key);
      login.hidden = false; area.hidden = true;
      say.textContent = e.message;
    }
  }
  login.addEventListener("submit", function (e) {
    e.preventDefault();
    sessionStorage.setItem(key, document.getElementById("token").value.trim());
    start();
  });
  document.getElementById("detail-titel").tabIndex = -1;
  if (sessionStorage.getItem(key)) start();
})();
