// Encoder-decoder models in the page: the same pair of files, vocabularies and search as
// edgernn.runtime.seq2seq in Python (greedy, and beam search with hypotheses as rows of one
// decoder call, reordered by parent after each step), so a text decodes to the same output.
//
//   import { load } from "./edgernn.js";
//   const pair = await load("g2p.onnx");               // the decoder is fetched from beside it
//   (await pair.translate("edge", { beam: 4 })).text
//
// Tokenisation follows edgernn/vocab.py: characters are code points (Array.from), words are
// split on whitespace runs; lower-casing, the unknown token and the end token as the contract
// says.

import * as ort from "onnxruntime-web";

import { DataError, ModelError } from "./errors.js";

const WHITESPACE = /[\s\x1c-\x1f\x85]+/u;                  // what Python's str.split() splits on
const WORDPUNCT = /[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s\x1c-\x1f\x85]/gu;  // Python's \w+|[^\w\s]

export class Vocabulary {
  constructor(spec) {
    this.tokens = spec.tokens;
    this.split = spec.split || "chars";
    this.specials = spec.specials || {};
    this.lower = !!spec.lower;
    this.appendEos = !!spec.append_eos;
    this.maxLength = spec.max_length ?? null;
    this.index = new Map(this.tokens.map((t, i) => [t, i]));
  }

  tokenize(text) {
    if (typeof text !== "string") throw new DataError(`text must be a string, got ${typeof text}`);
    const t = this.lower ? text.toLowerCase() : text;
    if (this.split === "chars") return Array.from(t);
    if (this.split === "wordpunct") return t.match(WORDPUNCT) || [];
    return t.split(WHITESPACE).filter((w) => w.length);
  }

  encode(text) {
    const unk = this.specials.unk;
    const tokens = this.tokenize(text);
    const ids = tokens.slice(0, this.maxLength ?? tokens.length).map((t) => {
      const i = this.index.has(t) ? this.index.get(t) : unk;
      if (i === undefined) throw new DataError(`'${t}' is not in this model's vocabulary (and it has no unknown token)`);
      return i;
    });
    if (this.appendEos) ids.push(this.specials.eos);
    return ids;
  }

  decode(ids) {
    const skip = new Set(Object.values(this.specials));
    const out = [];
    for (const i of ids) {
      if (i === this.specials.eos) break;
      if (!skip.has(i) && i >= 0 && i < this.tokens.length) out.push(this.tokens[i]);
    }
    return out.join(this.split === "chars" ? "" : " ");
  }
}

export class Seq2SeqModel {
  constructor(encoder, decoder, contract, decoderContract) {
    this.encoder = encoder;                                  // onnxruntime-web sessions
    this.decoder = decoder;
    this.contract = contract;
    const spec = contract.seq2seq;
    this.spec = spec;
    this.source = new Vocabulary(spec.source);
    this.target = new Vocabulary(spec.target);
    this.maxLen = spec.max_len;
    this.bos = this.target.specials.bos;
    this.eos = this.target.specials.eos;
    this.states = decoderContract.states.map((s) => ({ name: s.name, input: s.input, output: s.output, shape: s.shape.slice(1) }));
    this.attention = spec.attention !== "none";
  }

  /** The output for one input text (or an array of source ids): {text, tokens, score, logProb, finished, hypotheses}. */
  async translate(source, options = {}) {
    return (await this.translateBatch([source], options))[0];
  }

  /** Outputs for many inputs, decoded together; each equals decoding it alone. */
  async translateBatch(sources, { beam = 1, maxLen = null, nBest = 1 } = {}) {
    if (!Number.isInteger(beam) || beam < 1) throw new DataError(`beam must be a positive integer (1 is greedy), got ${beam}`);
    const limit = maxLen === null ? this.maxLen : maxLen;
    if (!Number.isInteger(limit) || limit < 1) throw new DataError(`maxLen must be a positive integer, got ${maxLen}`);
    if (!Number.isInteger(nBest) || nBest < 1 || nBest > beam) throw new DataError(`nBest must be between 1 and the beam (${beam})`);
    const ids = sources.map((s) => this._ids(s));
    if (!ids.length) return [];
    return this._search(ids, beam, limit, nBest);
  }

