// Stream state to bytes and back, in edgernn.runtime's format, byte for byte:
// MAGIC | u32 (little-endian) header length | JSON header | raw arrays | sha256 of all before.
// The header is canonical JSON (sorted keys, no spaces, UTF-8: edgernn.contract.canonical_json),
// so a snapshot of the same state is the same bytes on both sides; either side restores the
// other's.

import { SnapshotError } from "./errors.js";
import { sha256 } from "./sha256.js";

const MAGIC = new Uint8Array([...new TextEncoder().encode("EDGERNN-SNAPSHOT"), 1]);
const DIGEST = 32;
const SIZES = { float32: 4 };

/** Canonical JSON: JSON.stringify with every object's keys sorted (edgernn.contract.canonical_json). */
export function canonicalJSON(value) {
  return JSON.stringify(value, (key, v) => (v !== null && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v));
}

const bad = (why) => new SnapshotError(
  `the snapshot is damaged (${why}); it cannot be restored. Restore an older snapshot, or reset the stream`);

/** states: [{name, shape, data: Float32Array}] in the model's order. */
export async function dumps(fingerprint, states, steps) {
  const header = new TextEncoder().encode(canonicalJSON({
    model: fingerprint, steps,
    states: states.map((s) => ({ name: s.name, dtype: "float32", shape: s.shape })),
  }));
  const arrays = states.reduce((n, s) => n + s.data.byteLength, 0);
  const body = new Uint8Array(MAGIC.length + 4 + header.length + arrays);
  body.set(MAGIC);
  new DataView(body.buffer).setUint32(MAGIC.length, header.length, true);
  body.set(header, MAGIC.length + 4);
  let at = MAGIC.length + 4 + header.length;
  for (const s of states) {
    const f = new Float32Array(s.data);                      // a copy, in this machine's order
    const bytes = new Uint8Array(f.buffer);
    if (!LITTLE) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
    body.set(bytes, at);
    at += bytes.length;
  }
  const out = new Uint8Array(body.length + DIGEST);
  out.set(body);
  out.set(await sha256(body), body.length);
  return out;
}

const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new SnapshotError(`a snapshot is bytes (Uint8Array or ArrayBuffer), got ${typeof data}`);
}

function header(body) {
  const n = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(MAGIC.length, true);
  const start = MAGIC.length + 4;
  if (start + n > body.length) throw bad("its header runs past the end");
  let h;
  try { h = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(start, start + n))); }
  catch { throw bad("its header is not JSON"); }
  if (!h || typeof h !== "object" || typeof h.model !== "string" || !Number.isInteger(h.steps) ||
      h.steps < 0 || !Array.isArray(h.states)) throw bad("its header lacks the model, steps or states");
  for (const s of h.states) {
    if (!s || typeof s.name !== "string" || !["float32", "float16", "float64", "int64", "int32"].includes(s.dtype) ||
        !Array.isArray(s.shape) || !s.shape.every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 31)) {
      throw bad("a state in its header is malformed");
    }
  }
  return [h, start + n];
}

/** {states: Map name -> {dtype, shape, data}, steps}; every check edgernn.runtime makes. */
export async function loads(data, fingerprint) {
  const bytes = asBytes(data);
  if (bytes.length < MAGIC.length || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new SnapshotError("this is not an edgernn state snapshot (wrong magic bytes)");
  }
  if (bytes.length < MAGIC.length + 4 + DIGEST) {
    throw new SnapshotError(`the snapshot is truncated (${bytes.length} bytes)`);
  }
  const body = bytes.subarray(0, bytes.length - DIGEST);
  const digest = await sha256(body);
  if (digest.some((b, i) => bytes[body.length + i] !== b)) {
    throw new SnapshotError("the snapshot is corrupt or truncated (checksum mismatch); it cannot be restored");
  }
  const [h, first] = header(body);
  if (h.model !== fingerprint) {
    throw new SnapshotError(`the snapshot belongs to another model (fingerprint ${h.model.slice(0, 12)}..., ` +
                            `this model is ${fingerprint.slice(0, 12)}...); restore it into the model it was taken from`);
  }
  const states = new Map();
  let at = first;
  for (const s of h.states) {
    const count = s.shape.reduce((a, b) => a * b, 1);
    const size = SIZES[s.dtype];
    if (size === undefined) throw new SnapshotError(`the snapshot's state '${s.name}' is ${s.dtype}; the web runtime keeps float32 state`);
    if (at + count * size > body.length) throw bad("its arrays are shorter than its header says");
    const raw = body.slice(at, at + count * size);
    if (!LITTLE) for (let i = 0; i < raw.length; i += 4) raw.subarray(i, i + 4).reverse();
    const values = new Float32Array(raw.buffer);
    if (!values.every(Number.isFinite)) {
      throw new SnapshotError(`the snapshot's state '${s.name}' holds NaN or inf; a stream never reaches such a ` +
                              "state, so it was damaged or made by hand. It cannot be restored");
    }
    states.set(s.name, { dtype: s.dtype, shape: s.shape, data: values });
    at += count * size;
  }
  if (at !== body.length) throw bad("its arrays do not match its header");
  return { states, steps: h.steps };
}

/** The restored states are exactly the model's: same names, shapes and dtypes. */
export function checkFits(states, expected) {
  const got = [...states.keys()].sort(), want = expected.map((s) => s.name).sort();
  if (got.join("\u0000") !== want.join("\u0000")) {
    throw new SnapshotError(`the snapshot holds states ${got.join(", ") || "none"}; this model's are ${want.join(", ")}`);
  }
  for (const s of expected) {
    const g = states.get(s.name);
    if (g.dtype !== "float32" || g.shape.join(",") !== s.shape.join(",")) {
      throw new SnapshotError(`the snapshot's state '${s.name}' is ${g.dtype} (${g.shape.join(", ")}); ` +
                              `this model's is float32 (${s.shape.join(", ")})`);
    }
  }
}
