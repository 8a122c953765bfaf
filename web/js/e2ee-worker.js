// The worker that seals the frames this page sends and opens those it receives, for
// end-to-end encryption (e2ee-frame.js). It gets its streams of encoded frames either
// as RTCRtpScriptTransform events (Firefox, Safari, current Chromium) or posted by the
// page (Chromium's createEncodedStreams). It tells the page when a receiver's frames
// start or stop opening, so that a tile can say "can't decrypt" instead of showing
// nothing without a reason.

import { clearBytes, seal, open } from './e2ee-frame.js';

let key = null;
/** Each receiver's last state told to the page: 'ok', 'plain' or 'key'. */
const told = new Map();

function tell(id, state) {
  if (told.get(id) === state) return;
  told.set(id, state);
  self.postMessage({ type: 'state', id, state });
}

/** Whether a video frame is VP8 (a browser that does not say is taken at its word). */
function isVp8(frame) {
  const mime = frame.getMetadata?.().mimeType;
  return !mime || /^video\/vp8$/i.test(mime);
}

let codecTold = false;
function tellCodec(frame) {
  if (codecTold) return;
  codecTold = true;
  self.postMessage({ type: 'codec', mimeType: frame.getMetadata?.().mimeType });
}

/** Pipes `readable` to `writable` through sealing (`side` 'send') or opening ('receive'). */
function run({ readable, writable }, { side, kind, id }) {
  const transform = new TransformStream({
    async transform(frame, out) {
      // Empty frames (audio DTX, a paused sender) carry nothing to hide.
      if (!key || frame.data.byteLength === 0) {
        if (side === 'send' || !key) out.enqueue(frame);
        return;
      }
      const clear = clearBytes(kind, frame.type);
      if (kind === 'video' && !isVp8(frame)) {
        // Only VP8's header is known to be left in the clear: other codecs' frames are
        // not sent (or shown) rather than sent in the clear.
        if (side === 'send') tellCodec(frame);
        return;
      }
      if (side === 'send') {
        frame.data = await seal(key, frame.data, clear);
        out.enqueue(frame);
        return;
      }
      const opened = await open(key, frame.data, clear);
      if (opened.error) {
        // Not to the decoder: what it would make of it is noise.
        tell(id, opened.error);
        return;
      }
      tell(id, 'ok');
      frame.data = opened.data;
      out.enqueue(frame);
    },
  });
  readable.pipeThrough(transform).pipeTo(writable).catch(() => {});
}

self.onmessage = ({ data }) => {
  if (data.type === 'key') key = data.key;
  else if (data.type === 'streams') run(data.streams, data.options);
};

self.onrtctransform = ({ transformer }) => run(transformer, transformer.options);
