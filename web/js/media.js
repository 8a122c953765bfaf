// The local camera and microphone: choosing devices, turning them on and off, and explaining
// every way getUserMedia can fail in words a person understands.

import { Emitter, store } from './util.js';

export const QUALITIES = {
  low: { label: 'Low (360p)', width: 640, height: 360, frameRate: 15 },
  standard: { label: 'Standard (480p)', width: 854, height: 480, frameRate: 30 },
  hd: { label: 'HD (720p)', width: 1280, height: 720, frameRate: 30 },
};

export const mediaSupported = () => Boolean(navigator.mediaDevices?.getUserMedia);
export const screenShareSupported = () => Boolean(navigator.mediaDevices?.getDisplayMedia);

/** A sentence for a getUserMedia failure of `what` ('camera', 'microphone', 'camera and microphone'). */
export function explainMediaError(err, what) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return `Access to the ${what} was denied. Allow it in the browser's site settings (the icon next to the address) and reload — or join without it to watch, listen and chat.`;
    case 'NotFoundError':
    case 'DevicesNotFoundError':
      if (what === 'camera and microphone') return 'No camera or microphone was found. You can still join to watch, listen and chat.';
      return `No ${what} was found. Plug one in, or join without it.`;
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return `The ${what} could not be started: another app may be using it.`;
    case 'OverconstrainedError':
      return `The chosen ${what} is not available any more. Pick another one.`;
    default:
      return `The ${what} could not be started (${err?.name ?? 'error'}: ${err?.message ?? err}).`;
  }
}

/**
 * The local devices. `stream` holds the current camera and microphone tracks (either may be
 * missing). Emits 'track' {kind, track} when the track of a kind changes (null when stopped),
 * 'state' when audioOn/videoOn change, 'error' {kind, message}.
 */
export class LocalMedia extends Emitter {
  constructor() {
    super();
    this.stream = new MediaStream();
    this.audioTrack = null;
    this.videoTrack = null;
    this.audioOn = store.get('audioOn', 'true') === 'true';
    this.videoOn = store.get('videoOn', 'true') === 'true';
    this.audioDeviceId = store.get('audioDevice', '');
    this.videoDeviceId = store.get('videoDevice', '');
    this.quality = QUALITIES[store.get('quality', 'standard')] ? store.get('quality', 'standard') : 'standard';
    this.errors = { audio: '', video: '' };
    this.busy = Promise.resolve();
  }

  audioConstraints() {
    const c = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (this.audioDeviceId) c.deviceId = { exact: this.audioDeviceId };
    return c;
  }

  videoConstraints() {
    const q = QUALITIES[this.quality];
    const c = { width: { ideal: q.width }, height: { ideal: q.height }, frameRate: { ideal: q.frameRate } };
    if (this.videoDeviceId) c.deviceId = { exact: this.videoDeviceId };
    else c.facingMode = 'user';
    return c;
  }

  // Serialises device operations: a second click waits for the first to finish.
  run(fn) {
    const p = this.busy.then(fn, fn);
    this.busy = p.catch(() => {});
    return p;
  }

  /** Gets the microphone (always, muted when audioOn is false) and the camera when videoOn. */
  start() {
    return this.run(async () => {
      if (!mediaSupported()) {
        const msg = 'Camera and microphone need a secure page (https:// or localhost). You can still join to watch, listen and chat.';
        this.errors = { audio: msg, video: msg };
        this.emit('error', { kind: 'both', message: msg });
        return;
      }
      const wantVideo = this.videoOn && !this.videoTrack;
      const wantAudio = !this.audioTrack;
      if (!wantAudio && !wantVideo) return;
      try {
        const s = await navigator.mediaDevices.getUserMedia({
          audio: wantAudio ? this.audioConstraints() : false,
          video: wantVideo ? this.videoConstraints() : false,
        });
        for (const t of s.getTracks()) this.setTrack(t.kind, t);
        this.errors = { audio: '', video: '' };
      } catch (err) {
        // Find out which of the two failed, and keep the one that works.
        const names = {};
        if (wantAudio) await this.acquire('audio').catch((e) => { names.audio = e?.name; });
        if (wantVideo) await this.acquire('video').catch((e) => { names.video = e?.name; });
        if (names.audio && names.audio === names.video) {
          // One sentence for both: "Access to the camera and microphone was denied…"
          const msg = explainMediaError({ name: names.audio, message: err?.message }, 'camera and microphone');
          this.errors = { audio: msg, video: msg };
        }
      }
      this.emitState();
    });
  }

  /** Gets a track of `kind` with the current constraints; records the error when it fails. */
  async acquire(kind) {
    const what = kind === 'audio' ? 'microphone' : 'camera';
    if (!mediaSupported()) throw new Error('no mediaDevices');
    try {
      const s = await navigator.mediaDevices.getUserMedia(
        kind === 'audio' ? { audio: this.audioConstraints() } : { video: this.videoConstraints() },
      );
      const track = s.getTracks()[0];
      this.setTrack(kind, track);
      this.errors[kind] = '';
      return track;
    } catch (err) {
      if (err?.name === 'OverconstrainedError' || (err?.name === 'NotFoundError' && this[`${kind}DeviceId`])) {
        // The remembered device is gone: fall back to the default one once.
        this[`${kind}DeviceId`] = '';
        store.set(`${kind}Device`, null);
        return this.acquire(kind);
      }
      this.errors[kind] = explainMediaError(err, what);
      this.emit('error', { kind, message: this.errors[kind] });
      throw err;
    }
  }

