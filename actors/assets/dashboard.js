// The rlcs dashboard: polls /api/state and draws curves (uPlot), the actor tree and
// the latest rollouts. Errors are shown on the page as well as in the console.
"use strict";

const errors = [];
function showError(message) {
  errors.push(String(message));
  const box = document.getElementById("errors");
  if (box) box.textContent = errors.join("\n");
  document.body.dataset.errors = String(errors.length);
}
window.addEventListener("error", (e) => showError(e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason));

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const charts = {};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) {
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Draws (or updates) a line chart: xs and one array per named series.
function lineChart(id, xs, series, xLabel) {
  const box = document.getElementById(id);
  const names = Object.keys(series);
  const key = names.join("|");
  let empty = box.querySelector(".empty");
  if (xs.length === 0 || names.length === 0) {
    if (!empty) box.append(el("div", { class: "empty" }, "no data yet"));
    return 0;
  }
  if (empty) empty.remove();
  const data = [xs, ...names.map((n) => series[n])];
  const old = charts[id];
  if (old && old.key === key) {
    old.plot.setData(data);
  } else {
    if (old) old.plot.destroy();
    const opts = {
      width: Math.max(320, box.clientWidth - 12),
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, {}],
      series: [{ label: xLabel }, ...names.map((n, i) => ({
        label: n, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
      }))],
    };
    charts[id] = { key, plot: new uPlot(opts, data, box) };
  }
  box.dataset.points = String(xs.length);
  return xs.length;
}

function curves(state) {
  const its = state.iterations;
  const xs = its.map((p) => p.iteration);
  const domains = [...new Set(its.flatMap((p) => Object.keys(p.per_domain)))].sort();
  const reward = { all: its.map((p) => p.mean_reward) };
  const accuracy = { all: its.map((p) => p.accuracy) };
  for (const d of domains) {
    reward[d] = its.map((p) => (p.per_domain[d] ? p.per_domain[d][0] : null));
    accuracy[d] = its.map((p) => (p.per_domain[d] ? p.per_domain[d][1] : null));
  }
  const tiers = {};
  for (const t of [...new Set(its.flatMap((p) => Object.keys(p.tier_counts)))]) {
    tiers[t] = its.map((p) => (t in p.tier_counts ? p.tier_counts[t] : null));
  }
  let points = 0;
  points += lineChart("chart-reward", xs, reward, "iteration");
  points += lineChart("chart-accuracy", xs, accuracy, "iteration");
  points += lineChart("chart-tiers", xs, tiers, "iteration");
  points += lineChart("chart-expansion", xs, {
    expansion_ratio_ema: its.map((p) => p.expansion_ratio_ema),
    not_valid_rate: its.map((p) => p.not_valid_rate),
  }, "iteration");
  // Supervised losses: one series per stage over a shared step axis.
  const stages = [...new Set(state.losses.map((l) => l[0]))];
  const steps = [...new Set(state.losses.map((l) => l[1]))].sort((a, b) => a - b);
  const loss = {};
  for (const s of stages) {
    const by = new Map(state.losses.filter((l) => l[0] === s).map((l) => [l[1], l[2]]));
    loss[s] = steps.map((k) => (by.has(k) ? by.get(k) : null));
  }
  points += lineChart("chart-loss", steps, loss, "step");
  return points;
}

function summary(state) {
  const box = document.getElementById("summary");
  box.replaceChildren();
  const add = (k, v) => box.append(el("span", {}, el("b", {}, k + ": "), v));
  add("status", state.status);
  add("stage", state.stage || "—");
  add("iteration", state.iteration);
  add("policy version", state.policy_version);
  if (state.grading) {
    const [graded, total, rate] = state.grading;
    add("graded", `${graded}/${total} (pass ${rate.toFixed(3)})`);
  }
  for (const [label, acc] of state.evals) add(`eval ${label}`, acc.toFixed(3));
  document.getElementById("run").textContent = state.run || "run";
}

function actors(state) {
  const box = document.getElementById("actors");
  const children = new Map();
  for (const a of state.actors) {
    if (!children.has(a.parent)) children.set(a.parent, []);
    children.get(a.parent).push(a);
  }
  const render = (parent) => {
    const list = el("ul", { class: "tree" });
    for (const a of children.get(parent) || []) {
      const workers = a.workers > 1 ? ` ×${a.workers}` : "";
      const item = el("li", {}, a.name + workers,
        el("span", { class: "badge " + a.status }, a.status),
        a.restarts > 0 ? el("span", { class: "badge restarted" }, `${a.restarts} restarts`) : "");
      if (children.has(a.name)) item.append(render(a.name));
      list.append(item);
    }
    return list;
  };
  box.replaceChildren(state.actors.length ? render("") : el("div", { class: "empty" }, "no graph yet"));
  box.dataset.actors = String(state.actors.length);
}

function rollouts(state) {
  const box = document.getElementById("rollouts");
  if (!state.rollouts.length) {
    box.replaceChildren(el("div", { class: "empty" }, "no rollouts yet"));
    return;
  }
  const table = el("table", {}, el("tr", {},
    el("th", {}, "image"), el("th", {}, "iteration"), el("th", {}, "domain"),
    el("th", {}, "score"), el("th", {}, "prompt"), el("th", {}, "response")));
  for (const r of [...state.rollouts].reverse()) {
    const img = r.image_png ? el("img", { src: "data:image/png;base64," + r.image_png, alt: r.domain }) : "";
    const verdict = el("span", { class: r.correct ? "ok" : "bad" }, r.correct ? "correct" : "wrong");
    table.append(el("tr", {},
      el("td", {}, img), el("td", {}, r.iteration), el("td", {}, r.domain),
      el("td", {}, verdict, el("br"), `reward ${r.reward.toFixed(2)}`, el("br"),
        `group ${r.group_correct}/${r.group_size}`),
      el("td", {}, el("pre", {}, r.prompt)), el("td", {}, el("pre", {}, r.response))));
  }
  box.replaceChildren(table);
  box.dataset.rollouts = String(state.rollouts.length);
}

async function refresh() {
  try {
    const response = await fetch("/api/state", { cache: "no-store" });
    if (!response.ok) throw new Error(`/api/state: HTTP ${response.status}`);
    const state = await response.json();
    summary(state);
    const points = curves(state);
    actors(state);
    rollouts(state);
    document.body.dataset.points = String(points);
    document.body.dataset.status = state.status;
    document.body.dataset.ready = "1";
    return state.status;
  } catch (e) {
    showError(e);
    return "error";
  }
}

async function loop() {
  const status = await refresh();
  // A finished run does not change; stop polling it.
  if (status !== "finished") setTimeout(loop, 2000);
}
loop();
