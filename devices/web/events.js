// Events from a label every hop, as edgernn.runtime.events makes them in Python (the rules are
// silero-vad's get_speech_timestamps defaults; runtime/events.py explains them). The two are
// held equal by tests/web/test_microphone.py: change them together.
//
//   const found = new Events(0.01);
//   for (const e of found.push(stream.label(y))) show(e);   // {event, start, end} in seconds
//   for (const e of found.close()) show(e);                 // the stream ended

export const QUIET = new Set(["silence", "_silence_", "_unknown_"]);

// Python's round(x, digits) for the values met here (multiples of the hop): half to even is
// never reached, so rounding the decimal string is the same.
const round = (x, digits) => Number(x.toFixed(digits));

export class Events {
  constructor(hopS, { bridgeS = 0.1, minS = 0.25, firstStep = 0 } = {}) {
    this.hopS = hopS;
    this.bridge = Math.max(1, Math.round(bridgeS / hopS));     // quiet hops an event survives
    this.shortest = Math.max(1, Math.round(minS / hopS));
    this.step = firstStep;
    this._open = null;                                        // [label, first hop, last hop]
  }

  /** The label of the next hop: the events that ended with it. */
  push(label) {
    const t = this.step++;
    const out = [];
    if (this._open !== null) {
      if (label === this._open[0]) { this._open[2] = t; return out; }
      if (!QUIET.has(label) || t - this._open[2] >= this.bridge) out.push(...this._close());
    }
    if (this._open === null && !QUIET.has(label)) this._open = [label, t, t];
    return out;
  }

  /** The stream ended: the event still open, if any. */
  close() { return this._close(); }

  _close() {
    const opened = this._open;
    this._open = null;
    if (opened === null || opened[2] - opened[1] + 1 < this.shortest) return [];
    const [label, first, last] = opened;
    return [{ event: label, start: round(round(first * this.hopS, 6), 3),
              end: round(round((last + 1) * this.hopS, 6), 3) }];
  }
}
