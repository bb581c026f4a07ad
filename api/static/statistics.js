// dolbom 보육통계: one statistics table at a time, as a chart (Vega-Lite, rendered without eval through
// vega-interpreter, so the page keeps script-src 'self') and the same figures as an accessible table.
"use strict";

const WORDS = {
  ko: {
    home: "돌봄", title: "보육통계", skip: "통계표로 건너뛰기", language: "언어", table: "통계표", level: "단위",
    level_city: "시도", level_sigungu: "구", level_dong: "행정동", district: "구", all: "전체",
    intro: "서울 어린이집의 공개 자료와 실시간 보고로 계산한 통계입니다. 모든 그래프 옆에 같은 수치의 표가 있고, 표는 CSV와 XLSX로 내려받을 수 있습니다.",
    csv: "CSV 내려받기", xlsx: "XLSX 내려받기", chart_caption: "그래프의 수치는 아래 표와 같습니다.",
    source: "자료: 서울 열린데이터광장 OA-20300 (공공누리 제1유형), 어린이집의 실시간 보고, 돌봄 입소대기·예약 기록.",
    loading: "불러오는 중…", rows: "{n}행", empty: "이 조건에 해당하는 자료가 없습니다.", failed: "통계를 불러오지 못했습니다: {detail}",
    chart_label: "{title} 그래프 (수치는 아래 표)", dong_needs_district: "행정동 단위는 구를 하나 고르면 보기 쉽습니다.",
  },
  en: {
    home: "dolbom", title: "Childcare statistics", skip: "Skip to the table", language: "Language", table: "Table",
    level: "Area", level_city: "Province", level_sigungu: "District (gu)", level_dong: "Dong", district: "District",
    all: "All", intro: "Statistics computed from Seoul's public childcare data and the centres' live reports. Every chart has a table of the same figures beside it; tables download as CSV and XLSX.",
    csv: "Download CSV", xlsx: "Download XLSX", chart_caption: "The chart's figures are in the table below.",
    source: "Sources: Seoul Open Data OA-20300 (KOGL Type 1), the centres' live reports, dolbom's waitlist and booking records.",
    loading: "Loading…", rows: "{n} rows", empty: "No data for these choices.", failed: "Could not load the statistics: {detail}",
    chart_label: "Chart of {title} (figures in the table below)", dong_needs_district: "Dong level reads best for one district.",
  },
};
let lang = ["ko", "en"].includes(localStorage.getItem("dolbom.lang")) ? localStorage.getItem("dolbom.lang") : "ko";
const $ = (id) => document.getElementById(id);
const t = (key, vars = {}) => (WORDS[lang][key] ?? WORDS.ko[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");
const locale = () => (lang === "en" ? "en" : "ko-KR");

function applyWords() {
  document.documentElement.lang = lang;
  document.title = `${t("home")} · ${t("title")}`;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

function query() {
  const p = new URLSearchParams({level: $("level").value, lang});
  if ($("district").value) p.set("district", $("district").value);
  return p;
}

async function getJSON(url) {
  const response = await fetch(url, {headers: {Accept: "application/json"}});
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

async function loadIndex() {
  const index = await getJSON(`/statistics?lang=${lang}`);
  const select = $("table");
  const chosen = select.value || new URLSearchParams(location.search).get("table") || "places";
  select.replaceChildren(...index.tables.map((d) => new Option(d.title, d.id, false, d.id === chosen)));
  select.dataset.levels = JSON.stringify(Object.fromEntries(index.tables.map((d) => [d.id, d.levels])));
}

async function loadDistricts() {
  const table = await getJSON(`/statistics/equipment?level=sigungu&lang=${lang}`);
  const select = $("district");
  const chosen = select.value;
  select.replaceChildren(new Option(t("all"), ""),
    ...table.rows.map((r) => new Option(r.district_name || r.district_code, r.district_code, false, r.district_code === chosen)));
}

function cell(column, value, names) {
  const td = document.createElement("td");
  if (value === null || value === undefined) { td.textContent = "–"; return td; }
  if (["count", "sum", "percent", "days"].includes(column.kind)) {
    td.className = "num";
    td.textContent = Number(value).toLocaleString(locale());
  } else {
    td.textContent = names[column.name]?.[value] ?? value;
  }
  return td;
}

function renderTable(table) {
  const el = $("data");
  const caption = document.createElement("caption");
  caption.className = "visually-hidden";
  caption.textContent = table.title;
  const head = document.createElement("thead");
  const tr = document.createElement("tr");
  for (const c of table.columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c.label;
    if (c.kind !== "key" && c.kind !== "date") th.className = "num";
    tr.append(th);
  }
  head.append(tr);
  const body = document.createElement("tbody");
  for (const row of table.rows) {
    const r = document.createElement("tr");
    for (const c of table.columns) r.append(cell(c, row[c.name], table.value_names));
    body.append(r);
  }
  el.replaceChildren(caption, head, body);
}

async function renderChart(id, params) {
  const chart = $("chart");
  chart.setAttribute("aria-label", t("chart_label", {title: $("table-title").textContent}));
  const spec = await getJSON(`/statistics/${id}/chart?${params}`);
  await vegaEmbed(chart, spec, {
    renderer: "svg", actions: false, defaultStyle: false, ast: true,
    tooltip: {disableDefaultStyle: true},  // its style lives in statistics.css (no inline <style> under our CSP)
    expr: vegaInterpreter.expressionInterpreter,
  });
}

async function show() {
  const id = $("table").value;
  const levels = JSON.parse($("table").dataset.levels || "{}")[id] || ["city", "sigungu", "dong"];
  for (const option of $("level").options) option.disabled = !levels.includes(option.value);
  if (!levels.includes($("level").value)) $("level").value = "sigungu";
  const params = query();
  $("status").textContent = t("loading");
  try {
    const table = await getJSON(`/statistics/${id}?${params}`);
    $("table-title").textContent = table.title;
    $("table-about").textContent = table.about;
    $("csv").href = `/statistics/${id}?${params}&format=csv`;
    $("xlsx").href = `/statistics/${id}?${params}&format=xlsx`;
    renderTable(table);
    const hint = $("level").value === "dong" && !$("district").value ? ` ${t("dong_needs_district")}` : "";
    $("status").textContent = (table.rows.length ? t("rows", {n: table.rows.length.toLocaleString(locale())}) : t("empty")) + hint;
    history.replaceState(null, "", `?table=${id}&${params}`);
    await renderChart(id, params);
  } catch (error) {
    $("status").textContent = t("failed", {detail: error.message});
  }
}

async function start() {
  const p = new URLSearchParams(location.search);
  if (p.get("lang") && WORDS[p.get("lang")]) lang = p.get("lang");
  if (p.get("level")) $("level").value = p.get("level");
  const langSelect = $("lang");
  for (const [code, name] of [["ko", "한국어"], ["en", "English"]]) {
    const option = new Option(name, code, false, code === lang);
    option.lang = code;
    langSelect.append(option);
  }
  langSelect.addEventListener("change", async () => {
    lang = langSelect.value;
    localStorage.setItem("dolbom.lang", lang);
    applyWords();
    await Promise.all([loadIndex(), loadDistricts()]);
    await show();
  });
  applyWords();
  await Promise.all([loadIndex(), loadDistricts()]);
  if (p.get("district")) $("district").value = p.get("district");
  for (const id of ["table", "level", "district"]) $(id).addEventListener("change", show);
  $("controls").addEventListener("submit", (event) => event.preventDefault());
  await show();
}

document.addEventListener("DOMContentLoaded", start);
