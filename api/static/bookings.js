// dolbom map: bookable holiday / night / 24-hour / hourly care slots near home (GET /bookings/slots).
// Loaded by map.js once the first markers are drawn; uses its map, home, chosenAge(), t(), fmtNumber() and term().
"use strict";

const slotLayer = L.layerGroup().addTo(map);

function slotTime(iso) {
  return new Intl.DateTimeFormat(locale(), {month: "short", day: "numeric", weekday: "short", hour: "2-digit",
                                            minute: "2-digit"}).format(new Date(iso));
}

async function findSlots() {
  const status = document.getElementById("slots-status");
  const list = document.getElementById("slots");
  list.replaceChildren();
  slotLayer.clearLayers();
  const age = chosenAge();
  if (age == null) { status.textContent = t("slots_need_age"); return; }
  const where = home || map.getCenter();
  const params = new URLSearchParams({lat: where.lat.toFixed(6), lon: where.lng.toFixed(6), age, radius_m: "3000"});
  const day = document.getElementById("slots-day").value;
  if (day) params.set("on", day);
  let body;
  try {
    const response = await fetch(`/bookings/slots?${params}`);
    if (!response.ok) throw new Error(String(response.status));
    body = await response.json();
  } catch (_) { status.textContent = t("slots_failed"); return; }
  const features = body.features || [];
  status.textContent = features.length ? t("slots_found", {n: fmtNumber(features.length)}) : t("slots_none");
  for (const feature of features) {
    const p = feature.properties;
    const [lon, lat] = feature.geometry.coordinates;
    const text = `${p.facility_name} · ${term("service", p.service)} · ${slotTime(p.starts_at)}–${slotTime(p.ends_at)}`
      + ` · ${t("slots_free", {n: fmtNumber(p.free_places)})}`;
    const item = document.createElement("li");
    item.className = "slot";
    item.dataset.slotId = String(p.slot_id);
    item.textContent = text;
    list.append(item);
    L.circleMarker([lat, lon], {radius: 9, className: "slot-marker", weight: 3})
      .bindPopup(() => { const el = document.createElement("span"); el.textContent = text; return el; })
      .addTo(slotLayer);
  }
}

document.getElementById("slots-find").addEventListener("click", findSlots);
