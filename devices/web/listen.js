// The microphone into a model that hears (a step graph with edgernn's audio front end inside,
// contract.audio set): WebAudio captures at the model's sample rate (the browser resamples),
// an AudioWorklet (hops.worklet.js) cuts the samples into hops, each hop is one step of the
// stream, in order, and the labels become events with runtime/events.py's rules (events.js).
//
//   const mic = await listen(model.stream(), { onEvent: (e) => show(e) });
//   ...
//   await mic.stop();        // runs the hops already captured, then closes the open event
//
// The browser asks the user for the microphone; the page must come from https or 127.0.0.1.

import { DataError, ModelError } from "./errors.js";
import { Events } from "./events.js";

const PLAIN = { channelCount: 1, echoCancellation: false, noiseSuppression: false,
                autoGainControl: false };              // the samples as the microphone gives them

/** Streams the microphone (or `media`, a MediaStream) through `stream`. Callbacks:
 *  onStep(y, hop, label, ms) for every hop, onEvent({event, start, end}) as events end,
 *  onError(e) once if a step fails (listening stops). record: keep every hop in `heard`. */
export async function listen(stream, { onStep = () => {}, onEvent = () => {},
                                       onError = (e) => console.error(e), record = false,
                                       media = null } = {}) {
  const audio = stream.model.contract.audio;
  if (!audio) {
    throw new ModelError("this model takes frames of features, not audio: listen() streams " +
                         "models with the audio front end (edgernn train on WAV files or " +
                         "--task vad, then export)");
  }
  const hop = Math.round((audio.sample_rate * audio.hop_ms) / 1000);
  if (hop !== stream.model.frameSize) {
    throw new ModelError(`the model takes ${stream.model.frameSize} samples a step, not one hop ` +
                         `(${hop}); listen() streams step graphs of one hop`);
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
  let queue = Promise.resolve(), failed = null, stopped = false;

  async function stepOn(samples) {
    if (failed) return;
    const t0 = performance.now();
    const y = await stream.step(samples);
    const label = stream.label(y);
    onStep(y, samples, label, performance.now() - t0);
    for (const e of events.push(label)) onEvent(e);
  }

  node.port.onmessage = ({ data }) => {
    if (stopped) return;
    if (heard) heard.push(data);
    queue = queue.then(() => stepOn(data)).catch((e) => {
      if (!failed) { failed = e; onError(e); }
    });
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
      await queue;
      const last = events.close();
      last.forEach(onEvent);
      return last;
    },
  };
}
