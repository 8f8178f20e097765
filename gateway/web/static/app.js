// The gateway's web page: the jobs list (polled), a job's DAG and steps (live from its event
// stream), PNG figures inline and download links for outputs. No framework and no build step;
// every value from the API goes into the page as text (textContent), never as HTML.
"use strict";

const TOKEN_KEY = "neuromesh-token";
const LIST_POLL_MS = 2000;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const NODE_W = 230, NODE_H = 44, COLUMN_W = 270, ROW_H = 64;

const state = { token: sessionStorage.getItem(TOKEN_KEY) || "", selected: null, job: null,
                stream: null, listTimer: null, cursor: null };

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function headers() {
  return { "Authorization": `Bearer ${state.token}`, "Accept": "application/json" };
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (response.status === 401) {
    setStatus("the token was refused", true);
    throw new Error("unauthenticated");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  return body;
}

function setStatus(text, bad = false) {
  const status = $("token-status");
  status.textContent = text;
  status.className = bad ? "error" : "muted";
}

function percent(fraction) {
  return `${Math.round(100 * (fraction || 0))}%`;
}

function shortId(id) {
  return id.slice(0, 8);
}

// ---------------------------------------------------------------- jobs list

async function refreshJobs() {
  if (!state.token) return;
  try {
    const page = await api("/v1/jobs?limit=50");
    setStatus("signed in");
    renderJobs(page.jobs);
    state.cursor = page.next_cursor;
    $("jobs-more").hidden = !state.cursor;
    $("jobs-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err.message !== "unauthenticated") setStatus(`could not list jobs: ${err.message}`, true);
  }
}

function renderJobs(jobs) {
  const body = $("jobs-body");
  body.replaceChildren(...jobs.map(jobRow));
  $("jobs-empty").hidden = jobs.length > 0;
}

function jobRow(job) {
  const bar = el("progress", { max: "1", value: String(job.progress), id: `progress-${job.id}`,
                               "data-job": job.id });
  const row = el("tr", { "data-job": job.id, "data-state": job.state, class: job.id === state.selected ? "selected" : "" },
    el("td", {}, el("code", { text: shortId(job.id), title: job.id })),
    el("td", {}, el("span", { class: `state ${job.state}`, text: job.state })),
    el("td", {}, bar, " ", el("span", { text: percent(job.progress) })),
    el("td", { text: job.services.join(", ") }),
    el("td", { text: new Date(job.created_at).toLocaleString() }));
  row.addEventListener("click", () => selectJob(job.id));
  return row;
}

async function moreJobs() {
  if (!state.cursor) return;
  const page = await api(`/v1/jobs?limit=50&cursor=${encodeURIComponent(state.cursor)}`);
  $("jobs-body").append(...page.jobs.map(jobRow));
  state.cursor = page.next_cursor;
  $("jobs-more").hidden = !state.cursor;
}

// ---------------------------------------------------------------- one job

async function selectJob(id) {
  state.selected = id;
  location.hash = `job=${id}`;
  for (const row of document.querySelectorAll("#jobs-body tr")) {
    row.classList.toggle("selected", row.dataset.job === id);
  }
  if (state.stream) state.stream.abort();
  $("steps").replaceChildren();
  try {
    renderJob(await api(`/v1/jobs/${id}`));
  } catch (err) {
    setStatus(`could not load job ${shortId(id)}: ${err.message}`, true);
    return;
  }
  if (!TERMINAL.has(state.job.state)) follow(id);
}

// The event stream needs the Authorization header, which EventSource cannot send: read it with fetch.
async function follow(id) {
  const controller = new AbortController();
  state.stream = controller;
  try {
    const response = await fetch(`/v1/jobs/${id}/events`, { headers: { ...headers(), Accept: "text/event-stream" },
                                                            signal: controller.signal });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        handleEvent(block, id);
      }
    }
  } catch (err) {
    if (controller.signal.aborted) return;
    // The stream broke (a gateway restart): fall back to reading the job, and try again.
    setTimeout(() => { if (state.selected === id) selectJob(id); }, 2000);
  }
}

