// dolbom parents' map: every centre on one map, clustered, coloured by free places for the chosen age; the list
// follows the map; filters, place search, "use my location", a detail panel with live vacancy (SSE), four
// languages. Works offline: the base map is the platform's own vector tiles (/tiles/...), OSM only when reachable.
"use strict";

const SEOUL = [37.5665, 126.978];
const ALL_RADIUS_M = 50000;   // "whole map": every centre within 50 km of City Hall, i.e. all of Seoul
const PAGE_LIMIT = 500;       // the API's default max_page_limit
const FIRST_PAGE_LIMIT = 100; // the whole map's first page: its markers show while the other pages load
// The whole map's list (thousands of centres) carries only what markers and list entries show (f=markers), and the
// first page's markers show before the rest arrives; details come with a click. Around a home (a few dozen) the
// list has the full items. "?list=full" loads the whole map as the page did before (the full items, markers once
// all pages are in): benchmarks/bench_first_load.py measures the page both ways.
const LIST_FULL = new URLSearchParams(location.search).get("list") === "full";
const LIST_FORMAT = LIST_FULL ? "json" : "markers";
const LIST_STEP = 30;
const WALK_M_PER_MIN = 80;    // 4.8 km/h, as geo.routing walks
const SERVICE_FILTERS = ["twenty_four_hour", "holiday", "extended_hours", "disability_integrated",
  "disability_specialised", "multicultural", "infant_only", "hourly"];
const AGE_GROUPS = ["0", "1", "2", "3", "4", "5", "mixed_infant", "mixed_toddler", "special"];
// Languages a centre may declare for its staff (ISO 639-1); their names come from Intl in the page's language.
const STAFF_LANGUAGES = ["en", "zh", "vi", "ja", "ru", "mn", "uz", "th", "tl", "km", "ne", "id"];
let staleDays = 7;            // DOLBOM_VACANCY_STALE_DAYS, from /map/config

// ----------------------------------------------------------------------------------------------------------
// Language

let lang = "ko";
try {
  const saved = localStorage.getItem("dolbom.lang");
  if (saved && STRINGS[saved]) lang = saved;
} catch (_) { /* storage disabled: stay in Korean */ }

function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.ko[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}
function term(kind, value) { return TERMS[kind]?.[value]?.[lang] ?? value; }
function locale() { return LOCALES[lang]; }
function fmtNumber(n) { return n == null ? "-" : new Intl.NumberFormat(locale()).format(n); }
function fmtDistance(m) {
  if (m == null) return "";
  return m < 1000
    ? new Intl.NumberFormat(locale(), {style: "unit", unit: "meter", maximumFractionDigits: 0}).format(m)
    : new Intl.NumberFormat(locale(), {style: "unit", unit: "kilometer", maximumFractionDigits: 1}).format(m / 1000);
}
function fmtDate(iso) {
  if (!iso) return "-";
  const date = new Date(iso.length === 10 ? `${iso}T00:00:00+09:00` : iso);
  return new Intl.DateTimeFormat(locale(), {dateStyle: "long", timeZone: "Asia/Seoul"}).format(date);
}
function fmtTime(date) {
  return new Intl.DateTimeFormat(locale(), {timeStyle: "short", timeZone: "Asia/Seoul"}).format(date);
}
function dayName(key) {
  if (key === "holiday") return HOLIDAY[lang];
  const monday = new Date(Date.UTC(2026, 2, 2));
  monday.setUTCDate(monday.getUTCDate() + DAY_KEYS.indexOf(key));
  return new Intl.DateTimeFormat(locale(), {weekday: "short", timeZone: "UTC"}).format(monday);
}
function ageLabel(group) {
  return /^\d$/.test(group) ? t("age_n", {n: fmtNumber(Number(group))}) : t(group);
}

function languageName(code) {
  try { return new Intl.DisplayNames([locale()], {type: "language"}).of(code) ?? code; } catch (_) { return code; }
}
// "4개월 전", "4 months ago", "4个月前", "4 tháng trước": the age of a figure in the page's language.
function fmtAgo(iso) {
  const days = (Date.now() - new Date(iso).getTime()) / 86400000;
  const rtf = new Intl.RelativeTimeFormat(locale(), {numeric: "auto"});
  if (days >= 60) return rtf.format(-Math.round(days / 30.44), "month");
  if (days >= 14) return rtf.format(-Math.round(days / 7), "week");
  return rtf.format(-Math.max(1, Math.round(days)), "day");
}

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  for (const input of document.querySelectorAll("#services input")) {
    input.nextElementSibling.textContent = term("service", input.value);
  }
  const typeSelect = document.getElementById("facility-type");
  for (const option of typeSelect.options) option.textContent = option.value ? term("type", option.value) : t("type_any");
  for (const option of document.getElementById("staff-language").options) {
    option.textContent = option.value ? languageName(option.value) : t("language_any");
  }
  setAttribution();
  if (dbDown) showDbDown(true);
  renderHomeInfo();
  renderApplications();
  renderSummary();
  renderList();
  refreshMarkers();
  if (selectedId != null && detailData) renderDetail(detailData);
}

// A development server (DOLBOM_ENV=development: test identity provider, published keys) says so on the page.
async function showEnvironment() {
  try {
    const response = await fetch("/health");
    const health = await response.json();
    document.getElementById("env-banner").hidden = health.environment !== "development";
    document.documentElement.dataset.environment = health.environment;
  } catch (_) { /* health unknown: nothing to say */ }
}

