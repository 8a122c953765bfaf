// End-to-end encryption for a call: the key from the passphrase typed on the join screen
// (never sent to the server), and a worker (e2ee-worker.js) that every sender and
// receiver of the peer connection sends its encoded frames through. See
// docs/web-client.md, "End-to-end encryption".

import { deriveKey } from './e2ee-frame.js';

/** Whether this browser can transform encoded frames (and so encrypt end to end). */
export function e2eeSupported() {
  if (typeof Worker === 'undefined' || !globalThis.crypto?.subtle) return false;
  return Boolean(globalThis.RTCRtpScriptTransform)
    || Boolean(globalThis.RTCRtpSender && 'createEncodedStreams' in RTCRtpSender.prototype);
}

export class E2ee {
  /** An E2ee for `room` keyed by `passphrase` (PBKDF2 takes a moment). */
  static async create(passphrase, room) {
    return new E2ee(await deriveKey(passphrase, room));
  }

  constructor(key) {
    this.worker = new Worker(new URL('./e2ee-worker.js', import.meta.url), { type: 'module', name: 'e2ee' });
    this.worker.postMessage({ type: 'key', key });
    // A receiver's frames began or stopped opening: (mid, 'ok' | 'plain' | 'key').
    this.onState = () => {};
    // Our camera's frames are of a codec it cannot encrypt (they are not sent).
    this.onCodec = () => {};
    this.worker.onmessage = ({ data }) => {
      if (data?.type === 'state') this.onState(data.id, data.state);
      if (data?.type === 'codec') this.onCodec(data.mimeType);
    };
    this.attached = new WeakSet();
  }

  /**
   * What the peer connection needs: Chromium's older interface (createEncodedStreams)
   * works only on a connection made with `encodedInsertableStreams`.
   */
  get pcConfig() {
    return globalThis.RTCRtpScriptTransform ? {} : { encodedInsertableStreams: true };
  }

  /**
   * Sends `senderOrReceiver`'s frames (`side` 'send' or 'receive', of `kind`) through the
   * worker, once; `id` names a receiver in the worker's reports (its mid).
   */
  attach(senderOrReceiver, side, kind, id = null) {
    if (!senderOrReceiver || this.attached.has(senderOrReceiver)) return;
    this.attached.add(senderOrReceiver);
    const options = { side, kind, id };
    if (globalThis.RTCRtpScriptTransform) {
      senderOrReceiver.transform = new RTCRtpScriptTransform(this.worker, options);
      return;
    }
    const streams = senderOrReceiver.createEncodedStreams();
    this.worker.postMessage({ type: 'streams', streams, options }, [streams.readable, streams.writable]);
  }

  /**
   * Video goes out as VP8 where the browser lets the page choose: its frames' headers are
   * what the encryption leaves in the clear (an H264 frame's NAL units would need their
   * own; its frames are not sent, rather than sent unencrypted).
   */
  preferVp8(transceiver) {
    // Preferences are checked against what the browser can receive (the spec since 2023).
    const caps = globalThis.RTCRtpReceiver?.getCapabilities?.('video');
    if (!caps || !transceiver.setCodecPreferences) return;
    const vp8 = caps.codecs.filter((c) => /^video\/vp8$/i.test(c.mimeType));
    const rest = caps.codecs.filter((c) => /^video\/(rtx|red|ulpfec)$/i.test(c.mimeType));
    if (vp8.length === 0) return;
    try {
      transceiver.setCodecPreferences([...vp8, ...rest]);
    } catch (err) {
      console.warn('VP8 could not be preferred', err);
    }
  }

  close() {
    this.worker.terminate();
  }
}
