// Peer Calls in the browser: the landing page, the join screen and the call.
// Plain ES modules, no build step; the server embeds web/ into its binary.
// Protocol: docs/protocol.md. This client's own message schema: docs/web-client.md.

import {
  $, el, icon, store, validRoom, validNickname, roomFromInput, randomRoomName, callUrl, copyText,
} from './js/util.js';
import { LocalMedia, LevelMeter, QUALITIES, mediaSupported, screenShareSupported } from './js/media.js';
import { Session, SCREEN_PREFIX, trackKey } from './js/session.js';
import { Stage } from './js/stage.js';
import { Chat } from './js/chat.js';

window.__peerCallsBooted = true;

// ------------------------------------------------------------------ screens and small UI

const SCREENS = ['landing', 'lobby', 'in-call', 'notice'];
function show(screen) {
  for (const s of SCREENS) $(s).hidden = s !== screen;
  document.body.dataset.screen = screen;
}

function toast(text, { error = false, ms = 3500 } = {}) {
  const t = el('div', { class: `toast${error ? ' error' : ''}`, role: error ? 'alert' : 'status', text });
  $('toasts').append(t);
  setTimeout(() => t.remove(), ms);
}

function showError(id, text) {
  const e = $(id);
  e.textContent = text ?? '';
  e.hidden = !text;
}

/** A full-page message with buttons: [{label, primary, onclick | href}]. */
function notice(title, text, actions = [], kind = 'info') {
  $('notice-title').textContent = title;
  $('notice-text').textContent = text;
  $('notice').dataset.kind = kind;
  $('notice-actions').replaceChildren(...actions.map((a) => (a.href
    ? el('a', { class: `button${a.primary ? ' primary' : ''}`, href: a.href, text: a.label })
    : el('button', { type: 'button', class: a.primary ? 'primary' : '', text: a.label, onclick: a.onclick }))));
  show('notice');
}

const homeAction = { label: 'Start page', href: '/' };
const reloadAction = (label = 'Try again') => ({ label, primary: true, onclick: () => location.reload() });

// Never a blank page: uncaught errors are shown.
window.addEventListener('error', (e) => {
  if (e.message) toast(`Unexpected error: ${e.message}`, { error: true, ms: 6000 });
});
window.addEventListener('unhandledrejection', (e) => {
  toast(`Unexpected error: ${e.reason?.message ?? e.reason}`, { error: true, ms: 6000 });
});

/** What this browser lacks for a call, or '' when it has everything. */
function missingFeatures() {
  const missing = [];
  if (!window.RTCPeerConnection) missing.push('WebRTC');
  else if (!window.RTCRtpTransceiver || !('addTransceiver' in RTCPeerConnection.prototype)) missing.push('WebRTC transceivers (Unified Plan)');
  else if (!window.RTCRtpSender || !('replaceTrack' in RTCRtpSender.prototype)) missing.push('RTCRtpSender.replaceTrack');
  if (!window.WebSocket) missing.push('WebSocket');
  if (!window.MediaStream) missing.push('MediaStream');
  return missing.join(', ');
}

function fillQuality(select, media) {
  select.replaceChildren(...Object.entries(QUALITIES).map(([k, q]) => el('option', { value: k, text: q.label })));
  select.value = media.quality;
}

async function fillDevices(media) {
  const devs = await media.devices();
  for (const select of document.querySelectorAll('.device-select')) {
    const kind = select.dataset.kind;
    const list = devs[kind];
    const current = kind === 'audio' ? media.audioDeviceId : media.videoDeviceId;
    select.replaceChildren(...(list.length
      ? list.map((d) => el('option', { value: d.deviceId, text: d.label }))
      : [el('option', { value: '', text: kind === 'audio' ? 'No microphone found' : 'No camera found' })]));
    select.disabled = list.length === 0;
    if (list.some((d) => d.deviceId === current)) select.value = current;
  }
  const out = $('call-output-device');
  const canPick = 'setSinkId' in HTMLMediaElement.prototype && devs.output.length > 0;
  for (const e of document.querySelectorAll('.output-only')) e.hidden = !canPick;
  if (canPick) {
    out.replaceChildren(...devs.output.map((d) => el('option', { value: d.deviceId, text: d.label })));
    out.value = store.get('outputDevice', '') || devs.output[0].deviceId;
  }
}