function buildControls() {
  const langSelect = document.getElementById("lang");
  for (const [code, name] of Object.entries(LANGUAGE_NAMES)) {
    const option = new Option(name, code, false, code === lang);
    option.lang = code;
    langSelect.add(option);
  }
  langSelect.addEventListener("change", () => {
    lang = langSelect.value;
    try { localStorage.setItem("dolbom.lang", lang); } catch (_) { /* not remembered */ }
    // The portal's pages (server-rendered) read the language from this cookie.
    document.cookie = `dolbom_lang=${lang}; path=/; max-age=31536000; samesite=lax`;
    applyLanguage();
  });
  const services = document.getElementById("services");
  for (const value of SERVICE_FILTERS) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" name="service" value="${value}"> <span></span>`;
    services.appendChild(label);
  }
  const typeSelect = document.getElementById("facility-type");
  typeSelect.add(new Option("", ""));
  for (const value of Object.keys(TERMS.type)) typeSelect.add(new Option(value, value));
  const languageSelect = document.getElementById("staff-language");
  languageSelect.add(new Option("", ""));
  for (const code of STAFF_LANGUAGES) languageSelect.add(new Option(code, code));
}

async function loadConfig() {
  try {
    const response = await fetch("/map/config");
    if (response.ok) staleDays = (await response.json()).vacancy_stale_days ?? staleDays;
  } catch (_) { /* the default */ }
  refreshMarkers();
  renderList();
}

// The database is down (the API answers 5xx, or nothing): a banner at the top of the map says so, in the page's
// language, instead of an empty map.
let dbDown = false;
function showDbDown(on) {
  dbDown = on;
  const banner = document.getElementById("db-banner");
  banner.textContent = t("db_down");
  banner.hidden = !on;
}

// ----------------------------------------------------------------------------------------------------------
// Map and base map

// Leaflet 1.9.4's map.hasLayer(undefined) throws. markercluster's zoomToShowLayer asks it about a marker's cluster
// at every "moveend" until the marker shows, and a marker removed meanwhile (the markers rebuilt) has none: false.
const leafletHasLayer = L.Map.prototype.hasLayer;
L.Map.include({hasLayer(layer) { return layer != null && leafletHasLayer.call(this, layer); }});

const map = L.map("map", {minZoom: 10, maxZoom: 19}).setView(SEOUL, 12);
map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
// Each source once: the centres and boundaries line of the page (in its language), OSM's when its tiles show. The
// vector layers add none of their own (their TileJSON repeats the same sources).
let attributionShown = null;
function setAttribution() {
  if (attributionShown) map.attributionControl.removeAttribution(attributionShown);
  attributionShown = escapeHtml(t("map_attribution"));
  map.attributionControl.addAttribution(attributionShown);
}
map.createPane("boundaries").style.zIndex = 350;
map.createPane("labels").style.zIndex = 450;
map.getPane("labels").style.pointerEvents = "none";

// Label positions: area-weighted centroids of each 구/동's parts in the tiles loaded at the current zoom.
const labelLayer = L.layerGroup().addTo(map);
const labelParts = new Map();   // "z/layer/key" -> {name, layer, a, x, y}
const seenTiles = new Set();
let labelTimer = null;

function collectLabels(json, coords, layerName) {
  const tileKey = `${coords.z}/${coords.x}/${coords.y}/${layerName}`;
  if (seenTiles.has(tileKey)) return;
  seenTiles.add(tileKey);
  for (const [name, layer] of Object.entries(json.layers || {})) {
    for (const feature of layer.features || []) {
      const props = feature.properties || {};
      const label = props.name ?? props.name_ko ?? props.adm_nm;
      if (!label) continue;
      const key = `${coords.z}/${name}/${props.code ?? props.id ?? label}`;
      const scale = 256 / (layer.extent || 4096);
      let part = labelParts.get(key);
      if (!part) { part = {name: String(label), layer: name, z: coords.z, a: 0, x: 0, y: 0}; labelParts.set(key, part); }
      for (const ring of feature.geometry || []) {
        let a = 0, cx = 0, cy = 0;
        for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          const cross = ring[j].x * ring[i].y - ring[i].x * ring[j].y;
          a += cross; cx += (ring[j].x + ring[i].x) * cross; cy += (ring[j].y + ring[i].y) * cross;
        }
        if (a === 0) continue;
        // Area-weighted centroid in global pixels at zoom z; holes carry the opposite sign and subtract.
        const ag = (a / 2) * scale * scale;
        part.a += ag;
        part.x += ag * coords.x * 256 + (cx / 6) * scale ** 3;
        part.y += ag * coords.y * 256 + (cy / 6) * scale ** 3;
      }
    }
  }
  clearTimeout(labelTimer);
  labelTimer = setTimeout(drawLabels, 150);
}

function drawLabels() {
  labelLayer.clearLayers();
  const z = map.getZoom();
  const wanted = z >= 14 ? "admin_dongs" : "districts";
  for (const part of labelParts.values()) {
    if (part.layer !== wanted || part.z !== z || part.a === 0) continue;
    const point = L.point(part.x / part.a, part.y / part.a);
    const latlng = map.unproject(point, part.z);
    labelLayer.addLayer(L.marker(latlng, {
      pane: "labels", interactive: false, keyboard: false,
      icon: L.divIcon({className: `area-label ${part.layer}`, html: `<span>${escapeHtml(part.name)}</span>`, iconSize: null}),
    }));
  }
}
map.on("zoomend", drawLabels);

const BOUNDARY_STYLES = {
  districts: {weight: 2, color: "#4a4a6a", fill: true, fillColor: "#f4f1e8", fillOpacity: 0.6},
  admin_dongs: {weight: 0.7, color: "#7a7a99", dashArray: "3 3", fill: false},
};

