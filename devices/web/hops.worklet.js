// An AudioWorklet processor that cuts the microphone's samples into hops: WebAudio renders
// 128 samples at a time, the model steps on `hop` samples (processorOptions.hop, 160 for 10 ms
// at 16 kHz), so it keeps the remainder and posts each whole hop (a Float32Array, first
// channel, samples in [-1, 1]) to the page. It outputs silence.

class Hops extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.hop = options.processorOptions.hop;
    this.buffer = new Float32Array(this.hop);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;                    // no input yet: keep the node alive
    let i = 0;
    while (i < channel.length) {
      const n = Math.min(this.hop - this.filled, channel.length - i);
      this.buffer.set(channel.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === this.hop) {
        this.port.postMessage(this.buffer);
        this.buffer = new Float32Array(this.hop);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("edgernn-hops", Hops);
