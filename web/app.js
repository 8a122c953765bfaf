// Peer Calls: a small, plain web client for the signalling protocol in docs/protocol.md.
// One RTCPeerConnection to the SFU: the client makes the first offer, the server every later one.

const $ = (id) => document.getElementById(id);
const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const NICK_KEY = 'peercalls.nickname';
const PING_MS = 10_000;
const RETRY_MS = 1_000;

const trackKey = (t) => `${t.streamId}\n${t.trackId}\n${t.kind}`;
const trackRef = (t) => ({ streamId: t.streamId, trackId: t.trackId, kind: t.kind });

function setStatus(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
  if (isError) console.warn(text);
}

function setConnState(state) {
  const el = $('conn-state');
  el.textContent = state;
  el.dataset.state = state;
}

// Returns {stream, warning}: audio+video, else audio only, else no media (stream null).
async function getLocalMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: null, warning: 'camera and microphone need HTTPS or localhost: no media' };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: true, video: true }), warning: '' };
  } catch (err) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      return { stream, warning: `camera unavailable (${err.name}): audio only` };
    } catch (err2) {
      return { stream: null, warning: `camera and microphone unavailable (${err2.name}): no media` };
    }
  }
}

// ---- tiles ----

function tileFor(peerId) {
  return [...$('tiles').children].find((t) => t.dataset.peerId === peerId);
}

function addTile(peerId, nickname, local = false) {
  let tile = tileFor(peerId);
  if (!tile) {
    tile = document.createElement('div');
    tile.className = local ? 'tile local' : 'tile';
    tile.dataset.peerId = peerId;
    tile.innerHTML = '<div class="media"></div><div class="label"></div>';
    $('tiles').append(tile);
  }
  tile.querySelector('.label').textContent = local ? `${nickname} (you)` : nickname;
  return tile;
}

function attachStream(tile, stream, muted = false) {
  const media = tile.querySelector('.media');
  let video = [...media.children].find((v) => v.dataset.streamId === stream.id);
  if (!video) {
    video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = muted;
    video.dataset.streamId = stream.id;
    video.srcObject = stream;
    media.append(video);
  }
  video.play().catch(() => {}); // autoplay may wait for a user gesture
  return video;
}

function addChat(name, text, own = false) {
  const log = $('chat-log');
  const line = document.createElement('div');
  line.className = own ? 'chat-line own' : 'chat-line';
  const who = document.createElement('b');
  who.textContent = `${name}: `;
  line.append(who, document.createTextNode(text));
  log.append(line);
  log.scrollTop = log.scrollHeight;
}

// ---- one call: a WebSocket session (resumable) plus one RTCPeerConnection ----

class Call {
  constructor(room, nickname, localStream, mediaWarning) {
    this.room = room;
    this.mediaWarning = mediaWarning; // kept visible in the status line
    this.nickname = nickname;
    this.localStream = localStream;
    this.ws = null;
    this.pc = null;
    this.peerId = null;
    this.token = null;
    this.closed = false;
    this.replaced = false;
    this.chain = Promise.resolve(); // server messages are handled one at a time, in order
    this.peers = new Map(); // peerId -> nickname
    this.tracks = new Map(); // trackKey -> TrackInfo published in the room
    this.streamPeer = new Map(); // streamId -> peerId
    this.wanted = new Set(); // trackKeys requested or subscribed
    this.active = new Set(); // trackKeys confirmed by `subscribed`
    this.pending = []; // TrackRefs not yet sent in a `subscribe`
    this.mediaReady = false; // our first offer has been answered
    this.flushTimer = 0;
    this.pingTimer = 0;
  }