  _ids(source) {
    let ids;
    if (typeof source === "string") {
      if (!this.source.tokenize(source).length) throw new DataError("an input has no tokens; pass some text");
      ids = this.source.encode(source);
    } else {
      ids = Array.from(source, Number);
      if (ids.some((i) => !Number.isInteger(i) || i < 0 || i >= this.source.tokens.length)) {
        throw new DataError(`source token ids run from 0 to ${this.source.tokens.length - 1}`);
      }
    }
    if (!ids.length) throw new DataError("an input has no tokens; pass some text");
    return ids;
  }

  async _encode(ids) {
    const src = new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
    return this.encoder.run({ src });
  }

  async _search(sources, k, maxLen, nBest) {
    const N = sources.length, rows = N * k;
    const encoded = [];
    for (const ids of sources) encoded.push(await this._encode(ids));
    const feeds = {};
    if (this.attention) {
      const S = Math.max(...sources.map((s) => s.length));
      const M = encoded[0].memory.dims[2], K = encoded[0].keys.dims[2];
      const memory = new Float32Array(rows * S * M), keys = new Float32Array(rows * S * K);
      const mask = new Float32Array(rows * S);
      sources.forEach((ids, n) => {
        const m = encoded[n].memory.data, kk = encoded[n].keys.data;
        for (let j = 0; j < k; j++) {
          const r = n * k + j;
          memory.set(m, r * S * M);
          keys.set(kk, r * S * K);
          mask.fill(1, r * S, r * S + ids.length);
        }
      });
      feeds.memory = new ort.Tensor("float32", memory, [rows, S, M]);
      feeds.keys = new ort.Tensor("float32", keys, [rows, S, K]);
      feeds.mask = new ort.Tensor("float32", mask, [rows, S]);
    }
    let state = this.states.map((s) => {
      const size = s.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(rows * size);
      encoded.forEach((e, n) => { for (let j = 0; j < k; j++) data.set(e[s.name].data, (n * k + j) * size); });
      return { data, size };
    });
    const prev = new Array(rows).fill(this.bos);
    const scores = Array.from({ length: N }, () => new Array(k).fill(-Infinity));
    scores.forEach((row) => { row[0] = 0; });
    let history = Array.from({ length: N }, () => Array.from({ length: k }, () => []));
    const finished = Array.from({ length: N }, () => []);
    const done = new Array(N).fill(false);
    for (let t = 0; t < maxLen; t++) {
      const stepFeeds = { ...feeds, prev: new ort.Tensor("int64", BigInt64Array.from(prev, BigInt), [rows]) };
      this.states.forEach((s, i) => { stepFeeds[s.input] = new ort.Tensor("float32", state[i].data, [rows, ...s.shape]); });
      const out = await this.decoder.run(stepFeeds);
      const logp = out.logp.data, V = out.logp.dims[1];
      const parents = Array.from({ length: rows }, (_, r) => r);
      for (let n = 0; n < N; n++) {
        if (done[n]) continue;
        const flat = new Float64Array(k * V);
        for (let j = 0; j < k; j++) for (let v = 0; v < V; v++) flat[j * V + v] = scores[n][j] + logp[(n * k + j) * V + v];
        const order = Array.from({ length: k * V }, (_, i) => i)
          .sort((a, b) => (flat[b] - flat[a]) || (a - b)).slice(0, 2 * k);
        const live = [];
        for (const [rank, idx] of order.entries()) {
          const total = flat[idx];
          if (!Number.isFinite(total)) break;
          const parent = Math.floor(idx / V), token = idx % V;
          if (token === this.eos) {
            if (rank < k) finished[n].push([history[n][parent], total, true]);   // an end past the beam is not taken
          } else live.push([parent, token, total]);
          if (live.length === k) break;
        }
        finished[n] = kept(finished[n], k);
        if (!live.length || settled(finished[n], live, history[n], k)) { done[n] = true; continue; }
        const next = [];
        for (let j = 0; j < k; j++) {
          if (j < live.length) {
            const [parent, token, total] = live[j];
            parents[n * k + j] = n * k + parent;
            prev[n * k + j] = token;
            scores[n][j] = total;
            next.push([...history[n][parent], token]);
          } else {
            scores[n][j] = -Infinity;
            next.push([]);
          }
        }
        history[n] = next;
      }
      if (done.every(Boolean)) break;
      state = this.states.map((s, i) => {                   // each row takes its parent's state
        const size = state[i].size, src = out[s.output].data, data = new Float32Array(rows * size);
        parents.forEach((p, r) => data.set(src.subarray(p * size, (p + 1) * size), r * size));
        return { data, size };
      });
    }
    return sources.map((_, n) => {
      let hyps = finished[n];
      if (!done[n]) hyps = hyps.concat(history[n].map((h, j) => [h, scores[n][j], false]).filter((h) => Number.isFinite(h[1])));
      // an output the model ended comes before one cut at maxLen, whatever its score
      const ranked = hyps.map(([tokens, logProb, ended]) => this._translation(tokens, logProb, ended))
        .map((h, i) => [h, i]).sort((a, b) => (b[0].finished - a[0].finished) || (b[0].score - a[0].score) || (a[1] - b[1]))
        .map(([h]) => h);
      const best = ranked[0];
      best.hypotheses = ranked.slice(0, nBest);
      return best;
    });
  }

