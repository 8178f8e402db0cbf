// edgernn's streaming runtime for web pages: the same artifact, the same Stream API as
// edgernn.runtime in Python, over onnxruntime-web.
//
//   import { load } from "./edgernn.js";
//   const model = await load("model.onnx");          // a URL, or the file's bytes
//   const stream = model.stream();
//   const y = await stream.step(frame);              // one time step; the state stays here
//   stream.label(y); stream.denormalize(y); stream.sample(y, { temperature: 0.8 });
//   const blob = await stream.snapshot(); await stream.restore(blob);   // Python reads it too
//
// "onnxruntime-web" is resolved by the page's import map (or a bundler). The contract is read
// from the model's bytes: normalisation, labels, vocabulary, the state names and shapes.
// A call that fails (a frame of the wrong length, NaN, a run that throws) leaves the state as
// it was. Calls on one stream run one after another, in the order they were made.

import * as ort from "onnxruntime-web";

import { readContract } from "./contract.js";
import { DataError, ModelError, NonFiniteError } from "./errors.js";
import { canonicalJSON, checkFits, dumps, loads } from "./snapshot.js";
import { openPair, Vocabulary } from "./seq2seq.js";
import { hex, sha256 } from "./sha256.js";

export { DataError, EdgeRNNError, ModelError, NonFiniteError, SnapshotError } from "./errors.js";
export { ort };
export { Seq2SeqModel, Vocabulary } from "./seq2seq.js";

