// The live page's microphone capture (issue 17): 16-bit PCM frames of 20 ms and their peak,
// posted to the page, which sends them over the WebSocket.
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.n = Math.round(sampleRate / 50);
    this.buf = new Int16Array(this.n);
    this.i = 0;
    this.peak = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let k = 0; k < ch.length; k++) {
      const v = Math.max(-1, Math.min(1, ch[k]));
      this.peak = Math.max(this.peak, Math.abs(v));
      this.buf[this.i++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (this.i === this.n) {
        this.port.postMessage({ pcm: this.buf.buffer, peak: this.peak }, [this.buf.buffer]);
        this.buf = new Int16Array(this.n);
        this.i = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}
registerProcessor("pcm-capture", PcmCapture);
