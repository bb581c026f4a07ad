// dolbom parents' map: click a home, filter, see centres with free places by age.
"use strict";

const SEOUL = [37.5665, 126.978];
const map = L.map("map").setView(SEOUL, 13);
L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
  maxZoom: 19,
  attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> · 어린이집: 서울 열린데이터광장',
}).addTo(map);

const resultsLayer = L.layerGroup().addTo(map);
let home = null;
let homeMarker = null;
let radiusCircle = null;

const filters = document.getElementById("filters");
const radiusInput = document.getElementById("radius");
const radiusOut = document.getElementById("radius-out");

function filterParams() {
  const params = new URLSearchParams();
  const data = new FormData(filters);
  for (const [key, value] of data.entries()) {
    if (value === "") continue;
    if (key === "facility_type") params.append("type", value);
    else params.append(key, value);
  }
  return params;
}

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function vacancyTable(free) {
  if (!free) return "";
  const ages = ["0", "1", "2", "3", "4", "5"];
  return `<table class="vacancy"><tr><th>만</th>${ages.map((a) => `<th>${a}세</th>`).join("")}</tr>` +
    `<tr><td>여석</td>${ages.map((a) => `<td class="${free[a] > 0 ? "free" : "full"}">${free[a] ?? "-"}</td>`).join("")}</tr></table>`;
}

function popupHtml(p) {
  return `<strong>${escapeHtml(p.name)}</strong><br>${escapeHtml(p.facility_type_ko)} · ${escapeHtml(p.status_ko)}` +
    `<br>${escapeHtml(p.address)}<br>${escapeHtml(p.phone || "")}` +
    `<br>정원 ${p.capacity ?? "-"} · 현원 ${p.enrolled ?? "-"}` +
    (p.distance_m != null ? ` · ${Math.round(p.distance_m)} m` : "") +
    `<br>${(p.services_ko || []).map(escapeHtml).join(", ")}` + vacancyTable(p.free_by_age) +
    (p.geocode_quality !== "source" ? `<br><em>위치: 주소의 동 중심 (좌표 미제공)</em>` : "");
}

async function search() {
  if (!home) return;
  const params = filterParams();
  params.set("lat", home.lat.toFixed(6));
  params.set("lon", home.lng.toFixed(6));
  params.set("limit", "200");
  const response = await fetch(`/facilities/radius?${params}`);
  const body = await response.json();
  const summary = document.getElementById("summary");
  const list = document.getElementById("results");
  resultsLayer.clearLayers();
  list.innerHTML = "";
  if (!response.ok) {
    summary.textContent = body.detail || body.title || "검색 오류";
    return;
  }
  const age = params.get("age");
  summary.textContent = `${body.numberMatched ?? body.features.length}곳 (반경 ${params.get("radius_m")} m)`;
  for (const feature of body.features) {
    const p = feature.properties;
    const [lon, lat] = feature.geometry.coordinates;
    const free = age ? p.free_by_age?.[age] : p.free_by_age?.total;
    const marker = L.circleMarker([lat, lon], {
      radius: 7, weight: 1, color: "#333", fillOpacity: 0.85,
      fillColor: free > 0 ? "#2da44e" : "#cf222e",
    }).bindPopup(popupHtml(p));
    resultsLayer.addLayer(marker);
    const item = document.createElement("li");
    item.innerHTML = `${escapeHtml(p.name)} <span class="${free > 0 ? "free" : "full"}">여석 ${free ?? "-"}</span>` +
      ` · ${Math.round(p.distance_m)} m`;
    item.addEventListener("click", () => { map.setView([lat, lon], 16); marker.openPopup(); });
    list.appendChild(item);
  }
}

async function setHome(latlng) {
  home = latlng;
  if (homeMarker) homeMarker.setLatLng(latlng); else homeMarker = L.marker(latlng).addTo(map);
  const radius = Number(radiusInput.value);
  if (radiusCircle) radiusCircle.setLatLng(latlng).setRadius(radius);
  else radiusCircle = L.circle(latlng, {radius, fill: false, color: "#0969da", weight: 1}).addTo(map);
  const response = await fetch(`/places/reverse?lat=${latlng.lat.toFixed(6)}&lon=${latlng.lng.toFixed(6)}`);
  const info = document.getElementById("home-info");
  if (response.ok) {
    const place = await response.json();
    info.textContent = [place.district?.name, place.admin_dong?.name].filter(Boolean).join(" ") || "서울 밖";
  }
  await search();
}

map.on("click", (event) => setHome(event.latlng));
filters.addEventListener("change", () => {
  radiusOut.textContent = radiusInput.value;
  if (radiusCircle) radiusCircle.setRadius(Number(radiusInput.value));
  search();
});

const placeInput = document.getElementById("place-q");
const placeResults = document.getElementById("place-results");
let placeTimer = null;
placeInput.addEventListener("input", () => {
  clearTimeout(placeTimer);
  placeTimer = setTimeout(async () => {
    placeResults.innerHTML = "";
    const q = placeInput.value.trim();
    if (q.length < 2) return;
    const response = await fetch(`/places/search?q=${encodeURIComponent(q)}`);
    if (!response.ok) return;
    const body = await response.json();
    for (const place of body.places.slice(0, 8)) {
      const li = document.createElement("li");
      li.textContent = place.label;
      li.addEventListener("click", () => {
        placeResults.innerHTML = "";
        if (place.bbox_4326) {
          const [x0, y0, x1, y1] = place.bbox_4326;
          map.fitBounds([[y0, x0], [y1, x1]]);
        } else {
          map.setView([place.lat, place.lon], 16);
        }
        setHome(L.latLng(place.lat, place.lon));
      });
      placeResults.appendChild(li);
    }
  }, 250);
});
document.getElementById("search-form").addEventListener("submit", (event) => event.preventDefault());