// Scripts the first markers do not need are loaded after them (startTheRest): fewer requests before the first
// markers, which the browser queues six at a time per server.
function loadScript(src) {
  return new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => resolve(true);
    script.onerror = () => resolve(false);
    document.body.appendChild(script);
  });
}
let vectorGridScript = null;
function vectorGridLoaded() {
  vectorGridScript ??= loadScript("/static/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js");
  return vectorGridScript;
}

async function addVectorBase(layerId) {
  let tilejson;
  try {
    const response = await fetch(`/tiles/${layerId}/tilejson.json`);
    if (!response.ok) return false;
    tilejson = await response.json();
  } catch (_) {
    return false;
  }
  await vectorGridLoaded();
  if (!L.VectorGrid) return false;
  const url = new URL(tilejson.tiles?.[0] ?? `/tiles/${layerId}/{z}/{x}/{y}.mvt`, location.href)
    .href.replace(/%7B/g, "{").replace(/%7D/g, "}");
  const styles = {};
  styles[layerId] = BOUNDARY_STYLES[layerId] || {weight: 1, color: "#888"};
  const Labelled = L.VectorGrid.Protobuf.extend({
    _getVectorTilePromise(coords, bounds) {
      return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, coords, bounds).then((json) => {
        collectLabels(json, coords, layerId);
        return json;
      });
    },
  });
  new Labelled(url, {
    pane: "boundaries", rendererFactory: L.canvas.tile, interactive: false, vectorTileLayerStyles: styles,
    maxNativeZoom: tilejson.maxzoom ?? 16, minZoom: tilejson.minzoom ?? 0,
  }).addTo(map);
  return true;
}

function addOnlineOsm() {
  // Only when the tile server answers: offline, the page never waits for (or shows broken) outside tiles.
  const probe = new Image();
  const timer = setTimeout(() => { probe.src = ""; }, 4000);
  probe.onload = () => {
    clearTimeout(timer);
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19,
      attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
    }).addTo(map);
    // Streets and buildings show through the platform's boundaries, whose names stay on top.
    map.getPane("boundaries").classList.add("over-osm");
  };
  probe.onerror = () => clearTimeout(timer);
  probe.src = "https://tile.openstreetmap.org/0/0/0.png";
}

async function setupBaseMap() {
  vectorGridLoaded();  // its download overlaps the TileJSON requests
  const loaded = await Promise.all([addVectorBase("districts"), addVectorBase("admin_dongs")]);
  if (!loaded.some(Boolean)) document.getElementById("basemap-note").hidden = false;
  addOnlineOsm();
}

// ----------------------------------------------------------------------------------------------------------
// Centres

const clusters = L.markerClusterGroup({
  chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 50, disableClusteringAtZoom: 17,
  iconCreateFunction(cluster) {
    const children = cluster.getAllChildMarkers();
    // A marker of the first page, shown before the list is complete, carries its own item.
    // Only current figures count: a cluster of centres whose figures are all stale (or missing) is grey.
    const items = children.map((m) => centres.get(m.options.centreId) ?? m.options.item);
    const current = items.filter((item) => freeOf(item) != null && !isStale(item));
    const share = current.filter((item) => freeOf(item) > 0).length / Math.max(1, current.length);
    const tone = current.length === 0 ? "stale" : share >= 0.5 ? "free" : share > 0 ? "some" : "full";
    return L.divIcon({
      className: `cluster ${tone}`, iconSize: L.point(40, 40),
      html: `<span>${fmtNumber(children.length)}</span>`,
    });
  },
});
// Clusters and markers are not tab stops: 4,000 of them would bury the page. The list is the keyboard path.
L.MarkerCluster.mergeOptions({keyboard: false});
map.addLayer(clusters);

const centres = new Map();    // id -> item from the API (f=json)
const markers = new Map();    // id -> L.Marker
let order = [];               // ids in list order
let home = null;
let homeMarker = null;
let areaLayer = null;
let selectedId = null;
let detailData = null;
let listShown = LIST_STEP;
let lastQueryNote = "";
let loadSeq = 0;
let loadState = "idle";

function chosenAge() {
  const age = document.getElementById("age").value;
  if (age !== "") return age;
  const birth = document.getElementById("birth-date").value;
  if (!birth) return null;
  // 만 나이 class of the current childcare year (from 1 March), as geo.domain computes it.
  const now = new Date();
  const yearStart = now.getMonth() >= 2 ? now.getFullYear() : now.getFullYear() - 1;
  const born = new Date(`${birth}T00:00:00`);
  const cls = yearStart - born.getFullYear() - 1;
  return String(Math.max(0, Math.min(5, cls)));
}

function freeOf(item) {
  if (!item || !item.free_by_age) return null;
  const age = chosenAge();
  return age == null ? item.free_by_age.total ?? null : item.free_by_age[age] ?? null;
}

// Figures older than the staleness limit are not shown as free places one can count on: grey, with their age.
function vacancyAsOf(item) { return item?.vacancy_as_of ?? item?.vacancy_reported_at ?? null; }
function isStale(item) {
  const asOf = vacancyAsOf(item);
  return asOf != null && freeOf(item) != null && Date.now() - new Date(asOf).getTime() > staleDays * 86400000;
}

function toneOf(item) {
  const free = freeOf(item);
  if (free == null) return "unknown";
  if (isStale(item)) return "stale";
  return free > 0 ? "free" : "full";
}

function freeText(item) {
  const free = freeOf(item);
  const text = free == null ? t("unknown") : free > 0 ? t("free", {n: fmtNumber(free)}) : t("full");
  return isStale(item) ? t("stale", {free: text, ago: fmtAgo(vacancyAsOf(item))}) : text;
}

function markerIcon(item) {
  const selected = item.id === selectedId ? " selected" : "";
  // A centre whose point only says which 구/동 it is in gets a hollow, dashed marker (no precise point claimed).
  const approximate = item.location_approximate ? " approximate" : "";
  return L.divIcon({className: `centre ${toneOf(item)}${selected}${approximate}`, iconSize: L.point(16, 16), html: ""});
}

