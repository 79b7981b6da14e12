// The vae-serve demo: samples, a drawing canvas, interpolation, and a 2-D latent pad.
// Plain browser JavaScript, no build step; every call goes to this server's JSON API.
// What the page shows follows the model's contract (GET /model): image size and channels,
// class names, and whether it is the MNIST digit model (preprocessor "digit"); the HTML
// holds the digit model's texts, and `data-generic*` attributes the texts for any other.
"use strict";

const $ = (id) => document.getElementById(id);
const RANGE = 3; // latent axis shown: -RANGE .. RANGE
const CANVAS_SIDE = 280; // longest side of the drawing canvas, in canvas pixels (10x MNIST)
const MNIST_CONTRACT = { image_shape: [1, 28, 28], classes: [], preprocessor: "digit" };
const state = {
  latentDim: 0,
  capabilities: [],
  contract: MNIST_CONTRACT, // until GET /model answers
  selected: null,
  a: null,
  b: null,
};
const isDigitModel = () => state.contract.preprocessor === "digit";
const KEY_STORE = "vae-serve-api-key"; // sessionStorage: the key lives as long as the tab

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

// ---------- API and messages ----------

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...options.headers };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers["X-API-Key"] = key;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch {
    throw new ApiError(0, "unreachable", "The service cannot be reached. Is it running?");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, body?.error ?? "http_error", body?.detail ?? response.statusText);
  }
  return body;
}

function postJSON(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

function explain(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
  if (error.status === 401) {
    return sessionStorage.getItem(KEY_STORE)
      ? "The service did not accept this API key. Please check it."
      : "This service requires an API key: please enter it below.";
  }
  if (error.status === 503) return "The service is busy or still starting. Please try again in a moment.";
  if (error.status === 0) return error.message;
  return `The service could not do that: ${error.message} (${error.code}).`;
}

function showError(error) {
  const box = $("message");
  box.textContent = explain(error);
  box.hidden = false;
  $("key-form").hidden = error.status !== 401;
}

function clearError() {
  $("message").hidden = true;
  $("key-form").hidden = true;
}

/** Run an async action, showing any error in the message area instead of throwing. */
async function guarded(action) {
  try {
    const result = await action();
    clearError();
    return result;
  } catch (error) {
    showError(error);
    return undefined;
  }
}

const pngSrc = (base64) => `data:image/png;base64,${base64}`;

function digitImage(src, alt) {
  const img = document.createElement("img");
  img.className = "digit";
  img.src = src;
  img.alt = alt;
  return img;
}

// ---------- selection (a latent vector with its picture) ----------

function select(z, src, label) {
  state.selected = { z, src, label };
  $("selected").src = src;
  $("selected-label").textContent = label;
  $("use-a").disabled = $("use-b").disabled = false;
  resetPad();
}

function useAs(which) {
  if (!state.selected) return;
  state[which] = state.selected;
  $(`end-${which}`).src = state.selected.src;
  interpolate();
}

// ---------- samples ----------

async function loadSamples(event) {
  event?.preventDefault();
  const given = $("seed").value.trim();
  const seed = given === "" ? Math.floor(Math.random() * 1e9) : Number(given); // JS-safe integers
  const temperature = $("temperature").value;
  const name = $("class-choice").hidden ? "" : $("sample-class").value;
  const chosen = name ? `&class=${encodeURIComponent(name)}` : "";
  const query = `n=16&format=json&seed=${seed}&temperature=${temperature}${chosen}`;
  const data = await guarded(() => api(`/sample?${query}`));
  if (!data) return;
  const grid = $("sample-grid");
  grid.replaceChildren(
    ...data.images.map((png, i) => {
      const img = digitImage(pngSrc(png), `sample ${i + 1}`);
      img.tabIndex = 0;
      const pick = () => {
        grid.querySelectorAll(".chosen").forEach((el) => el.classList.remove("chosen"));
        img.classList.add("chosen");
        select(data.z[i], img.src, `sample ${i + 1}`);
      };
      img.addEventListener("click", pick);
      img.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && pick());
      return img;
    }),
  );
  const which = name ? `, ${isDigitModel() ? "digit" : "class"} ${name}` : "";
  $("sample-note").textContent = `Seed ${data.seed}, temperature ${temperature}${which}. Click an image to select it.`;
}

