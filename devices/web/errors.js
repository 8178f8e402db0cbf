// The errors the web runtime raises: the same kinds, and the same messages where they can be,
// as edgernn.runtime in Python.

export class EdgeRNNError extends Error {
  constructor(message) { super(message); this.name = this.constructor.name; }
}
export class ModelError extends EdgeRNNError {}
export class DataError extends EdgeRNNError {}
export class NonFiniteError extends DataError {}
export class SnapshotError extends EdgeRNNError {}