function filterParams() {
  const params = new URLSearchParams();
  const form = document.getElementById("filters");
  for (const input of form.querySelectorAll("input[name=service]:checked")) params.append("service", input.value);
  const type = document.getElementById("facility-type").value;
  if (type) params.set("type", type);
  // A birth date never leaves the page (query strings end up in server and proxy logs and the browser's
  // history): the server is sent only the age class computed from it here.
  const age = chosenAge();
  if (age != null) params.set("age", age);
  if (params.has("age")) {
    params.set("min_free", document.getElementById("only-free").checked ? "1" : "0");
  }
  const language = document.getElementById("staff-language").value;
  if (language) params.set("language", language);
  const openAt = document.getElementById("open-at").value;
  if (openAt) params.set("open_at", openAt);
  if (form.querySelector("input[name=has_bus]").checked) params.set("has_bus", "true");
  return params;
}

function distanceMode() {
  return document.querySelector("input[name=distance]:checked").value;
}

async function fetchPage(url) {
  const response = await fetch(url);
  if (response.status >= 500) throw Object.assign(new Error(String(response.status)), {down: true});
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || body.title || String(response.status));
  return body;
}

// The first page counts every match (count=exact), so that the other pages can be fetched at once. The whole map's
// first page on opening is also asked for by index.html's <link rel="preload"> (the same URL, byte for byte).
function firstPageUrl(url, firstLimit) {
  return `${url.replace(`limit=${PAGE_LIMIT}`, `limit=${firstLimit}`)}&count=exact`;
}

async function fetchAllPages(url, onFirstPage = null, firstLimit = PAGE_LIMIT) {
  const first = await fetchPage(firstPageUrl(url, firstLimit));
  if (onFirstPage) onFirstPage(first.items);
  const items = [...first.items];
  const total = first.numberMatched ?? items.length;
  const offsets = [];
  for (let offset = items.length; offset < total && first.items.length > 0; offset += PAGE_LIMIT) offsets.push(offset);
  const pages = await Promise.all(offsets.map((offset) => fetchPage(`${url}&offset=${offset}`)));
  for (const page of pages) items.push(...page.items);
  return items;
}

async function loadCentres({onFirstMarkers = null} = {}) {
  const seq = ++loadSeq;
  loadState = "loading";
  renderSummary();
  const params = filterParams();
  const mode = home ? distanceMode() : "all";
  lastQueryNote = "";
  let items;
  let area = null;
  try {
    if (mode === "walk") {
      const minutes = Number(document.getElementById("minutes").value);
      const iso = new URLSearchParams(params);
      iso.set("lat", home.lat.toFixed(6)); iso.set("lon", home.lng.toFixed(6));
      iso.set("minutes", String(minutes)); iso.set("mode", "walk");
      const response = await fetch(`/isochrones?${iso}`);
      const body = await response.json();
      if (response.ok) {
        area = body.features[0];
        items = body.features.slice(1).map((f) => ({id: f.id, lon: f.geometry.coordinates[0],
          lat: f.geometry.coordinates[1], ...f.properties}));
      } else if (response.status >= 500) {
        throw Object.assign(new Error(String(response.status)), {down: true});
      } else if (response.status === 409 || response.status === 422) {
        // No road network here: fall back to the straight-line distance walked in that time.
        const radius = minutes * WALK_M_PER_MIN;
        lastQueryNote = t("no_network", {m: fmtNumber(radius)});
        items = await fetchAllPages(radiusUrl(params, home, radius));
      } else {
        throw new Error(body.detail || body.title);
      }
    } else {
      const centre = mode === "radius" ? home : L.latLng(SEOUL);
      const radius = mode === "radius" ? Number(document.getElementById("radius").value) : ALL_RADIUS_M;
      const format = mode === "radius" ? "json" : LIST_FORMAT;
      // The first page's markers show while the other pages load (the list waits for all of them).
      const progressive = mode !== "radius" && !LIST_FULL;
      items = await fetchAllPages(radiusUrl(params, centre, radius, format), (first) => {
        if (seq === loadSeq && markers.size === 0 && progressive) addMarkers(first);
        // After the other pages are asked for (fetchAllPages goes on at once), so that they queue first.
        if (onFirstMarkers) queueMicrotask(onFirstMarkers);
      }, progressive ? FIRST_PAGE_LIMIT : PAGE_LIMIT);
      if (mode === "radius") area = {radius, centre};
    }
  } catch (error) {
    if (seq !== loadSeq) return;
    loadState = "error";
    // A network failure (TypeError) or a 5xx: the service or its database is down.
    const down = error.down || error instanceof TypeError;
    showDbDown(down);
    document.getElementById("summary").textContent = down ? t("db_down") : t("error", {detail: error.message});
    return;
  }
  if (seq !== loadSeq) return;
  showDbDown(false);
  loadState = "done";
  showArea(area);
  centres.clear();
  for (const item of items) centres.set(item.id, item);
  rebuildMarkers();
  listShown = LIST_STEP;
  if (selectedId != null && !centres.has(selectedId)) closeDetail(false);
  renderSummary();
  renderList();
}

function radiusUrl(params, centre, radius, format = "json") {
  const query = new URLSearchParams(params);
  query.set("lat", centre.lat.toFixed(6)); query.set("lon", centre.lng.toFixed(6));
  query.set("radius_m", String(radius)); query.set("f", format); query.set("limit", String(PAGE_LIMIT));
  return `/facilities/radius?${query}`;
}