// ---------- drawing ----------

const MIN_STROKE = 4; // canvas pixels the pen must travel before a touch counts as a stroke

/** Paint the canvas black: the background of a drawing (a transparent one would be laid
 * over white by the service). */
function blankCanvas() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

/** Give the canvas the model's aspect ratio, a whole number of canvas pixels per model
 * pixel (280x280 for MNIST's 28x28), and blank it if its size changed. */
function sizeCanvas(height, width) {
  const canvas = $("canvas");
  const scale = Math.max(1, Math.floor(CANVAS_SIDE / Math.max(height, width)));
  if (canvas.width === width * scale && canvas.height === height * scale) return;
  canvas.width = width * scale; // resets the canvas to transparent
  canvas.height = height * scale;
  canvas.style.aspectRatio = `${width} / ${height}`;
  blankCanvas();
}

function setUpCanvas() {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  let drawing = false;
  let start = null; // where the pen went down; nothing is drawn until it moves
  let inked = false; // the canvas holds a stroke
  const clear = () => {
    blankCanvas();
    inked = false;
  };
  const point = (e) => {
    const rect = canvas.getBoundingClientRect();
    return [
      ((e.clientX - rect.left) * canvas.width) / rect.width,
      ((e.clientY - rect.top) * canvas.height) / rect.height,
    ];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    start = point(e);
    ctx.strokeStyle = state.contract.image_shape[0] === 3 ? $("pen-colour").value : "#fff";
    ctx.lineWidth = Math.max(canvas.width, canvas.height) / 14; // 2 pixels of a 28x28 model
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...start);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = point(e);
    if (start && Math.hypot(x - start[0], y - start[1]) < MIN_STROKE) return; // a tap, so far
    start = null;
    inked = true;
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const finish = () => {
    if (!drawing) return;
    drawing = false;
    // A tap without a stroke sends nothing: an empty canvas is no drawing.
    if (start === null && inked) describe(canvasBlob(canvas), `your ${isDigitModel() ? "digit" : "drawing"}`);
    start = null;
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  $("clear").addEventListener("click", () => {
    clear();
    clearResults();
  });
  clear();
  for (const id of ["upload", "camera"]) {
    $(id).addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (!file) return;
      $("upload-name").textContent = file.name;
      describe(file, file.name);
      e.target.value = ""; // the same file may be chosen again
    });
  }
}

/** The canvas as a PNG Blob, synchronously. canvas.toBlob's callback was seen ~1 s after
 * the pen lifted (issue 16; Chromium may encode it on an idle task); toDataURL takes ~1 ms
 * and does not wait for the page to be idle. */
function canvasBlob(canvas) {
  const base64 = canvas.toDataURL("image/png").split(",")[1];
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: "image/png" });
}

function clearResults() {
  $("input-image").removeAttribute("src");
  $("reconstruction").removeAttribute("src");
  $("bars").replaceChildren();
  $("kl").textContent = "";
  $("no-digit").hidden = true;
  $("verdict").hidden = true;
}

/** A model input, values in [0, 1] as the service sends pixel arrays, (H, W) grey or
 * (H, W, 3) RGB, as a PNG data URL of H x W pixels. */
function pixelsToSrc(pixels) {
  const height = pixels.length;
  const width = pixels[0].length;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  pixels.flat().forEach((v, i) => {
    const [r, g, b] = (Array.isArray(v) ? v : [v, v, v]).map((c) => Math.round(c * 255));
    image.data.set([r, g, b, 255], i * 4);
  });
  ctx.putImageData(image, 0, 0);
  return canvas.toDataURL("image/png");
}