  connect() {
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    this.ws = ws;
    this.info(this.token ? 'Reconnecting…' : 'Connecting…');
    ws.onopen = () => {
      const join = { type: 'join', room: this.room, nickname: this.nickname };
      if (this.token) join.token = this.token;
      this.send(join);
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_MS);
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        setStatus('Received a malformed message from the server', true);
        return;
      }
      this.chain = this.chain
        .then(() => (this.closed ? undefined : this.handle(msg)))
        .catch((err) => setStatus(`Error handling "${msg.type}": ${err.message ?? err}`, true));
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      clearInterval(this.pingTimer);
      if (this.closed) return;
      const why = `Signalling connection closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
      if (this.replaced || !this.token) {
        setStatus(why, true);
        this.hangup(false);
        return;
      }
      setStatus(`${why}; reconnecting…`, true);
      setTimeout(() => this.closed || this.connect(), RETRY_MS);
    };
  }

  info(text) {
    setStatus(this.mediaWarning ? `${text} (${this.mediaWarning})` : text, Boolean(this.mediaWarning));
  }

  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  async handle(msg) {
    switch (msg.type) {
      case 'joined': return this.onJoined(msg);
      case 'peer_joined':
        this.peers.set(msg.peer.peerId, msg.peer.nickname);
        addTile(msg.peer.peerId, msg.peer.nickname);
        return;
      case 'peer_left':
        this.peers.delete(msg.peerId);
        tileFor(msg.peerId)?.remove();
        return;
      case 'track_published': return this.onTrackPublished(msg.track);
      case 'track_unpublished': {
        const key = trackKey(msg);
        this.tracks.delete(key);
        this.wanted.delete(key);
        this.active.delete(key);
        this.pending = this.pending.filter((t) => trackKey(t) !== key);
        return;
      }
      case 'offer': {
        if (!this.pc) throw new Error('offer before the peer connection exists');
        await this.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.send({ type: 'answer', sdp: this.pc.localDescription.sdp });
        return;
      }
      case 'answer':
        if (!this.pc) throw new Error('answer before the peer connection exists');
        await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        this.mediaReady = true;
        this.scheduleFlush();
        return;
      case 'subscribed':
        for (const t of msg.tracks) this.active.add(trackKey(t));
        return;
      case 'unsubscribed':
        for (const t of msg.tracks) {
          this.active.delete(trackKey(t));
          this.wanted.delete(trackKey(t));
        }
        return;
      case 'message':
        if (typeof msg.data?.chat === 'string') addChat(this.peers.get(msg.from) ?? msg.from, msg.data.chat);
        return;
      case 'pong': return;
      case 'error': return this.onError(msg);
      default: console.debug('ignoring message', msg);
    }
  }

  async onJoined(msg) {
    const resumed = msg.resumed && this.pc !== null;
    if (!resumed && this.pc) this.resetSession(); // a fresh session needs a fresh peer connection
    this.peerId = msg.peerId;
    this.token = msg.token;
    const local = $('tiles').querySelector('.tile.local');
    if (local) local.dataset.peerId = msg.peerId;
    // Replace our view of the room with the server's (on resume we may have missed events).
    const present = new Set(msg.peers.map((p) => p.peerId));
    for (const id of this.peers.keys()) if (!present.has(id)) tileFor(id)?.remove();
    this.peers.clear();
    for (const p of msg.peers) {
      this.peers.set(p.peerId, p.nickname);
      addTile(p.peerId, p.nickname);
    }
    this.tracks.clear();
    for (const t of msg.tracks) this.onTrackPublished(t);
    for (const key of this.wanted) {
      if (!this.tracks.has(key)) {
        this.wanted.delete(key);
        this.active.delete(key);
      }
    }
    this.info(resumed ? `Reconnected to ${this.room}` : `Joined ${this.room}`);
    if (resumed) this.scheduleFlush();
    else await this.startMedia();
  }

  async startMedia() {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    setConnState(pc.connectionState);
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      setConnState(pc.connectionState);
      if (pc.connectionState === 'failed') setStatus('Media connection failed', true);
    };
    pc.ontrack = (ev) => this.onTrack(ev);
    pc.createDataChannel('peer-calls'); // so that the first offer always has an m-line
    for (const track of this.localStream?.getTracks() ?? []) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.localStream] });
    }
    await pc.setLocalDescription(await pc.createOffer());
    this.send({ type: 'offer', sdp: pc.localDescription.sdp });
  }

  onTrackPublished(track) {
    const key = trackKey(track);
    this.tracks.set(key, track);
    this.streamPeer.set(track.streamId, track.peerId);
    if (track.peerId === this.peerId || this.wanted.has(key)) return;
    this.wanted.add(key);
    this.pending.push(trackRef(track));
    this.scheduleFlush();
  }

  // Batch the subscriptions of one burst of messages into a single `subscribe`.
  scheduleFlush() {
    if (!this.mediaReady || this.flushTimer || this.pending.length === 0) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = 0;
      // While reconnecting, keep them: the next `joined` flushes again.
      if (this.closed || this.pending.length === 0 || this.ws?.readyState !== WebSocket.OPEN) return;
      this.send({ type: 'subscribe', tracks: this.pending });
      this.pending = [];
    }, 0);
  }

  onTrack(ev) {
    const stream = ev.streams[0];
    const peerId = stream && this.streamPeer.get(stream.id);
    const tile = peerId && tileFor(peerId);
    if (!tile) {
      console.warn('track for an unknown stream', stream?.id, ev.track);
      return;
    }
    const video = attachStream(tile, stream);
    stream.onremovetrack = () => {
      if (stream.getTracks().length === 0) video.remove();
    };
  }

  onError(msg) {
    setStatus(`Server error: ${msg.code}: ${msg.reason}`, true);
    switch (msg.code) {
      case 'replaced':
        this.replaced = true;
        setStatus('This call was taken over by another window', true);
        this.hangup(false);
        return;
      case 'session_expired': // our session is gone: join the room afresh
        this.restart();
        return;
      case 'track_not_found': // a track vanished before our `subscribe`: retry the rest
        for (const key of [...this.wanted]) {
          if (this.active.has(key)) continue;
          this.wanted.delete(key);
          const track = this.tracks.get(key);
          if (track) this.onTrackPublished(track);
        }
        return;
      case 'invalid_room': case 'invalid_nickname': case 'room_full': case 'server_full':
        if (!this.peerId) this.hangup(false);
        return;
    }
  }

  // Forget the session and its peer connection (the room view is rebuilt by the next `joined`).
  resetSession() {
    this.pc?.close();
    this.pc = null;
    clearTimeout(this.flushTimer);
    for (const id of this.peers.keys()) tileFor(id)?.remove();
    Object.assign(this, {
      token: null, peerId: null, mediaReady: false, flushTimer: 0, peers: new Map(), tracks: new Map(),
      streamPeer: new Map(), wanted: new Set(), active: new Set(), pending: [],
    });
    setConnState('disconnected');
  }

  restart() {
    this.resetSession();
    this.ws.onclose = null;
    this.ws.close();
    this.connect();
  }

  hangup(sendLeave = true) {
    if (this.closed) return;
    this.closed = true;
    if (sendLeave) this.send({ type: 'leave' });
    clearInterval(this.pingTimer);
    clearTimeout(this.flushTimer);
    this.ws?.close();
    this.pc?.close();
    this.localStream?.getTracks().forEach((t) => t.stop());
    setConnState('disconnected');
    $('tiles').replaceChildren();
    $('call-view').hidden = true;
    $('join-form').hidden = false;
    $('join').disabled = false;
    if (sendLeave) setStatus('You left the call');
  }
}

// ---- page setup ----

let call = null;

function initCallPage(room) {
  $('landing').hidden = true;
  $('call-page').hidden = false;
  $('room-name').textContent = room;
  document.title = `${room} – Peer Calls`;
  const nick = $('nickname');
  nick.value = localStorage.getItem(NICK_KEY) ?? '';
  if (!ROOM_RE.test(room)) {
    setStatus('Invalid room name: use 1–64 of A–Z a–z 0–9 - _ .', true);
    $('join').disabled = true;
    return;
  }
  setStatus('Choose a nickname and join');

  $('join-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const nickname = nick.value.trim();
    if ([...nickname].length < 1 || [...nickname].length > 64 || CONTROL_RE.test(nickname)) {
      setStatus('Nickname: 1–64 characters, no control characters', true);
      return;
    }
    localStorage.setItem(NICK_KEY, nickname);
    $('join').disabled = true;
    setStatus('Starting camera and microphone…');
    const { stream, warning } = await getLocalMedia();
    $('join-form').hidden = true;
    $('call-view').hidden = false;
    const local = addTile('', nickname, true);
    if (stream) attachStream(local, stream, true);
    call = new Call(room, nickname, stream, warning);
    window.peerCall = call; // for debugging and tests
    call.connect();
  });

  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || !call || call.closed) return;
    if (call.ws?.readyState !== WebSocket.OPEN) {
      setStatus('Not connected: message not sent', true);
      return;
    }
    call.send({ type: 'message', data: { chat: text } });
    addChat(call.nickname, text, true);
    input.value = '';
  });

  $('hangup').addEventListener('click', () => call?.hangup());
  window.addEventListener('pagehide', () => call?.hangup());
}

const parts = location.pathname.split('/').filter(Boolean);
if (parts[0] === 'call' && parts.length >= 2) {
  let room = parts[parts.length - 1];
  try {
    room = decodeURIComponent(room);
  } catch {
    // keep it encoded; the name check below reports it
  }
  initCallPage(room);
}