async function bytesOf(source) {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof source === "string" || source instanceof URL) {
    const response = await fetch(source);
    if (!response.ok) throw new ModelError(`cannot fetch the model ${source}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  throw new ModelError("load() takes a URL or the model's bytes (Uint8Array, ArrayBuffer)");
}

// A shape as messages print it: [batch, 2, 128]
const showShape = (shape) => "[" + shape.join(", ") + "]";

// The model a snapshot belongs to, as edgernn.contract.state_fingerprint names it.
async function fingerprint(contract, bytes) {
  const weights = contract.provenance && contract.provenance.weights_sha256;
  if (!weights) return hex(await sha256(bytes));
  return hex(await sha256(new TextEncoder().encode(canonicalJSON({
    weights, quantization: contract.quantization ? contract.quantization.mode : "fp32",
    states: contract.states.map((s) => ({ name: s.name, shape: s.shape, dtype: s.dtype })),
  }))));
}

/** Load an edgernn step graph for streaming. options: executionProviders (["wasm"]), and any
 *  other onnxruntime-web session option. */
export async function load(source, options = {}) {
  const bytes = await bytesOf(source);
  const where = typeof source === "string" ? source : "the model";
  const contract = readContract(bytes, where);
  if (contract.seq2seq) return openPair(bytes, contract, source, options, bytesOf, readContract);
  const wholeText = contract.graph === "sequence" && contract.tokenizer;
  if (!["step", "chunk"].includes(contract.graph) && !wholeText) {
    throw new ModelError(`${where} is a '${contract.graph}' graph; the web runtime streams step and chunk graphs ` +
                         "(edgernn export --graph step), and runs whole-text classifiers");
  }
  checkTensors(contract);
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], ...options });
  } catch (e) {
    throw new ModelError(`onnxruntime-web cannot load ${where} (${String(e.message || e).split("\n")[0]})`);
  }
  if (wholeText) return new WholeTextModel(session, contract);
  return new Model(session, contract, await fingerprint(contract, bytes));
}

// {label, probabilities: {label: p}} from one output row.
function labelled(y, labels) {
  const p = probabilities(y), names = labels || p.map((_, i) => String(i)), i = argmax(y);
  return { label: i < names.length ? names[i] : String(i), probabilities: Object.fromEntries(names.map((n, k) => [n, p[k]])) };
}

/** A text classifier that reads the whole text both ways (a bidirectional sequence graph):
 *  classify(text) runs it once on the text's own tokens; it has no stream. */
export class WholeTextModel {
  constructor(session, contract) {
    this.session = session;
    this.contract = contract;
    this.input = contract.inputs[0];
    this.output = contract.outputs[0];
    this.labels = contract.labels || null;
    this.tokenizer = new Vocabulary(contract.tokenizer);
    this.states = [];
    this.whole = true;
  }

  /** The contract's token ids for `text` (what Python's tokenizer gives). */
  encode(text) {
    const ids = this.tokenizer.encode(text);
    if (!ids.length) throw new DataError("the text has no tokens; pass some text");
    return ids;
  }

  async classify(text) {
    const ids = this.encode(text), int64 = this.input.dtype === "int64";
    const x = new ort.Tensor(this.input.dtype, int64 ? BigInt64Array.from(ids, BigInt) : Int32Array.from(ids), [1, ids.length]);
    const out = await this.session.run({ [this.input.name]: x });
    return labelled(out[this.output.name].data, this.labels);
  }

  stream() {
    throw new ModelError("this classifier reads the whole text both ways (bidirectional): it cannot stream; use classify(text)");
  }
}

// What this runtime keeps: float32 state and outputs, float32 or integer frames, and a first
// axis that holds streams (symbolic, or 1) on the input, the output and every state (a chunk
// graph's input and output have a time axis after it).
const streamsAxis = (shape) => shape.length > 0 && (typeof shape[0] === "string" || shape[0] === 1);

function checkTensors(contract) {
  const x = contract.inputs[0], y = contract.outputs[0];
  for (const s of contract.states) {
    if (s.dtype !== "float32") throw new ModelError(`state ${s.name} is ${s.dtype}; the web runtime keeps float32 state`);
    if (!s.layout.includes("batch")) throw new ModelError(`state ${s.name} ${showShape(s.shape)} has no batch axis; the web runtime streams files with one`);
  }
  if (!["float32", "int64", "int32"].includes(x.dtype)) throw new ModelError(`input ${x.name} is ${x.dtype}; the web runtime feeds float32 frames or integer tokens`);
  if (y.dtype !== "float32") throw new ModelError(`output ${y.name} is ${y.dtype}; the web runtime reads float32 outputs`);
  for (const t of [x, y]) {
    if (!streamsAxis(t.shape)) throw new ModelError(`${t.name} ${showShape(t.shape)} has no batch axis; the web runtime streams files with one`);
  }
}

export class Model {
  constructor(session, contract, fingerprint) {
    this.session = session;
    this.contract = contract;
    this.fingerprint = fingerprint;
    this.input = contract.inputs[0];
    this.output = contract.outputs[0];
    this.chunk = contract.graph === "chunk";             // a call takes any number of steps
    const lead = this.chunk ? 2 : 1;                     // batch (and time) before a frame
    this.frameShape = this.input.shape.slice(lead);
    this.outputShape = this.output.shape.slice(lead);
    if (this.chunk && typeof this.output.shape[1] === "number") {
      throw new ModelError(`output '${this.output.name}' ${showShape(this.output.shape)} has no time axis: ` +
                           "a chunk graph returns every step's output (export a step graph)");
    }
    const open = this.frameShape.filter((d) => typeof d !== "number");
    if (open.length) {
      throw new ModelError(`input '${this.input.name}' leaves frame axes ${open.join(", ")} open; a stream needs fixed sizes`);
    }
    this.frameSize = this.frameShape.reduce((a, b) => a * b, 1);
    this.integer = this.input.dtype === "int64" || this.input.dtype === "int32";
    this.labels = contract.labels || null;
    this.vocabulary = contract.vocabulary || null;
    this.tokenizer = contract.tokenizer ? new Vocabulary(contract.tokenizer) : null;
    this.states = contract.states.map((s) => {
      const at = s.layout.indexOf("batch");
      const shape = s.shape.map((d, i) => (i === at ? 1 : d));
      if (shape.some((d) => typeof d !== "number")) {
        throw new ModelError(`state ${s.name} has a symbolic axis other than batch (${showShape(s.shape)})`);
      }
      return { ...s, shape, size: shape.reduce((a, b) => a * b, 1) };
    });
  }

  /** A text classifier's label for `text`: {label, probabilities: {label: p}}. */
  async classify(text) {
    if (!this.tokenizer) throw new ModelError("classify() is for text classifiers (a tokenizer in the contract)");
    const ys = await this.stream().feedText(text);
    return labelled(ys[ys.length - 1], this.labels);
  }

  /** A new stream from the initial state. normalize: false feeds frames already normalised. */
  stream({ normalize = true } = {}) { return new Stream(this, normalize); }

  initialState() {
    return this.states.map((s) => ({ name: s.name, shape: s.shape, data: new Float32Array(s.size).fill(s.initial || 0) }));
  }
}

export class Stream {
  constructor(model, normalize) {
    this.model = model;
    this.steps = 0;
    this._state = model.initialState();
    this._queue = Promise.resolve();
    const pre = model.contract.preprocessing;
    this._mean = this._scale = null;                        // frames go in as (x - mean) * scale
    if (pre && pre.in_graph && !normalize) {                // the graph normalises: back to units
      this._mean = pre.mean.map((m, i) => -m / pre.std[i]);
      this._scale = pre.std.slice();
    } else if (pre && !pre.in_graph && normalize) {
      this._mean = pre.mean.slice();
      this._scale = pre.std.map((s) => 1 / s);
    }
  }

  // One call at a time per stream, in order; a failed call does not block the next.
  _serial(fn) {
    const run = this._queue.then(fn);
    this._queue = run.catch(() => {});
    return run;
  }

  /** Frames as one input tensor: a step graph's one frame, or a chunk graph's frames. */
  _prep(frames) {
    const m = this.model, values = frames.map((f) => this._values(f));
    const shape = m.chunk ? [1, frames.length, ...m.frameShape] : [1, ...m.frameShape];
    if (m.integer) {
      const ids = values.map((v) => v[0]);
      return new ort.Tensor(m.input.dtype, m.input.dtype === "int64" ? BigInt64Array.from(ids, BigInt) : Int32Array.from(ids), shape);
    }
    let x = values[0];                                   // one frame: as it is
    if (values.length > 1) {
      x = new Float32Array(values.length * m.frameSize);
      values.forEach((v, i) => x.set(v, i * m.frameSize));
    }
    return new ort.Tensor(m.input.dtype, x, shape);
  }

  /** One frame as the graph takes it: checked (length, numbers, finite) and normalised. */
  _values(frame) {
    const m = this.model;
    if (m.integer) {
      const id = typeof frame === "number" ? frame : (frame && frame.length === 1 ? Number(frame[0]) : NaN);
      if (!Number.isInteger(id)) throw new DataError(`this model takes one integer token id per step, got ${String(frame).slice(0, 40)}`);
      return [id];
    }
    const length = frame && typeof frame.length === "number" ? frame.length : -1;
    if (length !== m.frameSize || typeof frame === "string") {
      throw new DataError(`this model takes one frame of ${m.frameSize} values (shape (${m.frameShape.join(", ")})); ` +
                          `got ${length < 0 ? typeof frame : length + " values"}`);
    }
    const x = new Float32Array(m.frameSize);
    let bad = 0;
    for (let i = 0; i < length; i++) {
      const v = Number(frame[i]);
      if (!Number.isFinite(v)) bad++;
      x[i] = this._mean ? (v - this._mean[i % this._mean.length]) * this._scale[i % this._scale.length] : v;
    }
    if (bad) {
      throw new NonFiniteError(`the frame holds ${bad} NaN or infinite value(s); the stream's state was left unchanged. Clean or drop the frame`);
    }
    if (!x.every(Number.isFinite)) {
      throw new DataError("the normalised frame overflows float32; check the frame's units against the model's preprocessing");
    }
    return x;
  }

  // One call on `frames` (one frame for a step graph): each frame's output, and the new state.
  async _run(frames) {
    const m = this.model;
    const feeds = { [m.input.name]: this._prep(frames) };
    this._state.forEach((s, i) => { feeds[m.states[i].input] = new ort.Tensor("float32", s.data, s.shape); });
    const out = await m.session.run(feeds);
    const all = out[m.output.name].data, size = all.length / frames.length;
    if (!Number.isInteger(size)) {
      throw new ModelError(`the model returned ${all.length} values for ${frames.length} step(s); its output does not follow its steps`);
    }
    const ys = frames.map((_, t) => Float32Array.from(all.subarray(t * size, (t + 1) * size)));
    const next = m.states.map((s, i) => ({ name: s.name, shape: this._state[i].shape, data: Float32Array.from(out[s.output].data) }));
    return [ys, next];
  }

  /** One time step: that step's output (Float32Array). */
  step(frame) {
    return this._serial(async () => {
      const [[y], next] = await this._run([frame]);
      this._state = next;                                   // only once the run succeeded
      this.steps += 1;
      return y;
    });
  }

  /** Many steps, all or nothing: the outputs, or an error with the state as it was. A chunk
   *  graph takes them in one call. */
  feed(frames) {
    return this._serial(async () => {
      if (!frames || !frames.length) throw new DataError("feed() got no frames; pass at least one");
      if (this.model.chunk) {
        const [ys, next] = await this._run(Array.from(frames));
        this._state = next;
        this.steps += ys.length;
        return ys;
      }
      let state = this._state;
      const saved = state;
      const ys = [];
      try {
        for (const frame of frames) {
          this._state = state;
          const [[y], next] = await this._run([frame]);
          ys.push(y);
          state = next;
        }
      } catch (e) {
        this._state = saved;
        throw e;
      }
      this._state = state;
      this.steps += ys.length;
      return ys;
    });
  }

  /** Back to the initial state: exactly a fresh stream. */
  reset() {
    return this._serial(async () => { this._state = this.model.initialState(); this.steps = 0; });
  }

  /** A copy of the current state: [{name, shape, data}]. */
  get state() { return this._state.map((s) => ({ ...s, data: s.data.slice() })); }

  /** The state as bytes (edgernn.runtime's snapshot format, naming this model). */
  snapshot() { return this._serial(() => dumps(this.model.fingerprint, this._state, this.steps)); }

  /** Continue from a snapshot of this model, from this page or from Python. */
  restore(bytes) {
    return this._serial(async () => {
      const { states, steps } = await loads(bytes, this.model.fingerprint);
      checkFits(states, this.model.states);
      this._state = this.model.states.map((s) => ({ name: s.name, shape: s.shape, data: states.get(s.name).data }));
      this.steps = steps;
    });
  }

  // ------------------------------------------------------------ reading outputs

  probabilities(y) { return probabilities(y); }

  label(y) {
    const i = argmax(y);
    const labels = this.model.labels;
    return labels && i < labels.length ? labels[i] : String(i);
  }

  denormalize(y) {
    const post = this.model.contract.postprocessing;
    if (!post || post.in_graph) return Float32Array.from(y);
    return Float32Array.from(y, (v, i) => v * post.std[i % post.std.length] + post.mean[i % post.mean.length]);
  }

  /** A character drawn from a language model's logits; temperature 0 is the most likely. */
  sample(y, { temperature = 1, topK = null, random = Math.random } = {}) {
    const vocab = this.model.vocabulary;
    if (!vocab) throw new DataError("this model has no vocabulary in its contract; sample() is for character language models");
    if (temperature < 0) throw new DataError(`temperature must be >= 0, got ${temperature}`);
    if (temperature === 0) return vocab[argmax(y)];
    let scaled = Array.from(y, (v) => v / temperature);
    if (topK && topK < scaled.length) {
      const cutoff = [...scaled].sort((a, b) => b - a)[topK - 1];
      scaled = scaled.map((v) => (v >= cutoff ? v : -Infinity));
    }
    const p = this.probabilities(scaled);
    let r = random(), i = 0;
    for (; i < p.length - 1; i++) { r -= p[i]; if (r < 0) break; }
    return vocab[i];
  }

  /** A text classifier's stream: the tokens of `text`, fed after what the stream has seen. */
  feedText(text) { return this.feed(this.encode(text)); }

  /** Text to token ids: the contract's tokenizer (text classifiers), or its characters. */
  encode(text) {
    if (this.model.tokenizer) {
      const ids = this.model.tokenizer.encode(text);
      if (!ids.length) throw new DataError("the text has no tokens; pass some text");
      return ids;
    }
    const vocab = this.model.vocabulary || "";
    const missing = [...new Set([...text].filter((c) => !vocab.includes(c)))].sort();
    if (missing.length) throw new DataError(`character(s) ${JSON.stringify(missing.join(""))} are not in this model's vocabulary`);
    return [...text].map((c) => vocab.indexOf(c));
  }
}

function probabilities(y) {
  const max = Math.max(...y);
  const e = Array.from(y, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function argmax(y) {
  let best = 0;
  for (let i = 1; i < y.length; i++) if (y[i] > y[best]) best = i;
  return best;
}