function showArea(area) {
  if (areaLayer) { map.removeLayer(areaLayer); areaLayer = null; }
  if (!area) return;
  areaLayer = area.type === "Feature"
    ? L.geoJSON(area, {interactive: false, style: {color: "#0969da", weight: 2, fillOpacity: 0.05}})
    : L.circle(area.centre, {radius: area.radius, interactive: false, fill: false, color: "#0969da", weight: 2});
  areaLayer.addTo(map);
}

function rebuildMarkers() {
  clusters.clearLayers();
  markers.clear();
  addMarkers(centres.values());
  // A move to a chosen centre still under way waited for its old marker: move to the new one.
  if (showing !== null && markers.has(showing)) showMarker(showing);
}

// The centre the map is moving to (markercluster's zoomToShowLayer waits for the map's "moveend" with the marker
// it was given; that marker must still be in the cluster group then, or the move throws).
let showing = null;

function showMarker(id) {
  const marker = markers.get(id);
  showing = id;
  clusters.zoomToShowLayer(marker, () => {
    if (showing === id) showing = null;
    if (markers.get(id) === marker) map.panTo(marker.getLatLng());
  });
}

function addMarkers(items) {
  const layers = [];
  for (const item of items) {
    const marker = L.marker([item.lat, item.lon], {
      icon: markerIcon(item), keyboard: false, title: item.name, alt: item.name, centreId: item.id, item,
    });
    marker.on("click", () => selectCentre(item.id, {fromMap: true}));
    markers.set(item.id, marker);
    layers.push(marker);
  }
  clusters.addLayers(layers);
}

function refreshMarkers() {
  for (const [id, marker] of markers) marker.setIcon(markerIcon(centres.get(id)));
  clusters.refreshClusters();
}

function distanceFrom(item) {
  const from = home || map.getCenter();
  return map.distance(from, [item.lat, item.lon]);
}

function renderSummary() {
  const summary = document.getElementById("summary");
  if (loadState === "loading") { summary.textContent = t("loading"); return; }
  if (loadState !== "done") return;
  const inView = order.length;
  summary.textContent = `${t("summary", {n: fmtNumber(centres.size)})} · ${t("summary_in_view", {n: fmtNumber(inView)})}` +
    (lastQueryNote ? ` · ${lastQueryNote}` : "");
}

function renderList() {
  const bounds = map.getBounds();
  order = [...centres.values()]
    .filter((item) => bounds.contains([item.lat, item.lon]))
    .sort((a, b) => distanceFrom(a) - distanceFrom(b))
    .map((item) => item.id);
  const list = document.getElementById("results");
  // Re-rendering must not drop the keyboard focus of a listed centre.
  const focusedId = document.activeElement?.closest?.("#results button")?.dataset.id;
  list.innerHTML = "";
  for (const id of order.slice(0, listShown)) {
    const item = centres.get(id);
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = String(id);
    if (id === selectedId) button.setAttribute("aria-current", "true");
    const distance = home ? ` · ${fmtDistance(distanceFrom(item))}` : "";
    button.innerHTML = `<span class="name">${escapeHtml(item.name)}</span>` +
      `<span class="meta">${escapeHtml(term("type", item.facility_type))}${distance}</span>` +
      `<span class="badge ${toneOf(item)}">${escapeHtml(freeText(item))}</span>`;
    button.addEventListener("click", () => selectCentre(id));
    button.addEventListener("mouseenter", () => highlight(id, true));
    button.addEventListener("mouseleave", () => highlight(id, false));
    button.addEventListener("focus", () => highlight(id, true));
    button.addEventListener("blur", () => highlight(id, false));
    li.appendChild(button);
    list.appendChild(li);
  }
  document.getElementById("more").hidden = order.length <= listShown;
  if (focusedId) (list.querySelector(`button[data-id="${focusedId}"]`) || document.getElementById("results-heading")).focus();
  renderSummary();
}

function highlight(id, on) {
  const icon = markers.get(id)?.getElement();
  if (icon) icon.classList.toggle("hover", on);
}

let listTimer = null;
map.on("moveend", () => {
  clearTimeout(listTimer);
  listTimer = setTimeout(renderList, 100);
});

// ----------------------------------------------------------------------------------------------------------
// Detail

async function selectCentre(id, {fromMap = false} = {}) {
  const previous = selectedId;
  selectedId = id;
  for (const other of [previous, id]) {
    const marker = markers.get(other);
    if (marker && centres.has(other)) marker.setIcon(markerIcon(centres.get(other)));
  }
  const marker = markers.get(id);
  if (marker && !fromMap) showMarker(id);
  for (const button of document.querySelectorAll("#results button[aria-current]")) button.removeAttribute("aria-current");
  document.querySelector(`#results button[data-id="${id}"]`)?.setAttribute("aria-current", "true");
  const response = await fetch(`/facilities/${id}`);
  if (!response.ok || selectedId !== id) return;
  detailData = await response.json();
  renderDetail(detailData);
  loadQueueLengths(detailData.code, id);
  const section = document.getElementById("detail");
  section.hidden = false;
  section.scrollIntoView({block: "nearest"});
  document.getElementById("detail-name").focus();
}

function closeDetail(returnFocus = true) {
  const id = selectedId;
  selectedId = null;
  detailData = null;
  document.getElementById("detail").hidden = true;
  const marker = markers.get(id);
  if (marker && centres.has(id)) marker.setIcon(markerIcon(centres.get(id)));
  const button = document.querySelector(`#results button[data-id="${id}"]`);
  if (button) button.removeAttribute("aria-current");
  if (returnFocus) (button || document.getElementById("results-heading")).focus();
}

