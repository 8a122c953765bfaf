// One call: the signalling WebSocket (reconnecting with backoff, resuming the session with its
// token) and one RTCPeerConnection to the SFU. Protocol: docs/protocol.md.
//
// - The client sends one offer (its camera and microphone transceivers plus a data channel);
//   the server makes every later offer and the client answers them one at a time.
// - The camera and microphone always have a sendonly transceiver from the first offer on, with or
//   without a track: turning the camera off or on, or switching devices, is `replaceTrack` —
//   no renegotiation, and the room's track list does not change.
// - Screen shares are published later (`publish` → server offer with a recvonly m-line carrying
//   our msid → attach the track to that transceiver → answer).
// - Subscriptions follow `wants(track)`, a policy the page sets (visible tiles); `reconcile()`
//   turns the difference into one `subscribe` and one `unsubscribe`.

import { Emitter, randomString, BASE, store } from './util.js';
import { sections } from './sdp.js';

const PING_MS = 10_000;
const SILENCE_MS = 25_000; // no message (not even a pong) this long: the socket is dead
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 8_000;
const SUBSCRIBE_TIMEOUT_MS = 15_000;
const MEDIA_FAILED_RESTART_MS = 5_000;
// A first media connection not up after this long is explained to the person, with what
// to try, instead of an endless "Connecting…".
const ICE_EXPLAIN_MS = 10_000;

/**
 * The one state the page shows, from the socket's and the peer connection's. `media` is the
 * peer connection's state (null without one). Media that has never connected is "blocked"
 * (explained, with what to try) once ICE has failed or has not succeeded for ICE_EXPLAIN_MS:
 * Firefox fails ICE within seconds, Chromium keeps checking. `rejoining`: the socket is being
 * reopened for a fresh session after a media failure, not because the server went away.
 */
export function connState({ closed, signal, media, everConnected, iceStuck, rejoining = false }) {
  if (closed) return 'closed';
  // A fresh session after a failed first media connection is another try at the same
  // problem: the explanation stays up (unless the server itself becomes unreachable).
  if (!everConnected && iceStuck && (signal === 'open' || rejoining)) return 'blocked';
  if (signal !== 'open') return signal;
  if (media === null) return 'connected'; // joined, no media session needed yet
  if (media === 'connected') return 'connected';
  if (!everConnected && media === 'failed') return 'blocked';
  if (media === 'disconnected' || media === 'failed') return 'reconnecting';
  return everConnected ? 'reconnecting' : 'connecting';
}

export const trackKey = (t) => `${t.streamId} ${t.trackId} ${t.kind}`;
const trackRef = (t) => ({ streamId: t.streamId, trackId: t.trackId, kind: t.kind });
const msidKey = (streamId, trackId) => `${streamId} ${trackId}`;
export const SCREEN_PREFIX = 'screen-';

/**
 * The camera goes out in three simulcast layers, lowest first (docs/simulcast.md): a
 * quarter, a half and the whole of the capture. The server forwards each member the one
 * its link and its tile take; a browser leaves out the layers its capture is too small for.
 */
export const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];
export const isScreenStream = (streamId) => streamId.startsWith(SCREEN_PREFIX);

/**
 * Events:
 *  'conn' {state: 'connecting'|'connected'|'reconnecting'|'blocked'|'closed', detail, retryAt}
 *  'joined' {peerId, resumed, allowed, locked}  'reset' (a fresh session: forget all remote state)
 *  'peer-joined' {peerId, nickname}     'peer-left' {peerId}
 *  'track-published' info               'track-unpublished' info
 *  'track' {key, info, track}           'track-ended' {key, info}
 *  'message' {from, data}               'fatal' {code, message}
 *  'notice' {message, error}           'rate-limited' {reason} (the server dropped a message)
 *  'nickname' {nickname} (an invitation fixed ours)   'password-required' {reason, retry}
 *  'muted' {source, by} (a moderator)  'locked' {locked, by}
 * 'fatal' codes beyond the server's: 'kicked', 'room_ended', 'forbidden' (not admitted).
 */