function recentRooms() {
  try {
    return JSON.parse(store.get('recent', '[]')).filter(validRoom).slice(0, 5);
  } catch {
    return [];
  }
}

function rememberRoom(room) {
  store.set('recent', JSON.stringify([room, ...recentRooms().filter((r) => r !== room)].slice(0, 5)));
}

// ------------------------------------------------------------------ landing page

function initLanding() {
  show('landing');
  const go = (room) => location.assign(`/call/${encodeURIComponent(room)}`);
  $('create').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('call').value.trim();
    if (!name) return go(randomRoomName());
    if (!validRoom(name)) {
      showError('landing-error', 'A room name is 1–64 letters, digits, “-”, “_” or “.” (no spaces).');
      return undefined;
    }
    return go(name);
  });
  $('join-room').addEventListener('submit', (e) => {
    e.preventDefault();
    const room = roomFromInput($('join-name').value);
    if (!room) {
      showError('landing-error', 'That is not a room name or an invite link. A room name is 1–64 letters, digits, “-”, “_” or “.”.');
      return;
    }
    go(room);
  });
  const recent = recentRooms();
  if (recent.length) {
    $('recent').hidden = false;
    $('recent-list').replaceChildren(...recent.map((r) => el('li', {}, el('a', { href: `/call/${encodeURIComponent(r)}`, text: r }))));
  }
}

// ------------------------------------------------------------------ join screen

async function initLobby(room) {
  document.title = `${room} – Peer Calls`;
  $('room-name').textContent = room;
  $('room-name').hidden = false;
  if (!validRoom(room)) {
    notice('Invalid room name', `“${room}” is not a valid room name. A room name is 1–64 letters, digits, “-”, “_” or “.”.`, [{ ...homeAction, primary: true }], 'error');
    return;
  }
  const missing = missingFeatures();
  if (missing) {
    notice('This browser cannot make calls',
      `It lacks ${missing}. Use a current version of Chrome, Edge, Firefox or Safari, on a computer or a phone.`,
      [homeAction], 'error');
    return;
  }
  show('lobby');
  rememberRoom(room);
  $('lobby-room').textContent = room;
  $('lobby-link').value = callUrl(room);
  const nick = $('nickname');
  nick.value = store.get('nickname', '');
  const media = new LocalMedia();
  const meter = new LevelMeter();
  const preview = $('preview');
  fillQuality($('lobby-quality'), media);

  const updatePreview = () => {
    const hasVideo = Boolean(media.videoTrack) && media.videoOn;
    $('preview-tile').dataset.video = hasVideo ? 'on' : 'off';
    setToggle($('lobby-mic'), media.audioOn && Boolean(media.audioTrack), 'mic');
    setToggle($('lobby-cam'), hasVideo, 'cam');
    $('preview-initials').textContent = (nick.value.trim()[0] ?? '?').toUpperCase();
    // A video element with an empty stream would wait for data forever (and hold the page's load event).
    const hasTracks = media.stream.getTracks().length > 0;
    if (hasTracks && preview.srcObject !== media.stream) preview.srcObject = media.stream;
    if (!hasTracks) preview.srcObject = null;
    if (hasTracks) preview.play().catch(() => {});
    meter.setTrack(media.audioTrack);
  };
  const errors = () => {
    const msgs = [...new Set([media.errors.video, media.errors.audio].filter(Boolean))];
    showError('media-error', msgs.join(' '));
  };
  media.on('state', updatePreview);
  media.on('track', updatePreview);
  media.on('error', errors);
  nick.addEventListener('input', updatePreview);
  updatePreview();

  $('lobby-mic').onclick = () => { meter.ensureContext(); media.setAudioOn(!media.audioOn).then(errors); };
  $('lobby-cam').onclick = () => media.setVideoOn(!media.videoOn).then(() => { errors(); fillDevices(media); });
  for (const s of document.querySelectorAll('.device-select')) {
    s.addEventListener('change', () => media.switchDevice(s.dataset.kind, s.value).then(() => fillDevices(media)));
  }
  for (const s of document.querySelectorAll('.quality-select')) {
    s.addEventListener('change', () => {
      media.setQuality(s.value);
      for (const o of document.querySelectorAll('.quality-select')) o.value = s.value;
    });
  }
  document.querySelectorAll('.copy-link').forEach((b) => { b.onclick = () => invite(room, false); });
  navigator.mediaDevices?.addEventListener?.('devicechange', () => fillDevices(media));

  if (!mediaSupported()) {
    showError('media-error', 'Camera and microphone need a secure page (https:// or localhost). You can still join to watch, listen and chat.');
  }
  // Meter animation on the join screen only (stops when the call starts).
  let lobbyMeter = setInterval(() => {
    $('preview-meter').style.transform = `scaleX(${Math.min(1, meter.level() * 3)})`;
  }, 100);
  let started = false;
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (started) return;
    const nickname = nick.value.trim();
    if (!validNickname(nickname)) {
      showError('join-error', 'Enter a name of 1–64 characters.');
      nick.focus();
      return;
    }
    showError('join-error', '');
    started = true;
    $('join').disabled = true;
    store.set('nickname', nickname);
    clearInterval(lobbyMeter);
    lobbyMeter = 0;
    meter.ensureContext(); // a user gesture: audio may start now
    startCall(room, nickname, media, meter);
  });
  if (nick.value) $('join').focus();
  else nick.focus();
  // The level meter's AudioContext may start only after a user gesture.
  document.addEventListener('pointerdown', () => meter.ensureContext(), { once: true });
  await media.start();
  errors();
  await fillDevices(media);
  updatePreview();
}

