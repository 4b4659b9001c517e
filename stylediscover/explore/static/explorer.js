// The explorer page: two panels (left, right) of one export each, sharing samples or an uploaded image.
// Renders are coalesced per panel: at most one request in flight; inputs arriving meanwhile only mark the panel
// dirty, and when the response lands the latest state is sent. window.explorer.stats records, per displayed
// render, the time from the oldest input it shows to the frame after its images were decoded, and the server's
// share of it (milliseconds).
"use strict";

const $ = (id) => document.getElementById(id);
const client = Math.random().toString(36).slice(2) + Date.now().toString(36);
const stats = { latencies: [], server: [], inputs: 0, requests: 0, superseded: 0 };
let config = null;
let source = "samples";
let upload = null;
let uploadPoll = 0;

function message(text, kind = "note", el = $("message")) {
  el.textContent = text;
  el.className = el.className.replace(/\b(error|note)\b/g, "").trim() + " " + kind;
}

// Every POST carries a JSON body as application/json: the server refuses other types (which HTML forms send).
function postJson(url, body) {
  return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

async function readJson(response) {
  if (response.status === 413) {
    return { error: "too large: the server refused it (uploads: at most " + megabytes(config.max_upload) + ")" };
  }
  let data;
  try {
    data = await response.json();
  } catch (e) {
    data = {};
  }
  if (!response.ok && !data.error) data.error = "HTTP " + response.status;
  return data;
}

const megabytes = (bytes) => (bytes / (1 << 20)).toFixed(0) + " MB";

function parseSeeds(text) {
  const seeds = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) throw new Error("seeds: expected numbers like '0, 1, 2, 3' or '0-3', got '" + part + "'");
    for (let s = Number(m[1]); s <= Number(m[2] ?? m[1]); s++) {
      if (seeds.length === 16) throw new Error("seeds: give 1 to 16 seeds");
      seeds.push(s);
    }
  }
  if (seeds.length === 0) throw new Error("seeds: give 1 to 16 seeds");
  return seeds;
}

function samples() {
  return { seeds: parseSeeds($("seeds").value), truncation: Number($("truncation").value) };
}

class Panel {
  constructor(slot) {
    this.slot = slot;
    this.el = $("panel-template").content.firstElementChild.cloneNode(true);
    this.el.id = "panel-" + slot;
    this.el.hidden = true;
    $("panels").appendChild(this.el);
    this.exportId = "";
    this.info = null;
    this.strengths = {};
    this.inputs = new Map();
    this.seq = 0;
    this.inflight = false;
    this.pendingSince = null;
    this.renders = 0;
    this.el.querySelector(".reset").onclick = () => this.reset();
    this.el.querySelector(".download-image").onclick = () => this.download("/api/image", "png");
    this.el.querySelector(".download-recipe").onclick = () => this.download("/api/recipe", "json");
  }

  status(text, kind = "note") {
    message(text, kind, this.el.querySelector(".panel-message"));
  }

  body() {
    const body = { export: this.exportId, strengths: this.strengths, client, panel: this.slot, seq: this.seq };
    if (source === "upload") body.upload = upload;
    else body.samples = samples();
    return body;
  }

  async load(exportId) {
    this.exportId = exportId;
    this.info = null;
    this.strengths = {};
    this.inputs.clear();
    this.el.querySelector(".sliders").replaceChildren();
    this.el.querySelector(".grid").replaceChildren();
    this.el.hidden = !exportId;
    if (!exportId) return;
    this.el.querySelector(".panel-title").textContent = $("export-" + this.slot).selectedOptions[0].textContent;
    this.status("loading…");
    const info = await readJson(await fetch("/api/exports/" + encodeURIComponent(exportId)));
    if (exportId !== this.exportId) return;
    if (info.error) return this.status(info.error, "error");
    this.info = info;
    this.el.querySelector(".panel-title").textContent = info.label + " — " + info.generator;
    this.el.querySelector(".legend").textContent = info.legend;
    for (const d of info.directions) this.el.querySelector(".sliders").appendChild(this.slider(d));
    this.status("");
    this.request(performance.now());
  }