  setTrack(kind, track) {
    const old = kind === 'audio' ? this.audioTrack : this.videoTrack;
    if (old === track) return;
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    if (kind === 'audio') this.audioTrack = track;
    else this.videoTrack = track;
    if (track) {
      if (kind === 'audio') track.enabled = this.audioOn;
      this.stream.addTrack(track);
      const deviceId = track.getSettings?.().deviceId;
      if (deviceId) this[`${kind}DeviceId`] = deviceId;
      track.addEventListener('ended', () => {
        // Unplugged, or revoked by the browser.
        if ((kind === 'audio' ? this.audioTrack : this.videoTrack) !== track) return;
        this.setTrack(kind, null);
        if (kind === 'video') this.videoOn = false;
        else this.audioOn = false;
        this.emit('error', { kind, message: `The ${kind === 'audio' ? 'microphone' : 'camera'} stopped (unplugged or blocked).` });
        this.emitState();
      });
    }
    this.emit('track', { kind, track });
  }

  emitState() {
    this.emit('state', { audio: this.audioOn && Boolean(this.audioTrack), video: this.videoOn && Boolean(this.videoTrack) });
  }

  /** Microphone on/off: the track stays and sends silence while off (instant unmute). */
  setAudioOn(on) {
    return this.run(async () => {
      this.audioOn = on;
      store.set('audioOn', on);
      if (on && !this.audioTrack) await this.acquire('audio').catch(() => { this.audioOn = false; });
      if (this.audioTrack) this.audioTrack.enabled = this.audioOn;
      this.emitState();
    });
  }

  /** Camera on/off: off stops the camera (its light goes out); on starts it again. */
  setVideoOn(on) {
    return this.run(async () => {
      this.videoOn = on;
      store.set('videoOn', on);
      if (!on) this.setTrack('video', null);
      else if (!this.videoTrack) await this.acquire('video').catch(() => { this.videoOn = false; });
      this.emitState();
    });
  }

  /** Switches to another device of `kind`; the new track replaces the old one everywhere. */
  switchDevice(kind, deviceId) {
    return this.run(async () => {
      this[`${kind}DeviceId`] = deviceId;
      store.set(`${kind}Device`, deviceId || null);
      if (kind === 'video' && !this.videoOn) return; // used when the camera is turned on
      // Some phones can open only one camera at a time: stop the old one first.
      if (kind === 'video') this.setTrack('video', null);
      await this.acquire(kind).catch(() => {});
      this.emitState();
    });
  }

  setQuality(name) {
    if (!QUALITIES[name]) return Promise.resolve();
    this.quality = name;
    store.set('quality', name);
    return this.run(async () => {
      const t = this.videoTrack;
      if (!t) return;
      try {
        const { deviceId, facingMode, ...rest } = this.videoConstraints();
        await t.applyConstraints(rest);
      } catch {
        // not all cameras can; the next start uses the new preset
      }
    });
  }

  /** Lists devices: {audio: [{deviceId, label}], video: [...], output: [...]}. */
  async devices() {
    const out = { audio: [], video: [], output: [] };
    if (!navigator.mediaDevices?.enumerateDevices) return out;
    let list = [];
    try {
      list = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return out;
    }
    const n = { audio: 0, video: 0, output: 0 };
    for (const d of list) {
      const kind = d.kind === 'audioinput' ? 'audio' : d.kind === 'videoinput' ? 'video' : d.kind === 'audiooutput' ? 'output' : null;
      if (!kind || !d.deviceId) continue;
      n[kind] += 1;
      const fallback = kind === 'audio' ? `Microphone ${n[kind]}` : kind === 'video' ? `Camera ${n[kind]}` : `Speaker ${n[kind]}`;
      out[kind].push({ deviceId: d.deviceId, label: d.label || fallback });
    }
    return out;
  }

  stop() {
    this.setTrack('audio', null);
    this.setTrack('video', null);
  }
}

/** Level meter for a local audio track (0..1), sampled on demand. Works in every browser. */
export class LevelMeter {
  constructor() {
    this.ctx = null;
    this.source = null;
    this.analyser = null;
    this.track = null;
    this.buf = null;
  }

  /** Call from a user gesture the first time (autoplay rules). */
  ensureContext() {
    if (this.ctx) {
      if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
      return;
    }
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      this.ctx = new Ctx();
      if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    } catch {
      this.ctx = null;
    }
    const t = this.track;
    this.track = null;
    this.setTrack(t);
  }

  setTrack(track) {
    if (track === this.track) return;
    this.track = track;
    this.source?.disconnect();
    this.source = null;
    if (!track || !this.ctx) return;
    try {
      this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 512;
      this.buf = new Float32Array(this.analyser.fftSize);
      this.source.connect(this.analyser);
    } catch {
      this.source = null;
    }
  }

  /** RMS level of the last 10 ms or so, roughly 0..1 like WebRTC's audioLevel. */
  level() {
    if (!this.source || !this.analyser || !this.track?.enabled) return 0;
    if (this.analyser.getFloatTimeDomainData) this.analyser.getFloatTimeDomainData(this.buf);
    else return 0;
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buf.length) * 2);
  }

  close() {
    this.source?.disconnect();
    this.ctx?.close().catch(() => {});
    this.ctx = null;
    this.source = null;
  }
}
