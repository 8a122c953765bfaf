// Direct calls (docs/web-client.md, "Direct calls for two"): while the room has at most
// `meshMax` members (the server's --mesh-max), the two browsers send their cameras and
// microphones to each other peer to peer, and the server relays their signalling only
// (`message`s `{mesh: …}` to the other). The session's own connection to the server stays
// up all along, sending nothing; when one more member joins, or the direct connection
// fails, everyone goes through the server: each sends its tracks there and subscribes, and
// the direct connection closes once the server's video of the other plays (make before
// break). A call that went through the server stays there.

/** A call without end-to-end encryption: nothing to attach. */
const E2EE_NONE = { pcConfig: {}, attach() {} };

/** How long a direct connection may take to connect before the call goes through the server. */
const CONNECT_MS = 10_000;
/** After the server's video of the other plays, the direct connection lingers this long. */
const LINGER_MS = 1500;

/**
 * Whether a room of `members` (counting this one) connects directly, for `meshMax` from
 * `joined` (null: never).
 */
export function meshFits(meshMax, members) {
  return Number.isInteger(meshMax) && meshMax >= 2 && members <= meshMax;
}

/** Which of two members makes the offer: the one whose peer id sorts first. */
export function offersFirst(self, other) {
  return String(self) < String(other);
}

export class Mesh {
  /**
   * `session` (its `message`, `iceServers`, `peerId`, `e2ee`), `media` (LocalMedia: the
   * tracks to send), `onTrack(peerId, track)` (a track of the other arrived),
   * `onChange()` (went through the server, or the direct connection changed).
   */
  constructor({ session, media, onTrack, onChange }) {
    this.session = session;
    this.media = media;
    this.onTrack = onTrack;
    this.onChange = onChange;
    // 'direct' while the call may be peer to peer; 'server' once it goes through the server.
    this.mode = 'direct';
    this.pc = null;
    this.peerId = null; // the other member
    this.pending = []; // ICE candidates before the remote description
    this.connectTimer = 0;
  }

  /** Tracks of `peerId` come directly now: the server's are not wanted. */
  holds(peerId) {
    return this.mode === 'direct' && this.peerId === peerId && this.pc !== null;
  }

  get direct() {
    return this.mode === 'direct';
  }

  /** The room's members changed: `others` are the other members' ids. */
  update(others, meshMax) {
    if (this.mode !== 'direct') return;
    if (!Number.isInteger(meshMax) || meshMax < 2) {
      this.mode = 'server'; // the server does not offer direct calls
      return;
    }
    if (!meshFits(meshMax, others.length + 1)) {
      this.toServer('the room has more members');
      return;
    }
    const other = others[0] ?? null;
    if (other === this.peerId) return;
    this.closePc();
    this.peerId = other;
    if (other && offersFirst(this.session.peerId, other)) this.connect(true);
  }

  /** A `{mesh: …}` message from `from`. */
  async onSignal(from, signal) {
    if (!signal || typeof signal !== 'object') return;
    if (signal.server) {
      // The other could not connect directly (or saw someone join first): follow it.
      this.toServer(`the other asked: ${String(signal.server).slice(0, 80)}`, false);
      return;
    }
    if (this.mode !== 'direct' || from !== this.peerId) return;
    try {
      if (typeof signal.offer === 'string') {
        if (!this.pc) this.connect(false);
        await this.pc.setRemoteDescription({ type: 'offer', sdp: signal.offer });
        this.sendOurTracks();
        await this.flushCandidates();
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
        this.signal({ answer: this.pc.localDescription.sdp });
      } else if (typeof signal.answer === 'string' && this.pc) {
        await this.pc.setRemoteDescription({ type: 'answer', sdp: signal.answer });
        await this.flushCandidates();
      } else if (signal.candidate && typeof signal.candidate === 'object') {
        if (this.pc?.remoteDescription) await this.pc.addIceCandidate(signal.candidate);
        else this.pending.push(signal.candidate);
      }
    } catch (err) {
      console.warn('direct connection', err);
      this.toServer(`the direct connection failed: ${err.message ?? err}`);
    }
  }

