// The edgernn contract inside an ONNX file, read from the model's bytes: onnxruntime-web shows
// a session's inputs and outputs but not the model's metadata_props, where the contract is.
// A minimal protobuf walk of ModelProto's top level (metadata_props is field 14, each entry a
// StringStringEntryProto: key = 1, value = 2); the graph is skipped, not parsed.

import { ModelError } from "./errors.js";

export const CONTRACT_KEY = "edgernn.contract";

function varint(bytes, pos) {
  let value = 0, scale = 1, b;
  do {
    if (pos >= bytes.length) throw new ModelError("the model bytes end inside a number: the file is truncated");
    b = bytes[pos++];
    value += (b & 0x7f) * scale;
    scale *= 128;
  } while (b & 0x80);
  return [value, pos];
}

function* fields(bytes, start = 0, end = bytes.length) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = varint(bytes, pos);
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) { let v; [v, pos] = varint(bytes, pos); yield [field, wire, v]; }
    else if (wire === 1) { pos += 8; }
    else if (wire === 5) { pos += 4; }
    else if (wire === 2) {
      let n;
      [n, pos] = varint(bytes, pos);
      if (pos + n > end) throw new ModelError("the model bytes end inside a field: the file is truncated or not ONNX");
      yield [field, wire, bytes.subarray(pos, pos + n)];
      pos += n;
    } else {
      throw new ModelError(`these bytes are not an ONNX model (protobuf wire type ${wire})`);
    }
  }
}

const utf8 = new TextDecoder("utf-8");

/** The model's metadata_props as a Map of key to value. */
export function readMetadata(bytes) {
  const out = new Map();
  for (const [field, wire, value] of fields(bytes)) {
    if (field !== 14 || wire !== 2) continue;
    let key = "", text = "";
    for (const [f, w, v] of fields(value)) {
      if (w !== 2) continue;
      if (f === 1) key = utf8.decode(v);
      else if (f === 2) text = utf8.decode(v);
    }
    out.set(key, text);
  }
  return out;
}

/** The contract (a plain object, as the Python side writes it), or a ModelError saying why not. */
export function readContract(bytes, where = "the model") {
  const text = readMetadata(bytes).get(CONTRACT_KEY);
  if (text === undefined) {
    throw new ModelError(`${where} has no edgernn contract: the web runtime streams files that ` +
                         "edgernn exported (edgernn export), which name their states");
  }
  let contract;
  try { contract = JSON.parse(text); } catch (e) {
    throw new ModelError(`${where}: its contract is not valid JSON (${e.message}); export it again`);
  }
  if (contract.version !== 1) {
    throw new ModelError(`${where}: contract format ${contract.version} is not one this runtime ` +
                         "reads (1); use the edgernn web runtime of the same release");
  }
  return contract;
}
