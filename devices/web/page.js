// The page `edgernn web` writes: streams signal.json through model.onnx live, one step at a
// time, with the state kept in the page, and plots what the model says:
//   classify: a label timeline (the most likely label per step, and its probability);
//   forecast: the forecast made one step earlier against the reading;
//   charlm:   the surprise per character of a text stream, and autocomplete as you type;
//   other models: their first outputs.
// Per-step latency (p50/p99 of the last 500 steps) is shown below the plot. ?rate=N sets
// the steps per second (0: as fast as it goes). A model that hears (the audio front end in its
// graph) also listens to the microphone, and lists the events it hears as they end.
// window.edgernnPage tells tests where it is.

import { load } from "./edgernn.js";
import { listen } from "./listen.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const WINDOW = 300;                                           // steps on screen
const page = (window.edgernnPage = { ready: false, steps: 0, error: null, latencies: [], completion: "" });

function fail(e) {
  page.error = String(e.message || e);
  $("status").textContent = page.error;
  $("status").className = "error";
}

function percentile(values, q) {
  const v = [...values].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : NaN;
}

// ------------------------------------------------------------------ drawing

function draw(series, band) {
  const canvas = $("plot"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, top = 10, bottom = band ? h - 40 : h - 10;
  ctx.clearRect(0, 0, w, h);
  const all = series.flatMap((s) => s.values.filter(Number.isFinite));
  if (!all.length) return;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (series.some((s) => s.range)) [lo, hi] = series.find((s) => s.range).range;
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const x = (i) => (i / (WINDOW - 1)) * (w - 20) + 10;
  const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  ctx.strokeStyle = "#eee"; ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) { const yy = top + (k / 4) * (bottom - top); ctx.beginPath(); ctx.moveTo(10, yy); ctx.lineTo(w - 10, yy); ctx.stroke(); }
  ctx.fillStyle = "#888"; ctx.font = "11px sans-serif";
  ctx.fillText(hi.toPrecision(3), 12, top + 10); ctx.fillText(lo.toPrecision(3), 12, bottom - 2);
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) { pen = false; return; }
      if (pen) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
      pen = true;
    });
    ctx.stroke();
  }
  if (band) band.forEach((c, i) => { if (c !== null) { ctx.fillStyle = COLORS[c % COLORS.length]; ctx.fillRect(x(i) - 2, h - 32, (w - 20) / WINDOW + 1, 24); } });
}

function legend(items) {
  $("legend").innerHTML = items.map(([name, color]) => `<span><i style="background:${color}"></i>${name}</span>`).join("");
}

const keep = (list, value) => { list.push(value); if (list.length > WINDOW) list.shift(); };

// ------------------------------------------------------------------ the views

// A text classifier also gets a text box: what is typed is classified as it is typed.
function textBox(model) {
  $("textbox").hidden = false;
  let queue = Promise.resolve();
  $("text-in").addEventListener("input", () => {
    const text = $("text-in").value;
    queue = queue.then(async () => {
      if (!text.trim()) { $("text-label").textContent = ""; return; }
      const out = await model.classify(text);
      page.typed = { text, ...out };
      $("text-label").textContent = `${out.label} (${(100 * out.probabilities[out.label]).toFixed(0)} %)`;
    }).catch(fail);
  });
}

function classifyView(stream) {
  const labels = stream.model.labels || [];
  if (stream.model.tokenizer) textBox(stream.model);
  legend([["probability of the most likely label", "#222"], ...labels.map((l, i) => [l, COLORS[i % COLORS.length]])]);
  const band = [], top = [];
  return {
    show(y) {
      const p = stream.probabilities(y);
      let best = 0; p.forEach((v, i) => { if (v > p[best]) best = i; });
      keep(band, best); keep(top, p[best]);
      page.label = stream.label(y);
      $("status").textContent = `now: ${page.label} (${(100 * p[best]).toFixed(0)} %)`;
    },
    draw() { draw([{ values: top, color: "#222", range: [0, 1] }], band); },
  };
}

function forecastView(stream, signal) {
  const names = signal.feature_names || stream.model.contract.inputs[0].shape.slice(1).map((_, i) => `feature ${i}`);
  const n = stream.model.frameSize;
  $("channel").innerHTML = Array.from({ length: n }, (_, i) => `<option value="${i}">${names[i] || i}</option>`).join("");
  $("channel-box").hidden = n < 2;
  legend([["reading", "#222"], ["forecast made one step earlier", COLORS[1]]]);
  let readings = [], forecasts = [], pending = NaN;
  $("channel").onchange = () => { readings = []; forecasts = []; };
  return {
    show(y, frame) {
      const c = Number($("channel").value || 0);
      keep(readings, Number(frame[c])); keep(forecasts, pending);
      pending = stream.denormalize(y)[c];
      page.forecast = pending;
      $("status").textContent = `next ${names[c] || "value"}: ${pending.toPrecision(4)}`;
    },
    draw() { draw([{ values: readings, color: "#222" }, { values: forecasts, color: COLORS[1] }]); },
  };
}

