// The microphone into a model that hears (a step graph with edgernn's audio front end inside,
// contract.audio set): WebAudio captures at the model's sample rate (the browser resamples),
// an AudioWorklet (hops.worklet.js) cuts the samples into hops, each hop is one step of the
// stream, in order, and the labels become events with runtime/events.py's rules (events.js).
// A chunk graph (voice activity's default) takes `hops` hops a call, 3 (30 ms) unless told:
// a call's fixed cost, not its arithmetic, is most of a one-hop step's.
//
//   const mic = await listen(model.stream(), { onEvent: (e) => show(e) });
//   ...
//   await mic.stop();        // runs the hops already captured, then closes the open event
//
// The browser asks the user for the microphone; the page must come from https or 127.0.0.1.

import { DataError, ModelError } from "./errors.js";
import { Events } from "./events.js";

const CALL_HOPS = 3;          // edgernn.frontend.CALL_HOPS: a chunk graph's hops a call
const PLAIN = { channelCount: 1, echoCancellation: false, noiseSuppression: false,
                autoGainControl: false };              // the samples as the microphone gives them

/** Streams the microphone (or `media`, a MediaStream) through `stream`. Callbacks:
 *  onStep(y, hop, label, ms) for every hop (ms: its call's time, shared by a call's hops),
 *  onEvent({event, start, end}) as events end, onError(e) once if a call fails (the hops
 *  after it are dropped; stop() releases the microphone). hops: hops a call (a chunk graph's; a step graph takes 1). record: keep every hop
 *  in `heard`. */
export async function listen(stream, { onStep = () => {}, onEvent = () => {},
                                       onError = (e) => console.error(e), record = false,
                                       media = null, hops = null } = {}) {
  const audio = stream.model.contract.audio;
  if (!audio) {
    throw new ModelError("this model takes frames of features, not audio: listen() streams " +
                         "models with the audio front end (edgernn train on WAV files or " +
                         "--task vad, then export)");
  }
  const hop = Math.round((audio.sample_rate * audio.hop_ms) / 1000);
  if (hop !== stream.model.frameSize) {
    throw new ModelError(`the model takes ${stream.model.frameSize} samples a step, not one hop ` +
                         `(${hop}); listen() streams files whose frame is one hop`);
  }
  const perCall = hops === null ? (stream.model.chunk ? CALL_HOPS : 1) : hops;
  if (!Number.isInteger(perCall) || perCall < 1 || (perCall > 1 && !stream.model.chunk)) {
    throw new DataError(`hops ${hops}: a step graph takes 1 hop a call, a chunk graph a whole ` +
                        "number of them (edgernn export --graph chunk)");
  }
  if (!navigator.mediaDevices || typeof AudioWorkletNode === "undefined") {
    throw new DataError("this page has no microphone: the browser gives one (getUserMedia, " +
                        "AudioWorklet) only to pages served over https or from 127.0.0.1");
  }
  const input = media || await navigator.mediaDevices.getUserMedia({ audio: PLAIN });
  const context = new AudioContext({ sampleRate: audio.sample_rate });
  await context.audioWorklet.addModule(new URL("./hops.worklet.js", import.meta.url));
  const source = context.createMediaStreamSource(input);
  const node = new AudioWorkletNode(context, "edgernn-hops", { processorOptions: { hop } });
  source.connect(node);
  node.connect(context.destination);                   // pulled by the graph; writes silence
  const events = new Events(audio.hop_ms / 1000, { firstStep: stream.steps });
  const heard = record ? [] : null;
  let queue = Promise.resolve(), failed = null, stopped = false, waiting = [];

  async function call(group) {
    if (failed) return;
    const t0 = performance.now();
    const ys = perCall === 1 ? [await stream.step(group[0])] : await stream.feed(group);
    const ms = performance.now() - t0;
    ys.forEach((y, i) => {
      const label = stream.label(y);
      onStep(y, group[i], label, ms);
      for (const e of events.push(label)) onEvent(e);
    });
  }
  function run() {                                       // the hops waiting, as one call
    const group = waiting;
    waiting = [];
    queue = queue.then(() => call(group)).catch((e) => {
      if (!failed) { failed = e; onError(e); }
    });
  }

  node.port.onmessage = ({ data }) => {
    if (stopped) return;
    if (heard) heard.push(data);
    waiting.push(data);
    if (waiting.length === perCall) run();
  };
  await context.resume();
  return {
    context,
    heard,
    get error() { return failed; },
    /** Stop capturing; the hops already captured still run. The last events, also given
     *  to onEvent. */
    async stop() {
      if (stopped) return [];
      stopped = true;
      node.port.onmessage = null;
      source.disconnect();
      node.disconnect();
      if (!media) input.getTracks().forEach((t) => t.stop());
      await context.close();
      if (waiting.length) run();                          // a last call of fewer hops
      await queue;
      const last = events.close();
      last.forEach(onEvent);
      return last;
    },
  };
}