export class Session extends Emitter {
  constructor({ room, nickname, media, accessToken = null, password = null, e2ee = null }) {
    super();
    this.room = room;
    // End-to-end encryption (e2ee.js), when the member typed a passphrase: every sender's
    // and receiver's frames go through its worker.
    this.e2ee = e2ee;
    if (e2ee) {
      e2ee.onState = (mid, state) => {
        for (const [key, r] of this.receivers) if (r.mid === mid) this.emit('e2ee', { key, info: this.tracks.get(key), state });
      };
      e2ee.onCodec = (mimeType) => this.emit('notice', {
        message: `Your camera is encoded as ${mimeType ?? 'a codec'} here, which cannot be encrypted end to end: it is not sent.`,
        error: true,
      });
    }
    this.nickname = nickname;
    // Sent with every join: an invitation (`--auth`), a room password.
    this.accessToken = accessToken;
    this.password = password;
    // What the server lets us do here (`joined`): which controls the page shows.
    this.allowed = { publish: ['camera', 'microphone', 'screen_share', 'screen_share_audio'], subscribe: true, data: true, moderate: false };
    this.locked = false;
    // Microphone or camera a moderator muted: the server took the track back; turning it
    // on again publishes it afresh.
    this.revoked = new Set();
    this.media = media; // LocalMedia
    this.ws = null;
    this.pc = null;
    this.peerId = null;
    this.token = null;
    // In a cluster: where the other nodes are (from `joined`), the one we use now (null:
    // the page's own), and the one our media session is on.
    this.nodes = [];
    this.node = null;
    this.mediaNode = null;
    this.closed = false;
    this.joined = false;
    this.attempt = 0;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.reconcileTimer = 0;
    this.failTimer = 0;
    this.chain = Promise.resolve();
    this.peers = new Map(); // peerId -> nickname (others)
    this.tracks = new Map(); // key -> TrackInfo (others' tracks in the room)
    this.requested = new Map(); // key -> time the subscribe was sent
    this.confirmed = new Set(); // keys the server confirmed with `subscribed`
    this.receivers = new Map(); // key -> {track, receiver, mid}
    this.remoteMids = new Map(); // mid -> section of the server's last description
    this.nextRequestId = 1;
    this.requests = new Map(); // request id -> {at, subscribe|unsubscribe: keys}, until refused or stale
    this.mediaReady = false;
    this.audioSender = null;
    this.videoSender = null;
    this.published = new Map(); // msidKey -> {ref, track, stream, transceiver}
    this.wants = () => true;
    // Whether our camera and microphone go to the server: not during a direct call
    // (mesh.js), whose peer connection carries them instead.
    this.sfuSending = true;
    // Direct calls (`--mesh-max`, from `joined`): null when the server offers none.
    this.meshMax = null;
    this.connState = 'connecting';
    this.mediaState = 'new';
    this.signalState = 'connecting';
    media.on('track', ({ kind, track }) => this.onLocalTrack(kind, track));
  }

  // ---------------------------------------------------------------- signalling socket

  start() {
    this.connect();
  }