function charlmView(stream, model, signal) {
  legend([["surprise of each character (bits)", COLORS[0]]]);
  $("lm").hidden = false;
  const bits = [], vocab = model.vocabulary;
  let text = "", previous = null;
  let typing = Promise.resolve();
  $("typed").addEventListener("input", () => { typing = typing.then(() => complete($("typed").value)).catch(fail); });
  async function complete(typed) {
    const known = [...typed].filter((c) => vocab.includes(c)).join("");
    const s = model.stream();
    const ys = known ? await s.feed(s.encode(known)) : [];
    let y = ys[ys.length - 1], out = "";
    for (let k = 0; y && k < 40; k++) {                    // greedy: the most likely characters
      const c = s.sample(y, { temperature: 0 });
      if (c === "\n") break;
      out += c;
      y = await s.step(vocab.indexOf(c));
    }
    page.completion = out;
    page.completedFor = typed;
    $("completion").textContent = out;
  }
  return {
    show(y, frame) {
      if (previous) keep(bits, -Math.log2(stream.probabilities(previous)[frame]));
      previous = y;
      text = (text + vocab[frame]).slice(-90);
      $("status").textContent = text.replace(/\n/g, " ⏎ ");
    },
    draw() { draw([{ values: bits, color: COLORS[0] }]); },
  };
}

function genericView(stream, model) {
  const k = Math.min(4, model.outputShape.reduce((a, b) => a * b, 1));
  const lines = Array.from({ length: k }, () => []);
  legend(lines.map((_, i) => [`output ${i}`, COLORS[i]]));
  return {
    show(y) { lines.forEach((l, i) => keep(l, y[i])); $("status").textContent = `output: ${Array.from(y.slice(0, k), (v) => v.toPrecision(3)).join(", ")}`; },
    draw() { draw(lines.map((values, i) => ({ values, color: COLORS[i] }))); },
  };
}

// An encoder-decoder pair: a text box; each input is decoded as it is typed (beam search,
// n-best with length-normalised scores), the examples are the model's held-out inputs.
async function seq2seqPage(model, signal) {
  const c = model.contract;
  ["controls", "plot", "legend"].forEach((id) => { $(id).hidden = true; });
  $("s2s").hidden = false;
  $("task").textContent = `· ${c.task || "seq2seq"} · ${c.quantization ? c.quantization.mode + " int8" : "fp32"}`;
  $("about").textContent = `${(c.model.cell || "").toUpperCase()} encoder-decoder, attention ${model.spec.attention}; ` +
    `${model.source.tokens.length} input and ${model.target.tokens.length} output tokens; ${signal.description}`;
  let queue = Promise.resolve();
  const run = (text) => { queue = queue.then(() => decode(text)).catch(fail); return queue; };
  async function decode(text) {
    if (!text.trim()) { $("output").textContent = ""; $("nbest").innerHTML = ""; return; }
    const beam = Number($("beam").value);
    const t0 = performance.now();
    const out = await model.translate(text, { beam, nBest: beam });
    const dt = performance.now() - t0;
    page.latencies.push(dt);
    page.translated = { input: text, beam, output: out.text, score: out.score, hypotheses: out.hypotheses.map((h) => h.text) };
    $("output").textContent = out.text;
    $("nbest").innerHTML = out.hypotheses.map((h) => `<li>${h.text.replace(/</g, "&lt;")} <small>(${h.score.toFixed(3)})</small></li>`).join("");
    $("latency").textContent = `decoded in ${dt.toFixed(1)} ms (beam ${beam}) · onnxruntime-web wasm`;
  }
  $("source").addEventListener("input", () => run($("source").value));
  $("beam").addEventListener("change", () => run($("source").value));
  $("examples").innerHTML = (signal.examples || []).map((e, i) => `<button data-i="${i}">${e.replace(/</g, "&lt;")}</button>`).join("");
  $("examples").addEventListener("click", (ev) => {
    const i = ev.target.dataset && ev.target.dataset.i;
    if (i !== undefined) { $("source").value = signal.examples[Number(i)]; run($("source").value); }
  });
  page.decode = run;
  page.ready = true;
  if (signal.examples && signal.examples.length) { $("source").value = signal.examples[0]; await run(signal.examples[0]); }
}