function setToggle(button, on, what) {
  button.setAttribute('aria-pressed', String(on));
  button.classList.toggle('off', !on);
  button.replaceChildren(icon(on ? what : `${what}-off`));
  button.title = what === 'mic' ? (on ? 'Turn microphone off' : 'Turn microphone on') : (on ? 'Turn camera off' : 'Turn camera on');
  button.setAttribute('aria-label', button.title);
}

async function invite(room, share = true) {
  const url = callUrl(room);
  if (share && navigator.share && matchMedia('(pointer: coarse)').matches) {
    try {
      await navigator.share({ title: 'Join my call', text: `Join the call “${room}”`, url });
      return;
    } catch (err) {
      if (err?.name === 'AbortError') return;
    }
  }
  if (await copyText(url)) toast('Invite link copied. Send it to the people you want to call.');
  else toast(`Copy this link: ${url}`, { ms: 10000 });
}

// ------------------------------------------------------------------ the call

function startCall(room, nickname, media, meter) {
  show('in-call');
  const session = new Session({ room, nickname, media });
  const stage = new Stage($('stage'));
  const peerState = new Map(); // peerId -> {audio, video}
  const names = new Map(); // peerId -> nickname, kept after they leave (chat history)
  const nameOf = (id) => (id === session.peerId ? nickname : names.get(id) ?? 'someone');
  let unread = 0;
  const setUnread = (n) => {
    unread = n;
    $('unread').hidden = n === 0;
    $('unread').textContent = n > 9 ? '9+' : String(n);
  };
  const chat = new Chat({
    session,
    nameOf,
    onUnread: () => {
      if ($('side').hidden || $('panel-chat').hidden) setUnread(unread + 1);
    },
  });
  window.peerCalls = { session, stage, media, chat }; // for tests and debugging

  // Our own tiles.
  const local = stage.ensure('local', { peerId: null, name: nickname, local: true });
  local.el.dataset.local = 'true';
  const syncLocal = () => {
    for (const t of local.stream.getTracks()) if (t !== media.videoTrack) local.removeTrack(t);
    if (media.videoTrack) local.addTrack(media.videoTrack);
    local.setState({ audio: media.audioOn && Boolean(media.audioTrack), video: media.videoOn && Boolean(media.videoTrack) });
    meter.setTrack(media.audioTrack);
  };
  syncLocal();

  // Subscriptions: all audio, and the video of tiles that are on screen.
  session.wants = (info) => info.kind === 'audio' || stage.isVisible(info.peerId, info.streamId);
  stage.on('visibility', () => session.scheduleReconcile());
  stage.on('autoplay-blocked', () => { $('unmute-audio').hidden = false; });
  $('unmute-audio').onclick = () => {
    $('unmute-audio').hidden = true;
    meter.ensureContext();
    for (const t of stage.tiles.values()) t.play();
  };

  // ---- our state, told to the room
  const myState = () => ({
    audio: media.audioOn && Boolean(media.audioTrack),
    video: media.videoOn && Boolean(media.videoTrack),
  });
  const announce = (to) => session.message({ state: myState() }, to);

  // ---- controls
  const micBtn = $('btn-mic');
  const camBtn = $('btn-cam');
  const renderControls = () => {
    const s = myState();
    micBtn.setAttribute('aria-pressed', String(s.audio));
    micBtn.classList.toggle('off', !s.audio);
    micBtn.querySelector('use').setAttribute('href', s.audio ? '#i-mic' : '#i-mic-off');
    micBtn.querySelector('span').textContent = s.audio ? 'Mute' : 'Unmute';
    camBtn.setAttribute('aria-pressed', String(s.video));
    camBtn.classList.toggle('off', !s.video);
    camBtn.querySelector('use').setAttribute('href', s.video ? '#i-cam' : '#i-cam-off');
    camBtn.querySelector('span').textContent = s.video ? 'Stop video' : 'Start video';
  };
  media.on('state', () => {
    renderControls();
    syncLocal();
    announce();
    renderPeople();
  });
  media.on('track', syncLocal);
  media.on('error', ({ message }) => toast(message, { error: true, ms: 7000 }));
  renderControls();
  micBtn.onclick = () => media.setAudioOn(!media.audioOn);
  camBtn.onclick = () => media.setVideoOn(!media.videoOn);
  document.addEventListener('keydown', (e) => {
    if (e.target.closest?.('input, textarea, select') || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'm') micBtn.click();
    if (e.key === 'v') camBtn.click();
  });

  // Screen share: its own stream (id 'screen-…'), published with `publish`, shown as its own tile.
  let screen = null; // {stream, refs, tile}
  const screenMenu = $('screen-menu');
  if (!screenShareSupported()) $('screen-wrap').hidden = true;
  $('btn-screen').onclick = () => {
    if (screen) stopScreen();
    else screenMenu.hidden = !screenMenu.hidden;
  };
  document.addEventListener('click', (e) => {
    if (!e.target.closest('#screen-wrap')) screenMenu.hidden = true;
  });
  $('share-screen').onclick = () => startScreen(false);
  $('share-screen-audio').onclick = () => startScreen(true);
  async function startScreen(withAudio) {
    screenMenu.hidden = true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: withAudio });
    } catch (err) {
      if (err?.name !== 'NotAllowedError' && err?.name !== 'AbortError') toast(`Screen sharing failed: ${err.message}`, { error: true });
      return;
    }
    const streamId = `${SCREEN_PREFIX}${Math.random().toString(36).slice(2, 10)}`;
    const refs = stream.getTracks().map((t) => session.publish(t, streamId, stream));
    if (withAudio && stream.getAudioTracks().length === 0) toast('Sharing without sound: this browser or this screen offers no audio.');
    const tile = stage.ensure('local-screen', { peerId: null, name: nickname, local: true, screen: true });
    const v = stream.getVideoTracks()[0];
    if (v) tile.addTrack(v);
    screen = { stream, refs, tile };
    for (const t of stream.getTracks()) t.addEventListener('ended', () => { if (screen?.stream === stream) stopScreen(); });
    $('btn-screen').setAttribute('aria-pressed', 'true');
    $('btn-screen').querySelector('span').textContent = 'Stop sharing';
  }
  function stopScreen() {
    if (!screen) return;
    const s = screen;
    screen = null;
    for (const ref of s.refs) session.unpublish(ref);
    for (const t of s.stream.getTracks()) t.stop();
    stage.remove('local-screen');
    $('btn-screen').setAttribute('aria-pressed', 'false');
    $('btn-screen').querySelector('span').textContent = 'Share';
  }

  // Devices dialog.
  fillQuality($('call-quality'), media);
  $('btn-settings').onclick = async () => {
    await fillDevices(media);
    showError('settings-error', [media.errors.video, media.errors.audio].filter(Boolean).join(' '));
    if ($('settings').showModal) $('settings').showModal();
    else $('settings').setAttribute('open', '');
  };
  $('call-output-device').addEventListener('change', (e) => {
    store.set('outputDevice', e.target.value);
    applySink(e.target.value);
  });
  const applySink = (id) => {
    if (!id) return;
    for (const t of stage.tiles.values()) if (!t.local) t.video.setSinkId?.(id).catch(() => {});
  };

  $('btn-invite').onclick = () => invite(room);

  // Side panel: chat and people.
  const openPanel = (which) => {
    const side = $('side');
    const same = !side.hidden && !$(`panel-${which}`).hidden;
    side.hidden = same;
    $('in-call').classList.toggle('side-open', !same);
    $('panel-chat').hidden = which !== 'chat';
    $('panel-people').hidden = which !== 'people';
    $('tab-chat').setAttribute('aria-selected', String(which === 'chat'));
    $('tab-people').setAttribute('aria-selected', String(which === 'people'));
    $('btn-chat').classList.toggle('active', !same && which === 'chat');
    $('btn-people').classList.toggle('active', !same && which === 'people');
    if (!same && which === 'chat') {
      setUnread(0);
      if (matchMedia('(pointer: fine)').matches) $('chat-input').focus();
    }
    stage.layout();
  };
  $('btn-chat').onclick = () => openPanel('chat');
  $('btn-people').onclick = () => openPanel('people');
  $('tab-chat').onclick = () => openPanel('chat');
  $('tab-people').onclick = () => openPanel('people');
  $('side-close').onclick = () => {
    $('side').hidden = true;
    $('in-call').classList.remove('side-open');
    $('btn-chat').classList.remove('active');
    $('btn-people').classList.remove('active');
    stage.layout();
  };
  $('chat-input').addEventListener('input', (e) => {
    e.target.style.height = '';
    e.target.style.height = `${Math.min(e.target.scrollHeight, 120)}px`;
  });

  function renderPeople() {
    const rows = [{ id: session.peerId ?? 'me', name: `${nickname} (you)`, state: myState() }];
    for (const [id, name] of session.peers) rows.push({ id, name, state: peerState.get(id) ?? {} });
    $('people-count').textContent = String(rows.length);
    $('btn-people').querySelector('span').textContent = `People (${rows.length})`;
    $('people-list').replaceChildren(...rows.map((r) => el('li', { dataset: { peerId: r.id } },
      el('span', { class: 'person', text: r.name }),
      el('span', { class: `state-icon${r.state.audio === false ? ' off' : ''}`, title: r.state.audio === false ? 'Microphone off' : 'Microphone on' }, icon(r.state.audio === false ? 'mic-off' : 'mic')),
      el('span', { class: `state-icon${r.state.video === false ? ' off' : ''}`, title: r.state.video === false ? 'Camera off' : 'Camera on' }, icon(r.state.video === false ? 'cam-off' : 'cam')))));
  }
  renderPeople();

  // ---- session events
  session.on('conn', ({ state, detail, retryAt }) => renderConn(state, detail, retryAt));
  session.on('joined', ({ peerId, resumed }) => {
    local.peerId = peerId;
    local.el.dataset.peerId = peerId;
    if (resumed) toast('Reconnected.');
    announce();
    renderPeople();
  });
  session.on('reset', () => {
    stage.clearRemote();
    peerState.clear();
    renderPeople();
  });
  session.on('peer-joined', ({ peerId, nickname: name, live }) => {
    names.set(peerId, name);
    const tile = stage.peerTile(peerId, name);
    if (peerState.has(peerId)) tile.setState(peerState.get(peerId));
    if (live) {
      toast(`${name} joined.`);
      announce(peerId); // late joiners learn our microphone and camera state
    }
    renderPeople();
  });
  session.on('peer-left', ({ peerId }) => {
    const name = names.get(peerId);
    stage.removePeer(peerId);
    peerState.delete(peerId);
    chat.peerLeft(peerId);
    if (name && !session.closed) toast(`${name} left.`);
    renderPeople();
  });
  session.on('track-published', (info) => {
    const name = names.get(info.peerId) ?? session.peers.get(info.peerId) ?? 'someone';
    const isNew = !stage.tiles.has(stage.keyFor(info.peerId, info.streamId));
    const tile = stage.trackTile(info, name);
    // A new screen share takes the main area (so it is readable), unless something is pinned.
    if (isNew && tile.screen && !stage.pinned) stage.pin(tile);
    const st = peerState.get(info.peerId);
    if (st && !tile.screen) tile.setState(st);
  });
  session.on('track-unpublished', (info) => {
    if (info.streamId.startsWith(SCREEN_PREFIX)) {
      const still = [...session.tracks.values()].some((t) => t.peerId === info.peerId && t.streamId === info.streamId);
      if (!still) stage.remove(stage.keyFor(info.peerId, info.streamId));
    }
  });
  session.on('track', ({ info, track }) => {
    const name = names.get(info.peerId) ?? 'someone';
    const tile = stage.trackTile(info, name);
    tile.addTrack(track);
    const sink = store.get('outputDevice', '');
    if (sink) tile.video.setSinkId?.(sink).catch(() => {});
  });
  session.on('track-ended', ({ info, track }) => {
    if (!info) return;
    stage.tiles.get(stage.keyFor(info.peerId, info.streamId))?.removeTrack(track);
  });
  session.on('message', ({ from, data }) => {
    if (data && typeof data === 'object' && data.state && typeof data.state === 'object') {
      const st = { audio: data.state.audio !== false, video: data.state.video !== false };
      peerState.set(from, st);
      stage.tiles.get(from)?.setState(st);
      renderPeople();
      return;
    }
    chat.receive(from, data);
  });
  session.on('notice', ({ message, error }) => toast(message, { error }));
  session.on('fatal', ({ code, message }) => {
    endCall(false);
    const title = { room_full: 'This room is full', replaced: 'Call opened elsewhere', server_full: 'The server is full' }[code] ?? 'Could not join';
    const actions = code === 'replaced'
      ? [{ label: 'Use it here', primary: true, onclick: () => location.reload() }, homeAction]
      : [reloadAction(), homeAction];
    notice(title, message, actions, 'error');
  });

  // ---- connection state shown in the header and, while interrupted, as a banner
  let bannerTimer = 0;
  function renderConn(state, detail, retryAt) {
    const conn = $('conn');
    conn.hidden = false;
    conn.dataset.state = state;
    document.body.dataset.conn = state;
    const label = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', closed: 'Disconnected' }[state] ?? state;
    $('conn-text').textContent = label;
    clearInterval(bannerTimer);
    const banner = $('banner');
    const render = () => {
      if (state === 'connected' || state === 'closed') {
        banner.hidden = true;
        return;
      }
      const secs = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : 0;
      const unreachable = state === 'connecting' && detail && !session.everJoined;
      let text = state === 'connecting' ? 'Connecting to the call…' : 'Connection lost. Reconnecting…';
      if (unreachable) text = `Cannot reach the server at ${location.host}.`;
      else if (detail && state === 'reconnecting') text = `Reconnecting: ${detail}.`;
      if (secs > 0) text += ` Next try in ${secs} s.`;
      banner.replaceChildren(el('span', { text }), secs > 0 ? el('button', { type: 'button', class: 'link-btn', text: 'Retry now', onclick: () => session.retryNow() }) : '');
      banner.hidden = false;
    };
    render();
    if (retryAt) bannerTimer = setInterval(render, 1000);
  }
  window.addEventListener('online', () => session.retryNow());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') session.retryNow();
  });

  // ---- who is speaking: remote levels from the receivers, ours from an analyser
  const speakTimer = setInterval(() => updateLevels(), 200);
  async function updateLevels() {
    const now = Date.now();
    local.setLevel(meter.level(), now);
    if (!session.pc) return;
    let needStats = false;
    for (const [key, r] of session.receivers) {
      if (r.track.kind !== 'audio') continue;
      const info = session.tracks.get(key);
      if (!info) continue;
      const tile = stage.tiles.get(stage.keyFor(info.peerId, info.streamId));
      if (!tile) continue;
      const src = r.receiver.getSynchronizationSources?.();
      if (src) tile.setLevel(src.reduce((m, s) => Math.max(m, now - s.timestamp < 1000 ? s.audioLevel ?? 0 : 0), 0), now);
      else needStats = true;
    }
    if (needStats) {
      // Fallback: inbound-rtp audioLevel from getStats (standard field).
      const stats = await session.pc.getStats().catch(() => null);
      stats?.forEach((s) => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'audio' || typeof s.audioLevel !== 'number') return;
        for (const [key, r] of session.receivers) {
          if (r.track.id !== s.trackIdentifier && r.mid !== s.mid) continue;
          const info = session.tracks.get(key);
          stage.tiles.get(info && stage.keyFor(info.peerId, info.streamId))?.setLevel(s.audioLevel, now);
        }
      });
    }
  }

  // ---- leaving
  function endCall(sendLeave) {
    clearInterval(speakTimer);
    clearInterval(bannerTimer);
    stopScreen();
    session.close(sendLeave);
    media.stop();
    meter.close();
    stage.clearRemote();
    $('conn').hidden = true;
  }
  $('btn-hangup').onclick = () => {
    endCall(true);
    notice('You left the call', `Room “${room}”.`, [
      { label: 'Rejoin', primary: true, onclick: () => location.reload() },
      { label: 'New room', href: '/' },
    ]);
  };
  window.addEventListener('pagehide', () => { if (!session.closed) session.close(true); });
  // Back from the browser's page cache: that call has ended; start the page afresh.
  window.addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });

  // Alone in the room: say so, with the invite link at hand.
  const alone = $('alone');
  const renderAlone = () => { alone.hidden = session.closed || session.peers.size > 0 || !session.joined; };
  $('alone-invite').onclick = () => invite(room);
  for (const ev of ['joined', 'peer-joined', 'peer-left', 'reset']) session.on(ev, renderAlone);

  session.start();
}

// ------------------------------------------------------------------ routing

function route() {
  const parts = location.pathname.split('/').filter(Boolean);
  if (parts[0] === 'call' && parts.length >= 2) {
    let room = parts[parts.length - 1];
    try {
      room = decodeURIComponent(room);
    } catch {
      // left encoded: the name check reports it
    }
    initLobby(room).catch((err) => {
      console.error(err);
      notice('The call page failed to start', String(err?.message ?? err), [reloadAction(), homeAction], 'error');
    });
  } else {
    initLanding();
  }
}

route();