  url() {
    if (this.node) return `${this.node.replace(/^http/, 'ws').replace(/\/+$/, '')}/ws`;
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${BASE}/ws`;
  }

  /**
   * The node we tried cannot be reached: in a cluster, the next attempt goes to the next
   * node the server named (ours included, in turn), where the token resumes the session.
   */
  nextNode() {
    if (!this.token || this.nodes.length === 0) return;
    const ring = [null, ...this.nodes];
    const at = ring.indexOf(this.node);
    this.node = ring[(at + 1) % ring.length];
    console.info(`trying ${this.node ?? 'this page\'s server'} next`);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    if (this.closed) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this.scheduleReconnect(`cannot open a WebSocket: ${err.message}`);
      return;
    }
    this.ws = ws;
    this.joined = false;
    this.setSignal(this.token ? 'reconnecting' : 'connecting');
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastRx = Date.now();
      this.sendJoin();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => {
        // A network that vanished without closing the TCP connection (a phone changing
        // networks) shows as silence: give up on this socket and reconnect.
        if (Date.now() - this.lastRx > SILENCE_MS) this.abandonSocket('no answer from the server');
        else this.send({ type: 'ping' });
      }, PING_MS);
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastRx = Date.now();
      this.receive(ev.data, () => ws === this.ws);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      ws.onclose = null;
      clearInterval(this.pingTimer);
      this.ws = null;
      // Never joined on this socket: its node is unreachable (or gone); try another.
      if (!this.joined) this.nextNode();
      this.joined = false;
      this.requests.clear();
      if (this.closed) return;
      if (ev.code === 4000) return; // replaced: handled by the error message
      this.rejoining = ev.code === 4001;
      if (ev.code === 4001) {
        // media_ended: the server dropped our media session; start afresh.
        this.token = null;
        this.dropSession();
      }
      const reason = ev.code === 1012
        ? 'the server is restarting'
        : ev.code === 1006 || !ev.code ? 'connection lost' : `closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`;
      this.scheduleReconnect(reason);
    };
  }

  /** Closes a socket that looks dead and reconnects at once (without waiting for its close event). */
  abandonSocket(reason) {
    const ws = this.ws;
    if (!ws) return;
    this.rejoining = false;
    this.ws = null;
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
    clearInterval(this.pingTimer);
    this.joined = false;
    this.requests.clear();
    this.scheduleReconnect(reason);
  }

  scheduleReconnect(reason) {
    if (this.closed || this.retryTimer) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    const retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.connect();
    }, delay);
    this.setSignal(this.token || this.everJoined ? 'reconnecting' : 'connecting', reason, retryAt);
  }

  /** Retry now (the browser came back online, or the user clicked "retry"). */
  retryNow() {
    if (this.closed || this.ws) return;
    this.connect();
  }

  sendJoin() {
    const join = { type: 'join', room: this.room, nickname: this.nickname };
    if (this.token) join.token = this.token;
    if (this.accessToken) join.access_token = this.accessToken;
    if (this.password) join.password = this.password;
    if (this.redirected) join.here = true; // sent on once already: stay
    this.send(join);
  }

  send(msg) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Sends a request with an id and remembers what it asked for: an `error` carries the id
   * of the request it refuses (see the track_not_found handling).
   */
  request(msg, what) {
    const id = this.nextRequestId++;
    if (this.send({ ...msg, id })) this.requests.set(id, { at: Date.now(), ...what });
  }

  /**
   * Our camera and microphone go to the server (`on`) or not (a direct call carries them):
   * swapped on the same senders, without renegotiation.
   */
  setSfuSending(on) {
    if (on === this.sfuSending) return;
    this.sfuSending = on;
    const put = (sender, track) => sender?.replaceTrack(on ? track ?? null : null).catch(() => {});
    put(this.audioSender, this.media.audioTrack);
    put(this.videoSender, this.media.videoTrack);
  }

  /** Bytes the browser has not sent yet on `via` ('channel' or 'socket'), for pacing files. */
  buffered(via = 'socket') {
    return via === 'channel' ? (this.channel?.bufferedAmount ?? 0) : (this.ws?.bufferedAmount ?? 0);
  }

  /**
   * Waits until `via` has at most `max` bytes unsent (the channel says so with its
   * `bufferedamountlow` event; the socket is polled). False when it closed, or did not
   * drain by `deadline`.
   */
  async drained(via, max, deadline) {
    while (this.buffered(via) > max) {
      if (Date.now() > deadline || !this.pathOpen(via)) return false;
      if (via === 'channel') {
        const ch = this.channel;
        ch.bufferedAmountLowThreshold = max;
        await new Promise((resolve) => {
          const done = () => {
            ch.removeEventListener('bufferedamountlow', done);
            ch.removeEventListener('close', done);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
          ch.addEventListener('bufferedamountlow', done);
          ch.addEventListener('close', done);
        });
      } else {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return true;
  }

  /** Whether app messages can go on `via` now. */
  pathOpen(via) {
    return via === 'channel' ? this.isOpen && this.channel?.readyState === 'open' : this.isOpen;
  }

  /** The path app messages take now: the data channel once it is open, else the socket. */
  get dataPath() {
    return this.pathOpen('channel') ? 'channel' : 'socket';
  }

  /** The data channel: the server's messages on it are handled as the socket's are. */
  openChannel(channel) {
    this.channel = channel;
    channel.onmessage = (ev) => {
      if (channel !== this.channel || typeof ev.data !== 'string') return;
      this.receive(ev.data, () => channel === this.channel);
    };
  }

  /**
   * A server message (JSON text) from the socket or the data channel, handled after the
   * ones before it, while `current()` says its path is still this session's.
   */
  receive(text, current) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      console.warn('malformed message from the server', text);
      return;
    }
    this.chain = this.chain
      .then(() => (this.closed || !current() ? undefined : this.handle(msg)))
      .catch((err) => {
        console.error(`handling ${msg.type} failed`, err);
        this.emit('notice', { message: `Error while handling "${msg.type}": ${err.message ?? err}`, error: true });
      });
  }

  get isOpen() {
    return this.joined && this.ws?.readyState === WebSocket.OPEN;
  }

  // One visible state from the socket and the peer connection.
  setSignal(state, detail = '', retryAt = 0) {
    this.signalState = state;
    this.signalDetail = detail;
    this.retryAt = retryAt;
    this.updateConn();
  }

  updateConn() {
    const state = connState({
      closed: this.closed,
      signal: this.signalState,
      media: this.pc ? this.mediaState : null,
      everConnected: this.everConnected,
      iceStuck: this.iceStuck,
      rejoining: this.rejoining,
    });
    const relayed = (this.iceServers ?? []).some((x) => x.urls?.some((u) => /^turns?:/.test(u)));
    const detail = this.signalState !== 'open' ? this.signalDetail
      : state === 'reconnecting' ? 'media connection interrupted'
        : state === 'blocked' ? (relayed ? 'relayed' : 'direct') : '';
    this.connState = state;
    this.emit('conn', { state, detail, retryAt: this.retryAt, media: this.mediaState });
  }

  // ---------------------------------------------------------------- server messages

  async handle(msg) {
    switch (msg.type) {
      case 'joined': return this.onJoined(msg);
      case 'peer_joined':
        this.peers.set(msg.peer.peerId, msg.peer.nickname);
        this.emit('peer-joined', { ...msg.peer, live: true });
        return;
      case 'peer_left':
        this.peers.delete(msg.peerId);
        for (const [key, info] of this.tracks) if (info.peerId === msg.peerId) this.dropTrack(key);
        this.emit('peer-left', { peerId: msg.peerId });
        return;
      case 'track_published': return this.onTrackPublished(msg.track);
      case 'track_unpublished': {
        const key = trackKey(msg);
        if (msg.peerId === this.peerId) return;
        this.dropTrack(key);
        this.scheduleReconcile();
        return;
      }
      case 'offer': return this.onOffer(msg.sdp);
      case 'answer':
        if (!this.pc) return;
        this.noteRemote(msg.sdp);
        await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        this.mediaReady = true;
        for (const p of this.published.values()) if (!p.sent) this.sendPublish(p);
        this.scheduleReconcile();
        return;
      case 'subscribed':
        for (const t of msg.tracks) {
          const key = trackKey(t);
          this.requested.delete(key);
          this.confirmed.add(key);
        }
        this.scheduleReconcile();
        return;
      case 'unsubscribed':
        for (const t of msg.tracks) {
          const key = trackKey(t);
          this.requested.delete(key);
          this.confirmed.delete(key);
          this.endReceiver(key);
        }
        this.scheduleReconcile();
        return;
      case 'message':
        this.emit('message', { from: msg.from, data: msg.data });
        return;
      case 'pong':
        return;
      case 'redirect': return this.onRedirect(msg);
      case 'kicked':
        this.fatal('kicked', msg.reason ? `${msg.by} removed you from the call: “${msg.reason}”.` : `${msg.by} removed you from the call.`);
        return;
      case 'room_ended':
        this.fatal('room_ended', `${msg.by} ended the call for everyone.`);
        return;
      case 'muted':
        if (msg.source === 'microphone') this.revoked.add('audio');
        if (msg.source === 'camera') this.revoked.add('video');
        this.emit('muted', { source: msg.source, by: msg.by });
        return;
      case 'layers': return this.onLayers(msg);
      case 'room_locked':
        this.locked = Boolean(msg.locked);
        this.emit('locked', { locked: this.locked, by: msg.by });
        return;
      case 'error': return this.onError(msg);
      default:
        console.debug('ignoring message', msg);
    }
  }

  async onJoined(msg) {
    // A session resumed on another node (ours died) has its media to start there afresh.
    const resumed = Boolean(msg.resumed && this.pc && this.node === this.mediaNode);
    if (!resumed) this.dropSession();
    this.mediaNode = this.node;
    this.nodes = msg.nodes ?? [];
    this.joined = true;
    this.everJoined = true;
    this.attempt = 0;
    this.peerId = msg.peerId;
    this.token = msg.token;
    this.iceServers = msg.iceServers ?? [];
    this.meshMax = Number.isInteger(msg.meshMax) ? msg.meshMax : null;
    if (msg.allowed) this.allowed = msg.allowed;
    this.locked = Boolean(msg.locked);
    // An invitation may fix our name to another than the one we sent.
    if (typeof msg.nickname === 'string' && msg.nickname && msg.nickname !== this.nickname) {
      this.nickname = msg.nickname;
      this.emit('nickname', { nickname: msg.nickname });
    }
    this.rejoining = false;
    this.setSignal('open');

    // Our view of the room becomes the server's (events may have been missed while away).
    const present = new Map(msg.peers.map((p) => [p.peerId, p.nickname]));
    for (const id of [...this.peers.keys()]) {
      if (!present.has(id)) {
        this.peers.delete(id);
        this.emit('peer-left', { peerId: id });
      }
    }
    const listed = new Set(msg.tracks.map(trackKey));
    for (const key of [...this.tracks.keys()]) if (!listed.has(key)) this.dropTrack(key);
    this.emit('joined', { peerId: msg.peerId, resumed, peers: msg.peers, allowed: this.allowed, locked: this.locked });
    for (const p of msg.peers) {
      if (this.peers.get(p.peerId) === p.nickname) continue;
      this.peers.set(p.peerId, p.nickname);
      this.emit('peer-joined', { ...p, live: false });
    }
    for (const t of msg.tracks) this.onTrackPublished(t);

    if (resumed) {
      // Requests lost with the old socket: publish what was not sent, unpublish what the
      // server still lists but we stopped. Lost subscribes are retried by reconcile().
      for (const p of this.published.values()) if (!p.sent && this.mediaReady) this.sendPublish(p);
      for (const t of msg.tracks) {
        if (t.peerId !== msg.peerId || !isScreenStream(t.streamId)) continue;
        if (!this.published.has(msidKey(t.streamId, t.trackId))) this.send({ type: 'unpublish', ...trackRef(t) });
      }
      this.scheduleReconcile();
    } else {
      await this.startMedia();
    }
  }

  /** The room is on another node of the cluster: join there, at once, and stay. */
  onRedirect(msg) {
    if (this.redirected || typeof msg.node !== 'string' || !/^https?:\/\//.test(msg.node)) return;
    this.redirected = true;
    this.node = msg.node;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.close();
    }
    clearInterval(this.pingTimer);
    this.connect();
  }

  onTrackPublished(info) {
    if (info.peerId === this.peerId) return;
    const key = trackKey(info);
    if (this.tracks.has(key)) return;
    this.tracks.set(key, info);
    this.emit('track-published', info);
    this.scheduleReconcile();
  }

  dropTrack(key) {
    const info = this.tracks.get(key);
    if (!info) return;
    this.tracks.delete(key);
    this.requested.delete(key);
    this.confirmed.delete(key);
    this.endReceiver(key);
    this.emit('track-unpublished', info);
  }

  onError(msg) {
    const { code, reason } = msg;
    const request = msg.id == null ? undefined : this.requests.get(msg.id);
    if (msg.id != null) this.requests.delete(msg.id);
    switch (code) {
      case 'replaced':
        this.fatal('replaced', 'This call was opened in another window or tab, so it was closed here.');
        return;
      case 'session_expired':
        // Our old session is gone (server restarted, or we were away too long): join afresh.
        this.token = null;
        this.dropSession();
        this.sendJoin();
        return;
      case 'room_full':
        this.fatal(code, `The room “${this.room}” is full. Try again later, or start another room.`);
        return;
      case 'server_full':
        this.fatal(code, 'The server has as many rooms as it can hold right now. Try again later.');
        return;
      case 'invalid_room':
        this.fatal(code, `“${this.room}” is not a valid room name: use 1–64 letters, digits, '-', '_' or '.'.`);
        return;
      case 'forbidden':
        // Before joining: not admitted (the server closes the socket). In a call: one
        // request our grants do not allow; the rest of the call goes on.
        if (!this.joined) this.fatal(code, reason);
        else this.emit('notice', { message: `Not allowed: ${reason}`, error: true });
        return;
      case 'password_required':
        this.emit('password-required', { reason, retry: Boolean(this.password) });
        return;
      case 'invalid_nickname':
        this.fatal(code, 'That nickname is not allowed: use 1–64 characters, no control characters.');
        return;
      case 'media_ended':
        this.emit('notice', { message: 'The media connection was lost; joining again…', error: true });
        this.token = null;
        this.dropSession();
        return; // the server closes the socket (4001); onclose reconnects afresh
      case 'track_not_found':
        // A track went away just before our request. A refused `subscribe` subscribes none of
        // its tracks: forget the refused batch so that reconcile() asks again for the rest.
        if (request?.subscribe) for (const key of request.subscribe) this.requested.delete(key);
        if (request?.unsubscribe) for (const key of request.unsubscribe) this.confirmed.delete(key);
        if (!request) this.requested.clear();
        this.scheduleReconcile();
        return;
      case 'track_exists':
      case 'too_many_tracks':
        for (const p of this.published.values()) if (!p.transceiver) this.emit('notice', { message: `Could not publish: ${reason}`, error: true });
        return;
      case 'rate_limited':
        // Before joining: too many wrong room passwords from this address.
        if (!this.joined) {
          this.emit('password-required', { reason, retry: true });
          return;
        }
        // A message was dropped by the server. Only file transfers send that fast.
        console.warn('rate limited by the server', reason);
        this.emit('rate-limited', { reason });
        return;
      case 'unavailable':
        // The server cannot take us now (at capacity); it closes the socket with 1013 and
        // onclose tries again with the usual backoff.
        this.emit('notice', { message: `The server is busy (${reason}). Trying again…`, error: true });
        return;
      case 'not_joined':
        return;
      default:
        console.warn('server error', code, reason);
        this.emit('notice', { message: `Server: ${reason}`, error: true });
    }
  }

  fatal(code, message) {
    this.emit('fatal', { code, message });
    this.close(false);
  }

  // ---------------------------------------------------------------- media session

  /** Forgets the media session (peer connection, subscriptions). The room view is rebuilt by the next `joined`. */
  dropSession() {
    clearTimeout(this.failTimer);
    clearTimeout(this.iceTimer);
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.oniceconnectionstatechange = null;
      this.pc.ontrack = null;
      this.pc.close();
    }
    this.channel = null;
    const hadState = this.pc || this.tracks.size || this.peers.size;
    this.pc = null;
    this.mediaReady = false;
    this.audioSender = null;
    this.videoSender = null;
    this.mediaState = 'new';
    for (const [k, p] of this.published) {
      p.transceiver = null;
      p.sent = false;
      // A fresh session offers the microphone and camera from the start.
      if (p.replaces) this.published.delete(k);
    }
    this.revoked.clear();
    for (const key of [...this.receivers.keys()]) this.endReceiver(key);
    this.requested.clear();
    this.confirmed.clear();
    this.remoteMids.clear();
    if (hadState) {
      this.tracks.clear();
      this.peers.clear();
      this.emit('reset');
    }
  }

  async startMedia() {
    const pc = new RTCPeerConnection({
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
      // The server's STUN and TURN servers (TURN with credentials for this session).
      iceServers: this.iceServers ?? [],
      // A diagnostic setting: localStorage 'peercalls.icePolicy' = 'relay' sends all media
      // through TURN, to check that a TURN server works.
      iceTransportPolicy: store.get('icePolicy') === 'relay' ? 'relay' : 'all',
      ...(this.e2ee?.pcConfig ?? {}),
    });
    this.pc = pc;
    this.mediaState = 'connecting';
    // Counted from the first attempt: a fresh session after a failure does not restart it.
    this.iceSince ??= Date.now();
    clearTimeout(this.iceTimer);
    this.iceTimer = setTimeout(() => {
      if (pc !== this.pc || this.closed || this.mediaState === 'connected') return;
      this.iceStuck = true;
      this.updateConn();
    }, Math.max(0, this.iceSince + ICE_EXPLAIN_MS - Date.now()));
    pc.onconnectionstatechange = () => this.onPcState(pc);
    pc.oniceconnectionstatechange = () => {
      // Browsers without connectionState (older Firefox) report through ICE.
      if (!('connectionState' in pc)) this.onPcState(pc);
    };
    pc.ontrack = (ev) => this.onTrack(ev);
    // The first offer always has an m-line; app messages (chat, files) go on this channel
    // once it is open, and on the WebSocket before and without it.
    this.openChannel(pc.createDataChannel('peer-calls'));
    // Microphone and camera: one sendonly transceiver each, with or without a track, on one stream
    // (so the server sees them as one participant's audio and video).
    // A receive-only member (or one without a source's grant) offers none for it: the
    // server would refuse it.
    const stream = this.media.stream;
    const may = (source) => this.allowed.publish.includes(source);
    const sending = (track) => (this.sfuSending ? track : null);
    if (may('microphone')) {
      this.audioSender = pc.addTransceiver(sending(this.media.audioTrack) ?? 'audio', { direction: 'sendonly', streams: [stream] }).sender;
      this.e2ee?.attach(this.audioSender, 'send', 'audio');
    }
    if (may('camera')) {
      const init = { direction: 'sendonly', streams: [stream], sendEncodings: CAMERA_LAYERS };
      const tr = pc.addTransceiver(sending(this.media.videoTrack) ?? 'video', init);
      this.videoSender = tr.sender;
      this.e2ee?.preferVp8(tr);
      this.e2ee?.attach(tr.sender, 'send', 'video');
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.send({ type: 'offer', sdp: pc.localDescription.sdp });
    this.updateConn();
  }

  onPcState(pc) {
    if (pc !== this.pc) return;
    const s = pc.connectionState ?? pc.iceConnectionState;
    this.mediaState = s === 'completed' ? 'connected' : s;
    if (this.mediaState === 'connected') {
      this.everConnected = true;
      this.iceStuck = false;
      this.iceSince = null;
      clearTimeout(this.iceTimer);
    }
    clearTimeout(this.failTimer);
    // A first connection that failed stays explained through the fresh attempts that follow.
    if (this.mediaState === 'failed' && !this.everConnected) this.iceStuck = true;
    if (this.mediaState === 'failed') {
      // The server normally ends the session itself (media_ended). If it does not, rejoin afresh.
      this.failTimer = setTimeout(() => {
        if (pc === this.pc && !this.closed) this.rejoinFresh();
      }, MEDIA_FAILED_RESTART_MS);
    }
    this.updateConn();
  }

  /** Leaves and joins again without the token: a new session with a new peer connection. */
  rejoinFresh() {
    this.rejoining = true;
    this.send({ type: 'leave' });
    this.token = null;
    this.dropSession();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
    clearInterval(this.pingTimer);
    this.connect();
  }

  async onOffer(sdp) {
    const pc = this.pc;
    if (!pc) return;
    this.noteRemote(sdp); // before: ontrack fires inside setRemoteDescription
    await pc.setRemoteDescription({ type: 'offer', sdp });
    // Every receiver decrypts from its first frame: before the answer lets media flow.
    for (const tr of pc.getTransceivers()) {
      if (tr.receiver?.track) this.e2ee?.attach(tr.receiver, 'receive', tr.receiver.track.kind, tr.mid);
    }
    // Attach tracks we asked to publish to their new m-lines (recvonly from the server's side).
    for (const sec of this.remoteMids.values()) {
      if (sec.port === 0 || sec.direction !== 'recvonly' || !sec.streamId) continue;
      const p = this.published.get(msidKey(sec.streamId, sec.trackId));
      if (!p || p.transceiver) continue;
      const tr = pc.getTransceivers().find((t) => t.mid === sec.mid);
      if (!tr) continue;
      p.transceiver = tr;
      this.e2ee?.attach(tr.sender, 'send', p.track.kind);
      if (p.replaces === 'audio') this.audioSender = tr.sender;
      if (p.replaces === 'video') this.videoSender = tr.sender;
      await tr.sender.replaceTrack(p.track);
      tr.direction = 'sendonly';
      if (tr.sender.setStreams && p.stream) tr.sender.setStreams(p.stream);
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.send({ type: 'answer', sdp: pc.localDescription.sdp });
  }

  noteRemote(sdp) {
    this.remoteMids.clear();
    for (const sec of sections(sdp)) if (sec.mid !== null) this.remoteMids.set(sec.mid, sec);
  }

  onTrack(ev) {
    const mid = ev.transceiver?.mid;
    const sec = mid !== null && mid !== undefined ? this.remoteMids.get(mid) : null;
    // The m-line's msid names the publisher's track; fall back to the stream the browser made.
    const streamId = sec?.streamId ?? ev.streams?.[0]?.id;
    const trackId = sec?.trackId ?? ev.track.id;
    const key = trackKey({ streamId, trackId, kind: ev.track.kind });
    const info = this.tracks.get(key);
    if (!info) {
      console.debug('track for no known published track', key);
      return;
    }
    this.e2ee?.attach(ev.receiver, 'receive', ev.track.kind, mid);
    this.receivers.set(key, { track: ev.track, receiver: ev.receiver, mid });
    this.emit('track', { key, info, track: ev.track });
  }

  endReceiver(key) {
    const r = this.receivers.get(key);
    if (!r) return;
    this.receivers.delete(key);
    this.emit('track-ended', { key, info: this.tracks.get(key), track: r.track });
  }

  /** The local camera or microphone track changed: swap it into its sender (no renegotiation). */
  onLocalTrack(kind, track) {
    const sender = kind === 'audio' ? this.audioSender : this.videoSender;
    // After hanging up the devices stop too: there is nothing to swap them into. During a
    // direct call the server gets nothing.
    if (!sender || this.closed || !this.sfuSending) return;
    sender.replaceTrack(track).catch((err) => {
      if (this.closed || this.pc?.signalingState === 'closed') return;
      console.warn('replaceTrack failed', err);
      this.emit('notice', { message: `Could not switch the ${kind === 'audio' ? 'microphone' : 'camera'}: ${err.message}`, error: true });
    });
  }

  // ---------------------------------------------------------------- publishing later (screen share)

  /** Publishes `track` as part of stream `streamId` (e.g. 'screen-…'). */
  publish(track, streamId, stream) {
    const ref = { streamId, trackId: `${streamId}-${track.kind}-${randomString(4)}`, kind: track.kind };
    const p = { ref, track, stream, transceiver: null, sent: false };
    this.published.set(msidKey(ref.streamId, ref.trackId), p);
    if (this.mediaReady) this.sendPublish(p);
    return ref;
  }

  /**
   * Our microphone or camera, muted by a moderator (the server took its track back), is
   * turned on again: publish it afresh.
   */
  republish(kind) {
    if (!this.revoked.delete(kind)) return;
    const track = kind === 'audio' ? this.media.audioTrack : this.media.videoTrack;
    if (!track) return;
    const ref = this.publish(track, this.media.stream.id, this.media.stream);
    this.published.get(msidKey(ref.streamId, ref.trackId)).replaces = kind;
  }

  /** Joins again with a room password (the server asked for one). */
  joinWithPassword(password) {
    this.password = password;
    if (this.ws?.readyState === WebSocket.OPEN && !this.joined) this.sendJoin();
    else this.retryNow();
  }

  // ---------------------------------------------------------------- moderation (roomAdmin)

  kick(peerId, reason) {
    this.send(reason ? { type: 'kick', peerId, reason } : { type: 'kick', peerId });
  }

  mute(peerId, source) {
    this.send({ type: 'mute', peerId, source });
  }

  /**
   * No one's tile wants our camera's simulcast layers above `max`: pause them (the
   * encoder stops making them) and keep the others on.
   */
  async onLayers(msg) {
    const sender = this.videoSender;
    if (msg.kind !== 'video' || isScreenStream(msg.streamId) || !sender) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    let changed = false;
    params.encodings.forEach((e, i) => {
      const active = i <= msg.max;
      if (e.active !== active) {
        e.active = active;
        changed = true;
      }
    });
    if (changed) await sender.setParameters(params);
  }

  /** How large each received video is shown (device pixels): `[{streamId, trackId, kind, width, height}]`. */
  tileSizes(tiles) {
    return this.isOpen && this.send({ type: 'tile_sizes', tiles });
  }

  lockRoom(locked) {
    this.send({ type: 'lock_room', locked });
  }

  endRoom() {
    this.send({ type: 'end_room' });
  }

  sendPublish(p) {
    if (this.send({ type: 'publish', ...p.ref })) p.sent = true;
  }

  unpublish(ref) {
    const k = msidKey(ref.streamId, ref.trackId);
    const p = this.published.get(k);
    if (!p) return;
    this.published.delete(k);
    if (p.transceiver) {
      p.transceiver.sender.replaceTrack(null).catch(() => {});
    }
    if (p.sent) this.send({ type: 'unpublish', ...p.ref });
  }

  // ---------------------------------------------------------------- subscriptions

  scheduleReconcile() {
    if (this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = 0;
      this.reconcile();
    }, 30);
  }

  /** Subscribes to wanted tracks and unsubscribes from unwanted ones, each in one message. */
  reconcile() {
    if (!this.mediaReady || !this.isOpen) return;
    const now = Date.now();
    for (const [key, at] of this.requested) {
      if (now - at > SUBSCRIBE_TIMEOUT_MS) this.requested.delete(key); // lost: ask again
    }
    for (const [id, r] of this.requests) {
      if (now - r.at > SUBSCRIBE_TIMEOUT_MS) this.requests.delete(id); // answered long ago
    }
    const sub = [];
    const unsub = [];
    for (const [key, info] of this.tracks) {
      const want = this.wants(info);
      if (want && !this.confirmed.has(key) && !this.requested.has(key)) sub.push(key);
      if (!want && this.confirmed.has(key)) unsub.push(key);
    }
    if (sub.length) {
      for (const key of sub) this.requested.set(key, now);
      this.request({ type: 'subscribe', tracks: sub.map((k) => trackRef(this.tracks.get(k))) }, { subscribe: sub });
    }
    if (unsub.length) {
      for (const key of unsub) {
        this.confirmed.delete(key);
        this.endReceiver(key);
      }
      this.request({ type: 'unsubscribe', tracks: unsub.map((k) => trackRef(this.tracks.get(k))) }, { unsubscribe: unsub });
    }
    if (this.requested.size) {
      // Check again later for requests that were lost with a socket.
      clearTimeout(this.staleTimer);
      this.staleTimer = setTimeout(() => this.scheduleReconcile(), SUBSCRIBE_TIMEOUT_MS + 100);
    }
  }

  /** Whether a track's media is subscribed (or requested). */
  isSubscribed(key) {
    return this.confirmed.has(key) || this.requested.has(key);
  }

  // ---------------------------------------------------------------- app messages

  /** Relays JSON to the room (or one peer). Returns false when not connected. */
  /**
   * Sends an app message to the room (or to the member `to`) on `via` ('channel' or
   * 'socket'; by default the path open now). The path taken, or false when it is closed.
   */
  message(data, to, via = this.dataPath) {
    if (!this.pathOpen(via)) return false;
    const msg = to ? { type: 'message', data, to } : { type: 'message', data };
    if (via === 'socket') return this.send(msg) && via;
    try {
      this.channel.send(JSON.stringify(msg));
      return via;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- leaving

  close(sendLeave = true) {
    if (this.closed) return;
    if (sendLeave) this.send({ type: 'leave' });
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.reconcileTimer);
    clearTimeout(this.staleTimer);
    clearTimeout(this.failTimer);
    clearTimeout(this.iceTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000); // after the queued `leave`
    }
    this.pc?.close();
    this.pc = null;
    this.audioSender = null;
    this.videoSender = null;
    this.updateConn();
  }
}