  /** Our camera or microphone changed: swap it in (no renegotiation). */
  replaceTrack(kind, track) {
    for (const tr of this.pc?.getTransceivers() ?? []) {
      if (tr.receiver.track?.kind === kind && tr.direction !== 'inactive') tr.sender.replaceTrack(track).catch(() => {});
    }
  }

  /**
   * The call goes through the server from now on; `tell` the other so that it does too.
   * The direct connection stays until the server's video of the other plays (`release`).
   */
  toServer(why, tell = true) {
    if (this.mode !== 'direct') return;
    this.mode = 'server';
    clearTimeout(this.connectTimer);
    console.info(`the call goes through the server: ${why}`);
    if (tell && this.peerId) this.signal({ server: why });
    // Nothing to wait for without a direct connection that carried media.
    if (!this.pc || this.pc.connectionState !== 'connected') this.closePc();
    else this.lingerTimer = setTimeout(() => this.closePc(), 10_000);
    this.onChange();
  }

  /** The server's media of `peerId` plays: the direct connection can go. */
  release(peerId) {
    if (this.mode === 'direct' || peerId !== this.peerId || !this.pc) return;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => this.closePc(), LINGER_MS);
  }

  // ---- the direct connection

  connect(offering) {
    const e2ee = this.session.e2ee ?? E2EE_NONE;
    const pc = new RTCPeerConnection({ iceServers: this.session.iceServers ?? [], ...e2ee.pcConfig });
    this.pc = pc;
    this.pending = [];
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && pc === this.pc) this.signal({ candidate: candidate.toJSON() });
    };
    pc.ontrack = (ev) => {
      if (pc !== this.pc) return;
      e2ee.attach(ev.receiver, 'receive', ev.track.kind, `mesh-${ev.transceiver.mid}`);
      this.onTrack(this.peerId, ev.track);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'failed') this.toServer('the direct connection failed');
      if (pc.connectionState === 'connected') clearTimeout(this.connectTimer);
      this.onChange();
    };
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      if (pc === this.pc && pc.connectionState !== 'connected') this.toServer('the direct connection did not connect');
    }, CONNECT_MS);
    if (!offering) return;
    const stream = this.media.stream;
    for (const kind of ['audio', 'video']) {
      const track = kind === 'audio' ? this.media.audioTrack : this.media.videoTrack;
      const tr = pc.addTransceiver(track ?? kind, { direction: 'sendrecv', streams: [stream] });
      e2ee.attach(tr.sender, 'send', kind);
    }
    pc.createOffer()
      .then((offer) => pc.setLocalDescription(offer))
      .then(() => this.signal({ offer: pc.localDescription.sdp }))
      .catch((err) => this.toServer(`no offer: ${err.message ?? err}`));
  }

  /** The answering side sends its tracks on the transceivers the offer made. */
  sendOurTracks() {
    const e2ee = this.session.e2ee ?? E2EE_NONE;
    for (const tr of this.pc.getTransceivers()) {
      const kind = tr.receiver.track?.kind;
      if (kind !== 'audio' && kind !== 'video') continue;
      tr.direction = 'sendrecv';
      const track = kind === 'audio' ? this.media.audioTrack : this.media.videoTrack;
      if (track) tr.sender.replaceTrack(track).catch(() => {});
      if (tr.sender.setStreams) tr.sender.setStreams(this.media.stream);
      e2ee.attach(tr.sender, 'send', kind);
    }
  }

  async flushCandidates() {
    const pending = this.pending;
    this.pending = [];
    for (const c of pending) await this.pc.addIceCandidate(c).catch(() => {});
  }

  signal(mesh) {
    if (this.peerId) this.session.message({ mesh }, this.peerId);
  }

  closePc() {
    clearTimeout(this.connectTimer);
    clearTimeout(this.lingerTimer);
    if (!this.pc) return;
    const pc = this.pc;
    this.pc = null;
    pc.onicecandidate = null;
    pc.ontrack = null;
    pc.onconnectionstatechange = null;
    pc.close();
    this.onChange();
  }

  close() {
    this.mode = 'server';
    this.closePc();
  }
}