  slider(direction) {
    const el = $("slider-template").content.firstElementChild.cloneNode(true);
    el.classList.add(direction.quality);
    el.dataset.index = direction.index;
    el.dataset.attribute = direction.attribute;
    el.querySelector(".name").textContent = direction.label;
    el.title = "slider: multiples of the recommended strength " + direction.strength.toFixed(3) +
      " (layers " + direction.layers[0] + "–" + direction.layers[1] + ")";
    const input = el.querySelector("input");
    input.setAttribute("aria-label", direction.label);
    input.addEventListener("input", (event) => {
      stats.inputs++;
      this.set(direction.index, Number(input.value), event.timeStamp);
      const twin = $("link").checked && this.twin(direction);
      if (twin) panels[1 - this.slot].set(twin.index, Number(input.value), event.timeStamp);
    });
    this.inputs.set(direction.index, input);
    return el;
  }

  twin(direction) {
    // One to one: the n-th direction of an attribute here (in display order) drives the n-th of the same
    // attribute on the other side, if it has that many.
    const other = panels[1 - this.slot];
    if (!other.info) return null;
    const same = (directions) => directions.filter((d) => d.attribute === direction.attribute);
    return same(other.info.directions)[same(this.info.directions).indexOf(direction)] || null;
  }

  fileName(kind, extension) {
    // edit-<export>-<attribute>x<multiple>+....png: what was edited, readable in a folder of downloads
    const byIndex = new Map(this.info.directions.map((d) => [d.index, d]));
    const edits = Object.entries(this.strengths).map(([k, m]) => byIndex.get(Number(k)).attribute + "x" + m);
    const name = [kind, this.exportId, edits.join("+") || "unedited"].join("-");
    return name.replace(/[^A-Za-z0-9_.+-]/g, "_").slice(0, 180) + "." + extension;
  }

  set(index, multiple, since) {
    const input = this.inputs.get(index);
    input.value = multiple;
    input.nextElementSibling.textContent = "×" + multiple.toFixed(2);
    if (multiple === 0) delete this.strengths[index];
    else this.strengths[index] = multiple;
    this.request(since);
  }

  reset() {
    for (const index of this.inputs.keys()) this.set(index, 0, performance.now());
  }

  request(since) {
    if (!this.info) return;
    if (this.pendingSince === null) this.pendingSince = since;
    if (!this.inflight) this.send();
  }

  async send() {
    const since = this.pendingSince;
    this.pendingSince = null;
    this.inflight = true;
    this.seq++;
    stats.requests++;
    try {
      const body = this.body();
      const data = await readJson(await postJson("/api/render", body));
      if (data.error) this.status(data.error, "error");
      else if (data.superseded) stats.superseded++;
      else {
        await this.show(data.images);
        stats.latencies.push(performance.now() - since);
        stats.server.push(data.ms);
        this.renders++;
        this.el.dataset.renders = this.renders;
        this.status("");
      }
    } catch (error) {
      this.status(error.message.startsWith("seeds") ? error.message : "server unreachable: " + error.message, "error");
    } finally {
      this.inflight = false;
      if (this.pendingSince !== null) this.send();
    }
  }

  async show(uris) {
    const grid = this.el.querySelector(".grid");
    while (grid.children.length > uris.length) grid.lastChild.remove();
    while (grid.children.length < uris.length) grid.appendChild(document.createElement("img"));
    const images = [...grid.children];
    images.forEach((img, i) => { img.src = uris[i]; img.alt = "sample " + i; });
    await Promise.all(images.map((img) => img.decode().catch(() => null)));
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  }

  async download(url, extension) {
    if (!this.info) return;
    const response = await postJson(url, this.body());
    if (!response.ok) return this.status((await readJson(response)).error, "error");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = this.fileName(extension === "png" ? "edit" : "recipe", extension);
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }
}