function handleEvent(block, id) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;               // heartbeat
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
  }
  if (!data.length || state.selected !== id) return;
  const payload = JSON.parse(data.join("\n"));
  if (event === "job" || event === "end") {
    renderJob(payload);
    if (event === "end") refreshJobs();
  } else if (event === "step" && state.job) {
    const steps = state.job.steps.map((s) => (s.id === payload.step.id ? payload.step : s));
    const done = steps.filter((s) => s.state === "succeeded").length
      + steps.filter((s) => s.state === "running").reduce((sum, s) => sum + (s.progress || 0), 0);
    renderJob({ ...state.job, steps, progress: steps.length ? done / steps.length : 0 });
  }
}

function renderJob(job) {
  state.job = job;
  $("job-detail").hidden = false;
  $("job-id").textContent = job.id;
  const badge = $("job-state");
  badge.textContent = job.state;
  badge.className = `state ${job.state}`;
  $("job-progress").value = job.progress;
  $("job-progress-text").textContent = percent(job.progress);
  $("job-cancel").hidden = TERMINAL.has(job.state) || job.state === "cancelling";
  const error = $("job-error");
  error.hidden = !job.error || job.state === "succeeded";
  error.textContent = job.error ? `${job.error.code}: ${job.error.message}` : "";
  const row = document.querySelector(`#jobs-body tr[data-job="${job.id}"]`);
  if (row) {
    row.dataset.state = job.state;
    row.querySelector(".state").textContent = job.state;
    row.querySelector(".state").className = `state ${job.state}`;
    row.querySelector("progress").value = job.progress;
    row.querySelector("td:nth-child(3) span").textContent = percent(job.progress);
  }
  renderDag(job.steps);
  for (const step of job.steps) renderStep(step);
}

function depths(steps) {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const memo = new Map();
  const depth = (id, seen = new Set()) => {
    if (memo.has(id)) return memo.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const ups = (byId.get(id)?.depends_on || []).filter((u) => byId.has(u));
    const d = ups.length ? 1 + Math.max(...ups.map((u) => depth(u, seen))) : 0;
    memo.set(id, d);
    return d;
  };
  steps.forEach((s) => depth(s.id));
  return memo;
}

function renderDag(steps) {
  const dag = $("dag");
  const depth = depths(steps);
  const columns = new Map();
  const position = new Map();
  for (const step of steps) {
    const d = depth.get(step.id) || 0;
    const row = columns.get(d) || 0;
    columns.set(d, row + 1);
    position.set(step.id, { x: 12 + d * COLUMN_W, y: 12 + row * ROW_H });
  }
  const width = 24 + Math.max(1, columns.size) * COLUMN_W;
  const height = 24 + Math.max(1, ...columns.values()) * ROW_H;
  dag.setAttribute("viewBox", `0 0 ${width} ${height}`);
  dag.setAttribute("preserveAspectRatio", "xMinYMin meet");
  dag.style.height = `${height}px`;
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7",
                                 markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#6b7280" }));
  defs.append(marker);
  const parts = [defs];
  for (const step of steps) {
    const to = position.get(step.id);
    for (const up of step.depends_on) {
      const from = position.get(up);
      if (!from) continue;
      const [x1, y1, x2, y2] = [from.x + NODE_W, from.y + NODE_H / 2, to.x, to.y + NODE_H / 2];
      parts.push(svg("path", { class: "edge", d: `M ${x1} ${y1} C ${x1 + 20} ${y1}, ${x2 - 20} ${y2}, ${x2} ${y2}` }));
    }
  }
  const colors = getComputedStyle(document.documentElement);
  for (const step of steps) {
    const { x, y } = position.get(step.id);
    const group = svg("g", { class: "node", "data-step": step.id, "data-state": step.state,
                             transform: `translate(${x} ${y})` });
    const rect = svg("rect", { width: String(NODE_W), height: String(NODE_H), stroke: colors.getPropertyValue(`--${step.state}`) || "#999" });
    const title = svg("text", { x: "8", y: "17" });
    title.textContent = step.id;
    const detail = svg("text", { x: "8", y: "34" });
    detail.textContent = `${step.service}.${step.method} · ${step.state}`
      + (step.state === "running" ? ` ${percent(step.progress)}` : "");
    group.append(rect, title, detail);
    parts.push(group);
  }
  dag.replaceChildren(...parts);
}