function renderDetail(d) {
  document.getElementById("detail-name").textContent = d.name;
  const item = centres.get(d.id);
  // Each row shows its own class group's free places (a mixed class's row its own); the free places by age (badge,
  // filters) also count the mixed class, so they are explained in a note rather than put in the rows.
  const free = d.free_by_class || {};
  const staleFigures = isStale(item || d);
  const groups = AGE_GROUPS.filter((g) => (d.classes_by_age?.[g] ?? 0) > 0 || (d.enrolled_by_age?.[g] ?? 0) > 0);
  const rows = groups
    .map((g) => `<tr><th scope="row">${escapeHtml(ageLabel(g))}</th><td>${fmtNumber(d.classes_by_age?.[g] ?? 0)}</td>` +
      `<td>${fmtNumber(d.places_by_age?.[g] ?? null)}</td><td>${fmtNumber(d.enrolled_by_age?.[g] ?? 0)}</td>` +
      `<td class="${staleFigures ? "stale" : (free[g] ?? 0) > 0 ? "free" : "full"}">${fmtNumber(free[g] ?? null)}</td></tr>`)
    .join("");
  const mixed = groups.some((g) => g.startsWith("mixed_"));
  const staff = Object.entries(d.staff_by_role || {}).filter(([role, n]) => role !== "total" && n > 0)
    .map(([role, n]) => `${escapeHtml(term("staff", role))} ${fmtNumber(n)}`).join(", ");
  const staffTotal = d.staff_by_role?.total ?? d.staff_count;
  const hours = Object.entries(d.opening_hours || {})
    .sort(([a], [b]) => [...DAY_KEYS, "holiday"].indexOf(a) - [...DAY_KEYS, "holiday"].indexOf(b))
    .map(([day, spans]) => `<li>${escapeHtml(dayName(day))}: ${spans.map((s) => escapeHtml(s.join("–"))).join(", ")}</li>`)
    .join("");
  const services = (d.services || []).map((s) => escapeHtml(term("service", s))).join(", ");
  const languages = (d.staff_languages || []).map((code) => escapeHtml(languageName(code))).join(", ");
  const shown = item || d;
  const staleNote = isStale(shown)
    ? `<p class="note stale-note" id="stale-note">${escapeHtml(t("stale_note", {ago: fmtAgo(vacancyAsOf(shown))}))}</p>` : "";
  const mine = applications.filter((a) => a.facility_id === d.id)
    .map((a) => `<li>${escapeHtml(applicationText(a))}</li>`).join("");
  const distance = home ? `<p>${escapeHtml(t("distance_to", {d: fmtDistance(map.distance(home, [d.lat, d.lon]))}))}</p>` : "";
  document.getElementById("detail-body").innerHTML = `
    <p>${escapeHtml(term("type", d.facility_type))} · ${escapeHtml(term("status", d.status))}
      <span class="badge ${toneOf(shown)}">${escapeHtml(freeText(shown))}</span></p>
    ${staleNote}
    ${mine ? `<h3>${escapeHtml(t("my_apps"))}</h3><ul id="detail-my-apps">${mine}</ul>` : ""}
    ${distance}
    <dl>
      <dt>${t("address")}</dt><dd>${escapeHtml(d.address)}</dd>
      <dt>${t("phone")}</dt><dd>${d.phone ? `<a href="tel:${escapeHtml(d.phone)}">${escapeHtml(d.phone)}</a>` : "-"}</dd>
      <dt>${t("services")}</dt><dd>${services || "-"}</dd>
      <dt>${t("staff_languages")}</dt><dd id="detail-languages">${languages || "-"}</dd>
      <dt>${t("queue_lengths")}</dt><dd id="queue-lengths">${queueText(d.code)}</dd>
      <dt>${t("staff")}</dt><dd>${staffTotal != null ? escapeHtml(t("staff_total", {n: fmtNumber(staffTotal)})) : "-"}${staff ? ` (${staff})` : ""}</dd>
      <dt>${t("cctv")}</dt><dd>${d.cctv_count ? escapeHtml(t("cctv_n", {n: fmtNumber(d.cctv_count)})) : t("none")}</dd>
      <dt>${t("bus")}</dt><dd>${d.has_bus ? t("yes") : t("no")}</dd>
      <dt>${t("vacancy_report")}</dt><dd id="vacancy-date">${escapeHtml(fmtDate(d.vacancy_reported_at))}${
        d.live_at ? ` · <strong>${escapeHtml(t("live_update", {time: fmtTime(d.live_at)}))}</strong>` : ""}</dd>
    </dl>
    <p>${escapeHtml(t("capacity", {c: fmtNumber(d.capacity), e: fmtNumber(d.enrolled)}))}</p>
    ${rows ? `<table class="by-age"><caption>${t("by_age")}</caption><thead><tr><th scope="col">${t("age_class")}</th>
      <th scope="col">${t("classes")}</th><th scope="col">${t("places")}</th><th scope="col">${t("enrolled")}</th>
      <th scope="col">${t("free_col")}</th></tr></thead><tbody>${rows}</tbody></table>` : ""}
    ${mixed ? `<p class="note" id="mixed-note">${t("mixed_note")}</p>` : ""}
    ${hours ? `<h3>${t("hours")}</h3><ul class="hours">${hours}</ul>` : ""}
    ${d.location_approximate ? `<p class="note" id="location-note"><em>${t("location_approximate")}</em></p>` : ""}
    ${d.code ? `<p><a id="apply-link" href="/portal/centres/${encodeURIComponent(d.code)}">${escapeHtml(t("apply_link"))}</a></p>` : ""}`;
}

// ----------------------------------------------------------------------------------------------------------
// Public queue lengths of a centre, and the signed-in parent's own applications

const queueLengths = new Map();   // centre code -> {"0": n, ...} (public)

