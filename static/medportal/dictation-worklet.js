// Passes the microphone's samples (the AudioContext runs at 16 kHz) to the page, 128 at a time.
class DictationTap extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("dictation-tap", DictationTap);