  _translation(tokens, logProb, finished) {
    const length = tokens.length + (finished ? 1 : 0);
    return { text: this.target.decode(tokens), tokens: tokens.slice(), score: logProb / Math.max(1, length), logProb, finished };
  }
}

/** A finished hypothesis's score: log-probability per output token, the end token counted. */
const normScore = ([tokens, logProb]) => logProb / (tokens.length + 1);

/** The `k` best finished hypotheses by score, ties in the order they finished (runtime/seq2seq.py's _kept). */
function kept(finished, k) {
  return finished.map((h, i) => [h, i]).sort((a, b) => (normScore(b[0]) - normScore(a[0])) || (a[1] - b[1]))
    .slice(0, k).map(([h]) => h);
}

/** Whether the search can stop: `k` ended and no live hypothesis would beat the worst of them by ending next (runtime/seq2seq.py's _settled). */
function settled(finished, live, history, k) {
  if (finished.length < k) return false;
  if (k === 1) return true;
  const worst = normScore(finished[finished.length - 1]);
  return live.every(([parent, , total]) => total / (history[parent].length + 2) <= worst);
}

/** The pair that `contract` (read from `bytes` at `where`) belongs to: its partner fetched from beside it. */
export async function openPair(bytes, contract, where, options, fetchBytes, readContract) {
  const spec = contract.seq2seq;
  if (typeof where !== "string") throw new ModelError("an encoder-decoder model is two files; load it from its URL (the partner is fetched from beside it)");
  const partnerUrl = new URL(spec.partner, new URL(where, location.href)).href;
  const partnerBytes = await fetchBytes(partnerUrl);
  const other = readContract(partnerBytes, partnerUrl);
  if (!other.seq2seq || other.seq2seq.role === spec.role ||
      other.provenance.weights_sha256 !== contract.provenance.weights_sha256) {
    throw new ModelError(`${partnerUrl} is not the partner of ${where}; export the pair again`);
  }
  const session = async (b, w) => {
    try { return await ort.InferenceSession.create(b, { executionProviders: ["wasm"], ...options }); } catch (e) {
      throw new ModelError(`onnxruntime-web cannot load ${w} (${String(e.message || e).split("\n")[0]})`);
    }
  };
  const [encBytes, encContract, encWhere, decBytes, decContract, decWhere] = spec.role === "encoder"
    ? [bytes, contract, where, partnerBytes, other, partnerUrl] : [partnerBytes, other, partnerUrl, bytes, contract, where];
  return new Seq2SeqModel(await session(encBytes, encWhere), await session(decBytes, decWhere), encContract, decContract);
}