function renderStep(step) {
  let box = document.getElementById(`step-${step.id}`);
  if (!box) {
    box = el("div", { class: "step", id: `step-${step.id}` },
      el("header", {}, el("strong", { text: step.id }), el("code", { text: `${step.service}.${step.method}` }),
         el("span", { class: "state" }), el("progress", { max: "1", value: "0", class: "step-progress" }),
         el("span", { class: "percent" })),
      el("div", { class: "message" }), el("div", { class: "error" }), el("div", { class: "outputs" }));
    $("steps").append(box);
  }
  box.dataset.state = step.state;
  const badge = box.querySelector(".state");
  badge.textContent = step.reused ? `${step.state} (reused)` : step.state;
  badge.className = `state ${step.state}`;
  box.querySelector(".step-progress").value = step.progress || 0;
  box.querySelector(".percent").textContent = percent(step.progress);
  box.querySelector(".message").textContent = step.state === "running" ? step.progress_message || "" : "";
  box.querySelector(".error").textContent = step.error && step.state !== "running"
    ? `${step.error.code}: ${step.error.message}` : "";
  renderOutputs(box.querySelector(".outputs"), step.outputs || {});
}

// Outputs are drawn once per set of contents (presigned URLs change on every read; images must not reload).
function renderOutputs(container, outputs) {
  const names = Object.keys(outputs).sort();
  const signature = names.map((n) => `${n}:${outputs[n].sha256}`).join("|");
  if (container.dataset.signature === signature) return;
  container.dataset.signature = signature;
  const figures = [];
  const links = el("ul");
  for (const name of names) {
    const out = outputs[name];
    if (out.download_url && out.media_type === "image/png") {
      figures.push(el("figure", {}, el("img", { class: "figure", src: out.download_url, alt: name, "data-output": name }),
                      el("figcaption", { text: name })));
    }
    const label = `${name} (${out.media_type}${out.shape ? `, ${out.shape.join("×")} ${out.dtype}` : ""})`;
    links.append(el("li", {}, out.download_url
      ? el("a", { href: out.download_url, class: "download", "data-output": name, text: label, rel: "noopener" })
      : el("span", { text: `${label}: ${out.uri}` })));
  }
  container.replaceChildren(...figures, ...(names.length ? [links] : []));
}

async function cancelSelected() {
  if (!state.selected) return;
  try {
    renderJob(await api(`/v1/jobs/${state.selected}:cancel`, { method: "POST" }));
  } catch (err) {
    setStatus(`could not cancel: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------- start

function useToken(token) {
  state.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
  $("token-input").value = "";
  clearInterval(state.listTimer);
  if (!token) {
    setStatus("no token");
    renderJobs([]);
    return;
  }
  refreshJobs();
  state.listTimer = setInterval(refreshJobs, LIST_POLL_MS);
  const wanted = /job=([0-9a-f-]{36})/.exec(location.hash);
  if (wanted) selectJob(wanted[1]);
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  useToken($("token-input").value.trim());
});
$("token-forget").addEventListener("click", () => useToken(""));
$("job-cancel").addEventListener("click", cancelSelected);
$("jobs-more").addEventListener("click", moreJobs);
useToken(state.token);