function queueText(code) {
  const byAge = queueLengths.get(code);
  if (byAge == null) return "-";
  const parts = Object.entries(byAge).filter(([, n]) => n > 0)
    .map(([age, n]) => t("queue_age", {age: fmtNumber(Number(age)), n: fmtNumber(n)}));
  return escapeHtml(parts.length ? parts.join(", ") : t("queue_none"));
}

async function loadQueueLengths(code, id) {
  if (!code) return;
  try {
    const response = await fetch(`/map/centres/${encodeURIComponent(code)}/queues`);
    if (!response.ok) return;
    queueLengths.set(code, (await response.json()).by_age);
  } catch (_) { return; }
  if (selectedId === id && detailData) document.getElementById("queue-lengths").innerHTML = queueText(code);
}

let applications = [];            // the signed-in parent's active entries (GET /map/applications)
const applicationLayer = L.layerGroup().addTo(map);

function applicationText(a) {
  const rank = a.status === "offered" ? t("offered") : t("rank_of", {rank: fmtNumber(a.rank), of: fmtNumber(a.of)});
  return t("my_app", {child: a.child_name, age: fmtNumber(a.age_class), rank});
}

async function loadApplications() {
  try {
    const response = await fetch("/map/applications", {credentials: "same-origin", cache: "no-store"});
    if (!response.ok) return;
    applications = (await response.json()).applications || [];
  } catch (_) { return; }
  renderApplications();
}

// Each application is a badge on its centre (its rank, or ✓ for an offer) above the clusters, and a line in the
// panel's "my applications" list that opens the centre.
function renderApplications() {
  applicationLayer.clearLayers();
  const section = document.getElementById("my-apps");
  const list = document.getElementById("my-apps-list");
  list.innerHTML = "";
  section.hidden = applications.length === 0;
  const byCentre = new Map();
  for (const a of applications) {
    if (!byCentre.has(a.facility_id)) byCentre.set(a.facility_id, []);
    byCentre.get(a.facility_id).push(a);
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "my-app";
    button.dataset.id = String(a.facility_id);
    button.innerHTML = `<span class="name">${escapeHtml(a.centre_name)}</span>` +
      `<span class="meta">${escapeHtml(applicationText(a))}</span>`;
    button.addEventListener("click", () => selectCentre(a.facility_id));
    li.appendChild(button);
    list.appendChild(li);
  }
  for (const [, entries] of byCentre) {
    const a = entries[0];
    const label = entries.map((e) => (e.status === "offered" ? "✓" : `${fmtNumber(e.rank)}/${fmtNumber(e.of)}`)).join(" · ");
    const title = `${a.centre_name}: ${entries.map(applicationText).join("; ")}`;
    applicationLayer.addLayer(L.marker([a.lat, a.lon], {
      keyboard: false, title, alt: title, zIndexOffset: 2000,
      icon: L.divIcon({className: `application-badge${entries.some((e) => e.status === "offered") ? " offered" : ""}`,
        iconSize: null, iconAnchor: [-8, 28], html: `<span>${escapeHtml(label)}</span>`}),
    }).on("click", () => selectCentre(a.facility_id, {fromMap: true})));
  }
}

// ----------------------------------------------------------------------------------------------------------
// Live vacancy (Server-Sent Events; the page works the same without the stream)

function onVacancy(event) {
  let data;
  try { data = JSON.parse(event.data); } catch (_) { return; }
  const id = data.facility_id ?? data.id;
  const item = centres.get(id);
  if (!item || !data.free_by_age) return;
  item.free_by_age = data.free_by_age;
  item.vacancy_as_of = data.reported_at ?? new Date().toISOString();  // a live report is fresh
  markers.get(id)?.setIcon(markerIcon(item));
  clusters.refreshClusters(markers.get(id));
  const button = document.querySelector(`#results button[data-id="${id}"] .badge`);
  if (button) { button.className = `badge ${toneOf(item)}`; button.textContent = freeText(item); }
  if (selectedId === id && detailData) {
    // Every column of the class table comes with the event (places, children, free by class and by age).
    for (const key of ["capacity", "enrolled", "free_by_age", "enrolled_by_age", "classes_by_age", "places_by_age",
      "free_by_class"]) {
      if (data[key] != null) detailData[key] = data[key];
    }
    detailData.live_at = new Date();
    if (data.reported_at) detailData.vacancy_reported_at = data.reported_at;
    renderDetail(detailData);
  }
  document.getElementById("live").textContent = t("vacancy_changed", {name: item.name});
}

let vacancyStream = null;

function connectVacancyStream() {
  if (!window.EventSource) return;
  if (vacancyStream) vacancyStream.close();
  const stream = new EventSource("/vacancy/stream");
  vacancyStream = stream;
  stream.addEventListener("vacancy", onVacancy);
  stream.onmessage = onVacancy;
  // A 404 (stream not deployed) closes it for good; network errors let EventSource retry on its own.
  stream.onerror = () => { if (stream.readyState === EventSource.CLOSED) stream.close(); };
}

// ----------------------------------------------------------------------------------------------------------
// Home, place search, location

let homePlace = null;

function renderHomeInfo() {
  const info = document.getElementById("home-info");
  if (!home) { info.textContent = t("home_hint"); return; }
  info.textContent = t("home_at", {place: homePlace || `${home.lat.toFixed(4)}, ${home.lng.toFixed(4)}`});
}