function imageForm(blob) {
  const data = new FormData();
  data.append("file", blob, blob.name ?? "digit.png");
  return data;
}

/** What the service makes of one image, in one request: the H x W input the encoder saw,
 * the reconstruction, and mu and sigma of q(z|x). */
async function reconstruction(blob) {
  const data = await api("/reconstruct?format=json", { method: "POST", body: imageForm(blob) });
  return { input: data.inputs[0], image: data.images[0], mu: data.mu[0], sigma: data.sigma[0] };
}

/** POST an image to an optional capability (/classify, /score); null when this model file
 * lacks it (501 not_supported, or 404 from a service that predates the route). */
async function optional(path, blob) {
  try {
    return await api(path, { method: "POST", body: imageForm(blob) });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 501 || error.status === 404)) return null;
    throw error;
  }
}

/** Encode a drawing or an uploaded photo and show everything the service says about it. */
async function describe(blob, label) {
  try {
    const [result, classified, scored] = await Promise.all([
      reconstruction(blob),
      state.capabilities.includes("classify") ? optional("/classify", blob) : null,
      state.capabilities.includes("score") ? optional("/score", blob) : null,
    ]);
    clearError();
    $("no-digit").hidden = true;
    $("input-image").src = pixelsToSrc(result.input);
    $("reconstruction").src = pngSrc(result.image);
    showBars(result.mu, result.sigma);
    showVerdict(classified, scored);
    select(result.mu, $("reconstruction").src, label);
  } catch (error) {
    if (error instanceof ApiError && error.code === "no_digit") {
      clearResults();
      const reason = error.message.replace(/^no digit found: /, "");
      $("no-digit").textContent = `${isDigitModel() ? "No digit found" : "Nothing to encode"}: ${reason}.`;
      $("no-digit").hidden = false;
      clearError();
      return;
    }
    showError(error);
  }
}

/** The name of class `index` in the contract (the index itself if the card names none). */
const classLabel = (index) => state.contract.classes[index] ?? String(index);

/** The predicted class with its probabilities; the percentiles of the likelihood and of the
 * out-of-distribution score, which decides "typical". */
function showVerdict(classified, scored) {
  $("classify-panel").hidden = !classified;
  $("score-panel").hidden = !scored;
  $("verdict").hidden = !classified && !scored;
  $("kl").textContent = scored ? `KL ${scored.kl.toFixed(1)} nats` : "";
  if (classified) {
    $("predicted").textContent = classLabel(classified.digit); // `digit`: the class index
    $("probabilities").replaceChildren(
      ...classified.probabilities.map((p, index) => {
        const row = document.createElement("div");
        row.className = "probability" + (index === classified.digit ? " best" : "");
        row.title = `${classLabel(index)}: ${(100 * p).toFixed(1)} %`;
        const bar = document.createElement("span");
        bar.className = "fill";
        bar.style.height = `${Math.max(2, 100 * p)}%`;
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = classLabel(index);
        row.append(bar, name);
        return row;
      }),
    );
  }
  if (scored) {
    const share = scored.percentile;
    const others = isDigitModel() ? "real MNIST test digits" : "its held-out test images";
    $("typicality").textContent =
      `More likely under the model than ${share.toFixed(1)} % of ${others} ` +
      `(log-likelihood ${scored.log_likelihood.toFixed(1)} nats); ` +
      (scored.typical
        ? `typical: more typical than ${scored.ood_percentile.toFixed(1)} % of held-out images.`
        : `unusual: it looks less like the training images than ` +
          `${(100 - scored.ood_percentile).toFixed(1)} % of held-out images.`);
  }
}

