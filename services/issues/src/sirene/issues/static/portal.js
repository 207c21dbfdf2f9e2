// Report form: Leaflet map without tiles (the municipality's outline and districts as vector
// layers, so it works offline), coordinates in sync with the map, duplicate suggestions.
(function () {
  "use strict";
  const form = document.getElementById("meldung");
  if (!form) return;
  const tenant = form.dataset.tenant;
  const lat = document.getElementById("lat");
  const lon = document.getElementById("lon");
  const category = document.getElementById("category");
  const api = "/api/v1/" + encodeURIComponent(tenant);
  const lang = document.documentElement.lang || "de";
  const texts = JSON.parse(document.getElementById("texte").textContent);
  function t(key, params) {
    return texts[key].replace(/\{(\w+)\}/g, function (_, name) { return String(params[name]); });
  }
  let map = null;
  let marker = null;

  function setPoint(latlng, pan) {
    lat.value = latlng.lat.toFixed(6);
    lon.value = latlng.lng.toFixed(6);
    if (map) {
      if (!marker) marker = L.marker(latlng, { keyboard: false, title: t("marker", {}) }).addTo(map);
      marker.setLatLng(latlng);
      if (pan) map.panTo(latlng);
    }
    suggest();
  }

  function showAttributes() {
    document.querySelectorAll(".attribute").forEach(function (el) {
      el.hidden = el.dataset.category !== category.value;
    });
  }

  let pending = null;
  function suggest() {
    clearTimeout(pending);
    pending = setTimeout(async function () {
      const box = document.getElementById("duplikate");
      const list = document.getElementById("duplikat-liste");
      if (!category.value || !lat.value || !lon.value) { box.hidden = true; return; }
      const q = new URLSearchParams({ category: category.value, lat: lat.value, lon: lon.value });
      const res = await fetch(api + "/reports/nearby?" + q.toString(), { headers: { "Accept-Language": lang } });
      if (!res.ok) { box.hidden = true; return; }
      const found = await res.json();
      list.replaceChildren();
      found.forEach(function (r) {
        const li = document.createElement("li");
        const link = document.createElement("a");
        link.href = "/portal/" + encodeURIComponent(tenant) + "/meldungen/" + r.id;
        link.textContent = r.category_label + " (" + t("distance", { meters: Math.round(r.distance_m) }) + ", " + r.status_label + "): " + r.description;
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = t("support", {});
        button.addEventListener("click", async function () {
          const done = await fetch(api + "/reports/" + r.id + "/support", { method: "POST" });
          button.disabled = true;
          button.textContent = done.ok ? t("supported", {}) : t("support_failed", {});
        });
        li.append(link, " ", button);
        list.append(li);
      });
      box.hidden = found.length === 0;
    }, 300);
  }

  async function initMap() {
    if (typeof L === "undefined") return;  // the form works without the map
    const res = await fetch(api + "/config");
    const config = res.ok ? await res.json() : {};
    map = L.map("map", { keyboard: true, zoomSnap: 0.25 });
    if (config.tile_url) L.tileLayer(config.tile_url, { maxZoom: 19 }).addTo(map);
    const shapes = [];
    if (config.boundary) {
      shapes.push(L.geoJSON(config.boundary, { style: { color: "#0b5394", weight: 3, fillOpacity: 0.04 }, interactive: false }).addTo(map));
    }
    (config.areas || []).forEach(function (area) {
      const layer = L.geoJSON(area.geometry, { style: { color: "#6a8caf", weight: 1, dashArray: "4", fillOpacity: 0.02 }, interactive: false });
      layer.bindTooltip(area.name, { permanent: false });
      shapes.push(layer.addTo(map));
    });
    const group = L.featureGroup(shapes);
    if (shapes.length) map.fitBounds(group.getBounds(), { padding: [10, 10] });
    else if (config.center) map.setView(config.center, 14);
    else map.setView([51.1657, 10.4515], 6);
    map.on("click", function (e) { setPoint(e.latlng, false); });
    if (lat.value && lon.value) setPoint(L.latLng(parseFloat(lat.value), parseFloat(lon.value)), true);
  }

  function fromInputs() {
    const a = parseFloat(lat.value.replace(",", "."));
    const b = parseFloat(lon.value.replace(",", "."));
    if (!isNaN(a) && !isNaN(b) && window.L) setPoint(L.latLng(a, b), true);
  }
  lat.addEventListener("change", fromInputs);
  lon.addEventListener("change", fromInputs);
  category.addEventListener("change", function () { showAttributes(); suggest(); });
  showAttributes();
  const errors = document.getElementById("fehler");
  if (errors) errors.focus();
  initMap();
})();