async function setHome(latlng, {keepView = false} = {}) {
  home = L.latLng(latlng);
  if (homeMarker) homeMarker.setLatLng(home);
  else {
    homeMarker = L.marker(home, {keyboard: false, interactive: false, zIndexOffset: 1000,
      icon: L.divIcon({className: "home-marker", iconSize: L.point(22, 22), html: "⌂"})}).addTo(map);
  }
  if (distanceMode() === "all") document.querySelector("input[name=distance][value=radius]").checked = true;
  if (!keepView) map.setView(home, Math.max(map.getZoom(), 15));
  homePlace = null;
  renderHomeInfo();
  const reverse = fetch(`/places/reverse?lat=${home.lat.toFixed(6)}&lon=${home.lng.toFixed(6)}`)
    .then(async (response) => {
      if (!response.ok) return;
      const place = await response.json();
      homePlace = [place.district?.name, place.admin_dong?.name].filter(Boolean).join(" ") || t("outside");
      renderHomeInfo();
    });
  await Promise.all([reverse, loadCentres()]);
}

map.on("click", (event) => setHome(event.latlng, {keepView: true}));
document.getElementById("home-here").addEventListener("click", () => setHome(map.getCenter(), {keepView: true}));

document.getElementById("locate").addEventListener("click", () => {
  if (!navigator.geolocation) {
    document.getElementById("home-info").textContent = t("locate_failed", {reason: "-"});
    return;
  }
  navigator.geolocation.getCurrentPosition(
    (position) => setHome(L.latLng(position.coords.latitude, position.coords.longitude)),
    (error) => { document.getElementById("home-info").textContent = t("locate_failed", {reason: error.message}); },
    {enableHighAccuracy: true, timeout: 10000},
  );
});

const placeInput = document.getElementById("place-q");
const placeResults = document.getElementById("place-results");
let placeTimer = null;
let placeSeq = 0;

async function findPlaces(q) {
  const seq = ++placeSeq;
  if (q.length < 2) { placeResults.innerHTML = ""; return []; }
  let response;
  try {
    response = await fetch(`/places/search?q=${encodeURIComponent(q)}&limit=8`);
  } catch (_) { showDbDown(true); return []; }
  if (response.status >= 500) { showDbDown(true); return []; }
  if (!response.ok || seq !== placeSeq) return [];
  const body = await response.json();
  placeResults.innerHTML = "";
  if (!body.places.length) {
    // Say plainly that nothing was found, and what can be searched.
    const li = document.createElement("li");
    li.className = "search-none";
    li.textContent = t("search_none_help", {q});
    if (/^[가-힣0-9]+역$/.test(q)) li.textContent += ` ${t("search_station")}`;
    placeResults.appendChild(li);
  }
  for (const place of body.places) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = placeLabel(place);
    button.addEventListener("click", () => goToPlace(place));
    li.appendChild(button);
    placeResults.appendChild(li);
  }
  return body.places;
}

function placeLabel(place) {
  const label = lang !== "ko" && place.label_latin ? place.label_latin : place.label;
  return place.source === "interpolated" || place.source === "nearest_on_road" ? `${label} ${t("address_estimated")}` : label;
}

async function goToPlace(place) {
  placeResults.innerHTML = "";
  placeInput.value = placeLabel(place);
  if (place.kind === "facility" && place.facility_id != null) {
    map.setView([place.lat, place.lon], 17);
    if (!centres.has(place.facility_id)) await loadCentres();
    await selectCentre(place.facility_id);
    return;
  }
  if (place.kind === "district" || place.kind === "admin_dong" || place.kind === "legal_dong") {
    if (place.bbox_4326) {
      const [x0, y0, x1, y1] = place.bbox_4326;
      map.fitBounds([[y0, x0], [y1, x1]]);
    } else {
      map.setView([place.lat, place.lon], 15);
    }
    document.getElementById("results-heading").focus();
    return;
  }
  await setHome(L.latLng(place.lat, place.lon));
  homePlace = placeLabel(place);
  renderHomeInfo();
}

placeInput.addEventListener("input", () => {
  clearTimeout(placeTimer);
  placeTimer = setTimeout(() => findPlaces(placeInput.value.trim()), 250);
});
document.getElementById("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearTimeout(placeTimer);
  const places = await findPlaces(placeInput.value.trim());
  const first = placeResults.querySelector("button");
  // One place, or a road-name address (listed first): go there at once.
  if (places.length === 1 || places[0]?.kind === "address") await goToPlace(places[0]);
  else if (first) first.focus();
});

// ----------------------------------------------------------------------------------------------------------
// Filters and wiring

const filtersForm = document.getElementById("filters");
filtersForm.addEventListener("change", (event) => {
  if (event.target.id === "age" && event.target.value !== "") document.getElementById("birth-date").value = "";
  if (event.target.id === "birth-date" && event.target.value) document.getElementById("age").value = "";
  loadCentres();
});
filtersForm.addEventListener("submit", (event) => event.preventDefault());
document.getElementById("more").addEventListener("click", () => {
  const firstNew = listShown;
  listShown += LIST_STEP;
  renderList();
  document.querySelectorAll("#results button")[firstNew]?.focus();
});
document.getElementById("detail-close").addEventListener("click", () => closeDetail());
document.getElementById("detail").addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeDetail();
});

buildControls();
// On a phone the filters start folded so that the map and the list come first.
if (window.matchMedia("(max-width: 720px)").matches) document.getElementById("filters-box").open = false;
applyLanguage();
// The first markers first (benchmarks/bench_first_load.py): their page was asked for by the page's preload and
// is often in already; the page's other requests (base map, settings, applications, live stream) wait for it
// (or its failure) so that they do not queue before it at the server.
const firstPageSettled = loadCentres({onFirstMarkers: () => startTheRest()});
let restStarted = false;
function startTheRest() {
  if (restStarted) return;
  restStarted = true;
  loadScript("/static/bookings.js");  // the care-slot booking (it uses this script's map, home and words)
  showEnvironment();
  setupBaseMap();
  loadConfig();
  loadApplications();
  connectVacancyStream();
}
firstPageSettled.finally(startTheRest);