/** One row per dimension: the band mu ± sigma and a marker at mu, on the axis -3..3. */
function showBars(mu, sigma) {
  const percent = (v) => `${((Math.max(-RANGE, Math.min(RANGE, v)) + RANGE) / (2 * RANGE)) * 100}%`;
  $("bars").replaceChildren(
    ...mu.map((m, i) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.title = `z${i}: μ = ${m.toFixed(2)}, σ = ${sigma[i].toFixed(2)}`;
      const label = document.createElement("span");
      label.textContent = `z${i}`;
      const track = document.createElement("span");
      track.className = "track";
      const band = document.createElement("span");
      band.className = "band";
      band.style.left = percent(m - sigma[i]);
      band.style.right = `calc(100% - ${percent(m + sigma[i])})`;
      const marker = document.createElement("span");
      marker.className = "marker";
      marker.style.left = percent(m);
      track.append(band, marker);
      row.append(label, track);
      return row;
    }),
  );
}

// ---------- interpolation ----------

async function interpolate() {
  if (!state.a || !state.b) return;
  const steps = Number($("steps").value);
  const data = await guarded(() =>
    postJSON(`/interpolate?format=json&steps=${steps}`, { z_start: state.a.z, z_end: state.b.z }),
  );
  if (!data) return;
  $("strip").replaceChildren(...data.images.map((png, i) => digitImage(pngSrc(png), `step ${i + 1}`)));
}

// ---------- 2-D latent pad ----------

const pad = { x: 0, y: 0, busy: false, pending: false };

function baseLatent() {
  return state.selected ? [...state.selected.z] : new Array(state.latentDim).fill(0);
}

function resetPad() {
  const z = baseLatent();
  movePad(z[Number($("dim-x").value)] ?? 0, z[Number($("dim-y").value)] ?? 0);
}

function movePad(x, y) {
  pad.x = Math.max(-RANGE, Math.min(RANGE, x));
  pad.y = Math.max(-RANGE, Math.min(RANGE, y));
  const handle = $("pad-handle");
  handle.style.left = `${((pad.x + RANGE) / (2 * RANGE)) * 100}%`;
  handle.style.top = `${((RANGE - pad.y) / (2 * RANGE)) * 100}%`;
  $("pad-value").textContent = `(${pad.x.toFixed(2)}, ${pad.y.toFixed(2)})`;
  decodePad();
}

/** Decode the pad's point; while a request is in flight, only the latest point is kept. */
async function decodePad() {
  if (!state.latentDim) return;
  if (pad.busy) {
    pad.pending = true;
    return;
  }
  pad.busy = true;
  const z = baseLatent();
  z[Number($("dim-x").value)] = pad.x;
  z[Number($("dim-y").value)] = pad.y;
  const data = await guarded(() => postJSON("/decode?format=json", { z }));
  if (data) $("pad-image").src = pngSrc(data.images[0]);
  pad.busy = false;
  if (pad.pending) {
    pad.pending = false;
    decodePad();
  }
}

function setUpPad() {
  const area = $("pad");
  const fromPointer = (e) => {
    const rect = area.getBoundingClientRect();
    const fx = (e.clientX - rect.left) / rect.width;
    const fy = (e.clientY - rect.top) / rect.height;
    movePad(fx * 2 * RANGE - RANGE, RANGE - fy * 2 * RANGE);
  };
  area.addEventListener("pointerdown", (e) => {
    area.setPointerCapture(e.pointerId);
    fromPointer(e);
  });
  area.addEventListener("pointermove", (e) => area.hasPointerCapture(e.pointerId) && fromPointer(e));
  area.addEventListener("keydown", (e) => {
    const step = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, 0.1], ArrowDown: [0, -0.1] }[e.key];
    if (!step) return;
    e.preventDefault();
    movePad(pad.x + step[0], pad.y + step[1]);
  });
  for (const id of ["dim-x", "dim-y"]) {
    $(id).addEventListener("change", () => {
      labelAxes();
      resetPad();
    });
  }
}

/** The pad's two dimensions: the two with the largest mean KL where the card lists KL per
 * dimension (`evaluation.dims` of {dim, kl}, model/evaluate_dsprites.py), else z0 and z1. */