// A classifier that reads whole texts both ways has no stream: the text box, and examples.
async function wholeTextPage(model, signal) {
  const c = model.contract;
  $("task").textContent = `· ${c.task || "model"} · ${c.quantization ? c.quantization.mode + " int8" : "fp32"}`;
  $("about").textContent = `${c.model && c.model.cell ? c.model.cell.toUpperCase() : "recurrent"} bidirectional ` +
    `sequence graph: each text is read whole, both ways (${signal.description})`;
  for (const id of ["plot", "controls", "legend"]) $(id).hidden = true;
  textBox(model);
  $("examples").innerHTML = (signal.examples || []).map((e, i) => `<button data-i="${i}">${e.replace(/</g, "&lt;")}</button>`).join("");
  $("s2s").hidden = !(signal.examples || []).length;
  $("source").hidden = $("beam").parentElement.hidden = true;
  $("examples").addEventListener("click", (ev) => {
    const i = ev.target.dataset && ev.target.dataset.i;
    if (i === undefined) return;
    $("text-in").value = signal.examples[Number(i)];
    $("text-in").dispatchEvent(new Event("input"));
  });
  page.ready = true;
}

// A model that hears: a button starts the microphone (listen.js) in place of the looped signal,
// on a fresh stream, and the events it hears are listed as they end. ?record=1 keeps every hop
// heard and its label (page.heard, page.hopLabels) for tests.
function microphone(model, stepped, loop) {
  const button = $("listen"), record = params.has("record");
  button.hidden = false;
  let mic = null;
  const shown = (e) => {
    page.events.push(e);
    $("events").hidden = false;
    $("events").insertAdjacentHTML("beforeend", `<li>${e.event}: ${e.start.toFixed(2)} s to ${e.end.toFixed(2)} s</li>`);
  };
  async function start() {
    loop.pause();
    page.events = []; page.hopLabels = record ? [] : null;
    $("events").innerHTML = "";
    mic = await listen(model.stream(), {
      onStep(y, hop, label, ms) { if (record) page.hopLabels.push(label); stepped(y, hop, ms); },
      onEvent: shown, onError: fail, record });
    page.heard = mic.heard;
    page.listening = true;
    button.textContent = "stop listening";
  }
  async function stop() {
    const was = mic;
    mic = null;
    await was.stop();
    page.listening = false;
    button.textContent = "listen to the microphone";
  }
  button.onclick = () => {
    button.disabled = true;
    (mic ? stop() : start()).catch(fail).finally(() => { button.disabled = false; });
  };
}

// ------------------------------------------------------------------ the loop

async function main() {
  const signal = await (await fetch("./signal.json")).json();
  const model = await load("./model.onnx");
  if (signal.kind === "seq2seq") return seq2seqPage(model, signal);
  if (model.whole) return wholeTextPage(model, signal);
  const stream = model.stream();
  const c = model.contract;
  $("task").textContent = `· ${c.task || "model"} · ${c.quantization ? c.quantization.mode + " int8" : "fp32"}`;
  $("about").textContent = `${c.model && c.model.cell ? c.model.cell.toUpperCase() : "recurrent"} ${c.graph} graph, ` +
    `state ${model.states.map((s) => s.name).join(", ")}; streaming ${signal.description}`;
  const view = { classify: classifyView, forecast: forecastView, charlm: charlmView }[signal.kind] || genericView;
  const show = view(stream, model, signal);
  const rate = Number(params.get("rate") ?? signal.rate ?? 100);
  const resets = new Set(signal.resets || []);
  let paused = false;
  const setPaused = (p) => { paused = p; $("pause").textContent = paused ? "resume" : "pause"; };
  $("pause").onclick = () => setPaused(!paused);
  function stepped(y, frame, dt) {                  // one step, from the signal or the microphone
    page.latencies.push(dt); if (page.latencies.length > 500) page.latencies.shift();
    page.steps += 1;
    show.show(y, frame);
    if (page.steps % 5 === 0) {
      show.draw();
      $("latency").textContent = `${page.steps} steps · per step p50 ${(1000 * percentile(page.latencies, 0.5)).toFixed(0)} µs, ` +
        `p99 ${(1000 * percentile(page.latencies, 0.99)).toFixed(0)} µs (last ${page.latencies.length}) · onnxruntime-web wasm`;
    }
  }
  if (c.audio) microphone(model, stepped, { pause: () => setPaused(true) });
  page.ready = true;
  const started = performance.now();
  let done = 0;
  for (let t = 0; ; t = (t + 1) % signal.frames.length) {
    while (paused) await new Promise((r) => setTimeout(r, 100));
    if (resets.has(t)) await stream.reset();
    const frame = signal.frames[t];
    const t0 = performance.now();
    const y = await stream.step(frame);
    stepped(y, frame, performance.now() - t0);
    done += 1;
    const due = rate > 0 ? started + (done * 1000) / rate : 0;
    const wait = due - performance.now();
    await new Promise((r) => (wait > 0 ? setTimeout(r, wait) : (done % 20 ? r() : setTimeout(r, 0))));
  }
}

main().catch(fail);