const panels = [new Panel(0), new Panel(1)];
const renderAll = () => panels.forEach((p) => p.request(performance.now()));

function addOptions(exports) {
  for (const slot of [0, 1]) {
    for (const e of exports) $("export-" + slot).add(new Option(e.label, e.id));
  }
}

async function startUpload(file) {
  if (file.size > config.max_upload) {
    return message(file.name + ": " + (file.size / (1 << 20)).toFixed(1) + " MB is over the " +
      megabytes(config.max_upload) + " upload limit", "error");
  }
  const exports = panels.filter((p) => p.info).map((p) => p.exportId);
  const query = new URLSearchParams({ name: file.name, steps: $("steps").value, exports: exports.join(",") });
  message("uploading " + file.name + "…");
  let data;
  try {
    data = await readJson(await fetch("/api/upload?" + query, {
      method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file }));
  } catch (error) {
    data = { error: file.name + ": the upload failed (" + error.message + ")" };
  }
  if (data.error) return message(data.error, "error");
  upload = null;
  $("source-upload").disabled = true;
  $("target").src = URL.createObjectURL(file);
  $("target").hidden = false;
  $("progress").hidden = false;
  const id = data.upload;
  const poll = ++uploadPoll;
  while (poll === uploadPoll) {
    const status = await readJson(await fetch("/api/upload/" + id));
    if (status.error && status.state === undefined) return message(status.error, "error");
    $("progress").value = status.steps ? status.step / status.steps : 0;
    $("progress-text").textContent = status.state + " " + status.step + "/" + status.steps + " steps";
    if (status.state === "done") {
      upload = id;
      $("source-upload").disabled = false;
      $("source-upload").checked = true;
      source = "upload";
      message(file.name + ": projected" + (status.notes.length ? " (" + status.notes.join("; ") + ")" : ""));
      return renderAll();
    }
    if (status.state === "failed" || status.state === "cancelled") {
      return message(file.name + ": projection " + status.state + (status.error ? ": " + status.error : ""), "error");
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function addExport(path) {
  const response = await postJson("/api/exports", { path });
  const data = await readJson(response);
  if (data.error) return message(data.error, "error");
  addOptions(data.exports);
  message("added " + data.exports.map((e) => e.label).join(", "));
  $("export-1").value = data.exports[0].id;
  panels[1].load(data.exports[0].id);
}

async function main() {
  config = await readJson(await fetch("/api/config"));
  $("steps").value = config.steps;
  $("steps").max = config.max_steps;
  addOptions(config.exports);
  $("export-0").onchange = () => panels[0].load($("export-0").value);
  $("export-1").onchange = () => panels[1].load($("export-1").value);
  $("seeds").onchange = () => {
    try {
      parseSeeds($("seeds").value);
      message("");
      renderAll();
    } catch (error) {
      message(error.message, "error");
    }
  };
  $("truncation").oninput = () => {
    $("truncation-value").textContent = Number($("truncation").value).toFixed(2);
    renderAll();
  };
  $("new-samples").onclick = () => {
    const count = parseSeeds($("seeds").value).length;
    $("seeds").value = Array.from({ length: count }, () => Math.floor(Math.random() * 2 ** 31)).join(", ");
    renderAll();
  };
  for (const radio of document.querySelectorAll("input[name=source]")) {
    radio.onchange = () => { source = radio.value; renderAll(); };
  }
  $("upload").onchange = () => $("upload").files[0] && startUpload($("upload").files[0]);
  $("add-export").onsubmit = (event) => {
    event.preventDefault();
    if ($("add-path").value.trim()) addExport($("add-path").value.trim());
  };
  await panels[0].load($("export-0").value);
}

window.explorer = {
  stats,
  panels,
  idle: () => panels.every((p) => !p.inflight && p.pendingSince === null),
  ready: main().catch((error) => message("cannot start: " + error.message, "error")),
};