function padDimensions(card, latentDim) {
  const listed = Array.isArray(card?.evaluation?.dims) ? card.evaluation.dims : [];
  const valid = listed.filter((d) => Number.isInteger(d?.dim) && d.dim >= 0 && d.dim < latentDim && Number.isFinite(d.kl));
  const ranked = [...new Set(valid.sort((p, q) => q.kl - p.kl).map((d) => d.dim))];
  return ranked.length >= 2 ? ranked.slice(0, 2) : [0, Math.min(1, latentDim - 1)];
}

function fillDimensions(latentDim, [x, y]) {
  for (const [id, chosen] of [["dim-x", x], ["dim-y", y]]) {
    $(id).replaceChildren(
      ...Array.from({ length: latentDim }, (_, i) => new Option(`z${i}`, String(i), false, i === chosen)),
    );
    $(id).disabled = false;
  }
  labelAxes();
}

function labelAxes() {
  $("axis-x").textContent = `z${$("dim-x").value} →`;
  $("axis-y").textContent = `z${$("dim-y").value} ↑`;
}

// ---------- start ----------

async function start() {
  $("sample-form").addEventListener("submit", loadSamples);
  $("temperature").addEventListener("input", (e) => ($("temperature-value").textContent = Number(e.target.value).toFixed(1)));
  $("steps").addEventListener("input", (e) => ($("steps-value").textContent = e.target.value));
  $("steps").addEventListener("change", interpolate);
  $("sample-class").addEventListener("change", loadSamples);
  $("use-a").addEventListener("click", () => useAs("a"));
  $("use-b").addEventListener("click", () => useAs("b"));
  $("key-form").addEventListener("submit", useKey);
  setUpCanvas();
  setUpPad();
  await loadModel();
}

/** Remember the API key for this tab and load the page's data again with it. */
async function useKey(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
  $("api-key").value = "";
  await loadModel();
}

async function loadModel() {
  const info = await guarded(() => api("/model"));
  if (!info) {
    $("model-info").textContent = "";
    return;
  }
  state.latentDim = info.latent_dim;
  state.capabilities = info.capabilities ?? [];
  applyContract(info.contract);
  $("model-info").textContent = `Model ${info.version}, ${info.latent_dim} latent dimensions.`;
  fillDimensions(info.latent_dim, padDimensions(info.card, info.latent_dim));
  await loadSamples();
  resetPad();
}

/** Fit the page to the model: image size and colour, class selector, texts. */
function applyContract(contract) {
  state.contract = contract;
  const [channels, height, width] = contract.image_shape;
  sizeCanvas(height, width);
  document.documentElement.style.setProperty("--aspect", `${width} / ${height}`); // img.digit
  $("pen-choice").hidden = channels !== 3; // a grey model draws white on black
  const conditional = state.capabilities.includes("conditional_sampling");
  fillClasses(conditional ? contract.classes : []);
  if (!isDigitModel()) useGenericTexts(channels, height, width);
}

/** The class selector: "any" and the model's class names; hidden when there are none. */
function fillClasses(classes) {
  const chosen = $("sample-class").value;
  const options = classes.map((name) => new Option(name, name, false, name === chosen));
  $("sample-class").replaceChildren(new Option("any", ""), ...options);
  $("class-choice").hidden = classes.length === 0;
}

/** Texts for a model other than the MNIST digit one: the `data-generic*` attributes'. */
function useGenericTexts(channels, height, width) {
  const kind = channels === 3 ? "colour" : "greyscale";
  const classes = state.contract.classes.length ? ` (${state.contract.classes.join(", ")})` : "";
  document.title = "vae-serve · VAE demo";
  $("subject").textContent = `A variational autoencoder for ${width}×${height} ${kind} images${classes}.`;
  for (const el of document.querySelectorAll("[data-generic]")) el.textContent = el.dataset.generic;
  for (const el of document.querySelectorAll("[data-generic-alt]")) el.alt = el.dataset.genericAlt;
  for (const el of document.querySelectorAll("[data-generic-label]")) {
    el.setAttribute("aria-label", el.dataset.genericLabel);
  }
}

start();
