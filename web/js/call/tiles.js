// The members of the call and their tiles: our own tile, a tile per member and per
// screen share, the tracks each shows, what each member says of its microphone and
// camera, who is speaking, and which video the client subscribes to (what is on screen).

import { $, el, icon, store } from '../util.js';
import { SCREEN_PREFIX } from '../session.js';
import { toast } from '../ui.js';
import { tileQualities } from './quality.js';

/**
 * A member's message about its own microphone and camera (`{state: {audio, video}}`),
 * as a tile shows it; null for any other message.
 */
export function peerStateOf(data) {
  if (!data || typeof data !== 'object' || !data.state || typeof data.state !== 'object') return null;
  return {
    audio: data.state.audio !== false,
    video: data.state.video !== false,
    e2ee: data.state.e2ee === true,
    hand: data.state.hand === true,
  };
}

/**
 * The audio level (0..1, as `audioLevel`) a receiver's decoded audio had between two of its
 * inbound-rtp stats: the root mean square from `totalAudioEnergy` over
 * `totalSamplesDuration`; the last `audioLevel` where the energy is missing; null for the
 * first stats or an interval without samples.
 */
export function intervalLevel(prev, cur) {
  if (typeof cur.totalAudioEnergy !== 'number' || typeof cur.totalSamplesDuration !== 'number') {
    return typeof cur.audioLevel === 'number' ? cur.audioLevel : null;
  }
  if (!prev || typeof prev.totalAudioEnergy !== 'number') return null;
  const seconds = cur.totalSamplesDuration - prev.totalSamplesDuration;
  if (!(seconds > 0)) return null;
  return Math.sqrt(Math.max(0, cur.totalAudioEnergy - prev.totalAudioEnergy) / seconds);
}

/**
 * A moderator's menu on a member's tile: mute its microphone, stop its camera or screen
 * share, remove it from the call (with a reason it is shown).
 */
function addModeration(call, tile, peerId) {
  const actions = tile.el.querySelector('.tile-actions');
  if (!actions || actions.querySelector('.mod-btn')) return;
  const { session } = call;
  const menu = el('div', { class: 'menu mod-menu', role: 'menu', hidden: true });
  const item = (text, onclick) => el('button', {
    type: 'button',
    role: 'menuitem',
    text,
    onclick: (e) => {
      e.stopPropagation();
      menu.hidden = true;
      onclick();
    },
  });
  const name = () => call.names.get(peerId) ?? 'this member';
  menu.append(
    item('Mute microphone', () => session.mute(peerId, 'microphone')),
    item('Stop camera', () => session.mute(peerId, 'camera')),
    item('Stop screen share', () => session.mute(peerId, 'screen_share')),
    item('Remove from the call', () => askKick(session, peerId, name())),
  );
  const button = el('button', {
    type: 'button',
    class: 'icon-btn mod-btn',
    title: 'Moderate',
    'aria-label': `Moderate ${name()}`,
    'aria-haspopup': 'menu',
    onclick: (e) => {
      e.stopPropagation();
      menu.hidden = !menu.hidden;
    },
  }, icon('more'));
  document.addEventListener('click', () => { menu.hidden = true; });
  actions.append(button);
  tile.el.append(menu);
}

/** Asks for the reason, then removes the member. */
function askKick(session, peerId, name) {
  const dialog = $('kick-dialog');
  $('kick-title').textContent = `Remove ${name} from the call`;
  $('kick-reason').value = '';
  $('kick-form').onsubmit = () => session.kick(peerId, $('kick-reason').value.trim() || undefined);
  $('kick-cancel').onclick = () => dialog.close();
  dialog.showModal?.() ?? dialog.setAttribute('open', '');
}

/** The tiles of the received videos and their sizes in device pixels (64 at most). */
export function tileSizes(session, stage, dpr) {
  const tiles = [];
  for (const [key, r] of session.receivers) {
    const info = session.tracks.get(key);
    if (r.track.kind !== 'video' || !info || tiles.length === 64) continue;
    const tile = stage.tiles.get(stage.keyFor(info.peerId, info.streamId));
    if (!tile) continue;
    tiles.push({
      streamId: info.streamId,
      trackId: info.trackId,
      kind: 'video',
      width: Math.round(tile.el.clientWidth * dpr),
      height: Math.round(tile.el.clientHeight * dpr),
    });
  }
  return tiles;
}

/** Wires the tiles to the call's session; returns what stops it. */
export function wireTiles(call) {
  const { session, stage, media, meter, names, peerState, chat } = call;

  // Our own tile.
  const local = stage.ensure('local', { peerId: null, name: call.nickname, local: true });
  local.el.dataset.local = 'true';
  call.syncLocal = () => {
    for (const t of local.stream.getTracks()) if (t !== media.videoTrack) local.removeTrack(t);
    if (media.videoTrack) local.addTrack(media.videoTrack);
    local.setState({ audio: media.audioOn && Boolean(media.audioTrack), video: media.videoOn && Boolean(media.videoTrack) });
    meter.setTrack(media.audioTrack);
  };
  call.syncLocal();

  // Subscriptions: all audio, and the video of tiles that are on screen.
  // A direct call's member's camera and microphone come peer to peer (mesh.js), not from
  // the server.
  session.wants = (info) => !(call.mesh?.holds(info.peerId) && !info.streamId.startsWith(SCREEN_PREFIX))
    && (info.kind === 'audio' || stage.isVisible(info.peerId, info.streamId));
  stage.on('visibility', () => session.scheduleReconcile());
  stage.on('autoplay-blocked', () => { $('unmute-audio').hidden = false; });
  $('unmute-audio').onclick = () => {
    $('unmute-audio').hidden = true;
    meter.ensureContext();
    for (const t of stage.tiles.values()) t.play();
  };

  session.on('joined', ({ peerId, resumed }) => {
    local.peerId = peerId;
    local.el.dataset.peerId = peerId;
    if (resumed) toast('Reconnected.');
    call.announce();
    call.renderPeople();
  });
  // What a member says of itself, on one of its tiles: its microphone and camera (on its
  // camera's tile), and whether it encrypts end to end. A member who encrypts, seen by a
  // page without the passphrase, would be noise; with one, this page's worker tells what
  // it makes of each track ('e2ee' below).
  function showState(tile, st) {
    if (!tile.screen) {
      tile.setState(st);
      tile.setHand(st.hand);
    }
    if (!session.e2ee) tile.setE2ee(st.e2ee ? 'locked' : null);
  }
  session.on('reset', () => {
    stage.clearRemote();
    peerState.clear();
    call.renderPeople();
  });
  session.on('peer-joined', ({ peerId, nickname: name, live }) => {
    names.set(peerId, name);
    const tile = stage.peerTile(peerId, name);
    if (session.allowed.moderate) addModeration(call, tile, peerId);
    if (peerState.has(peerId)) showState(tile, peerState.get(peerId));
    if (live) {
      toast(`${name} joined.`);
      call.announce(peerId); // late joiners learn our microphone and camera state
    }
    call.renderPeople();
  });
  session.on('peer-left', ({ peerId }) => {
    const name = names.get(peerId);
    stage.removePeer(peerId);
    peerState.delete(peerId);
    chat.peerLeft(peerId);
    if (name && !session.closed) toast(`${name} left.`);
    call.renderPeople();
  });
  session.on('track-published', (info) => {
    const name = names.get(info.peerId) ?? session.peers.get(info.peerId) ?? 'someone';
    const isNew = !stage.tiles.has(stage.keyFor(info.peerId, info.streamId));
    const tile = stage.trackTile(info, name);
    // A new screen share takes the main area (so it is readable), unless something is pinned.
    if (isNew && tile.screen && !stage.pinned) stage.pin(tile);
    const st = peerState.get(info.peerId);
    if (st) showState(tile, st);
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
    // Moving from a direct call to the server: the direct track plays on until the
    // server's has media (make before break), then the direct connection goes.
    const direct = call.mesh?.pc && call.mesh.peerId === info.peerId && !tile.screen;
    if (direct && track.muted) {
      track.addEventListener('unmute', () => {
        tile.addTrack(track);
        if (track.kind === 'video') call.mesh.release(info.peerId);
      }, { once: true });
    } else {
      tile.addTrack(track);
    }
    const sink = store.get('outputDevice', '');
    if (sink) tile.video.setSinkId?.(sink).catch(() => {});
  });
  session.on('e2ee', ({ info, state }) => {
    if (info) stage.tiles.get(stage.keyFor(info.peerId, info.streamId))?.setE2ee(state === 'ok' ? null : state);
  });
  session.on('track-ended', ({ info, track }) => {
    if (!info) return;
    stage.tiles.get(stage.keyFor(info.peerId, info.streamId))?.removeTrack(track);
  });
  session.on('message', ({ from, data }) => {
    if (data?.mesh) {
      call.mesh?.onSignal(from, data.mesh);
      return;
    }
    const st = peerStateOf(data);
    if (st) {
      if (st.hand && !peerState.get(from)?.hand) toast(`${names.get(from) ?? 'Someone'} raised a hand.`);
      peerState.set(from, st);
      for (const t of stage.tilesOf(from)) showState(t, st);
      call.renderPeople();
      return;
    }
    chat.receive(from, data);
  });

  // How large each received video is shown: the server sends the simulcast layer that
  // fills its tile (docs/simulcast.md). Told when it changes, and again after a reconnect.
  let sizesSent = '';
  session.on('joined', () => { sizesSent = ''; });
  const sizeTimer = setInterval(() => {
    const tiles = tileSizes(session, stage, window.devicePixelRatio || 1);
    const text = JSON.stringify(tiles);
    if (text !== sizesSent && session.tileSizes(tiles)) sizesSent = text;
  }, 1000);

  // Who is speaking: remote levels from the receivers' stats, ours from an analyser.
  // A remote level is the average over the last poll (from the decoded audio's energy),
  // not the level of the last packet: a short sound between two polls still counts.
  const energies = new Map();
  const speakTimer = setInterval(() => updateLevels(), 200);
  async function updateLevels() {
    const now = Date.now();
    local.setLevel(meter.level(), now);
    if (!session.pc) return;
    const stats = await session.pc.getStats().catch(() => null);
    const seen = new Set();
    stats?.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'audio') return;
      for (const [key, r] of session.receivers) {
        if (r.track.id !== s.trackIdentifier && r.mid !== s.mid) continue;
        seen.add(key);
        const level = intervalLevel(energies.get(key), s);
        energies.set(key, s);
        const info = session.tracks.get(key);
        if (level !== null) stage.tiles.get(info && stage.keyFor(info.peerId, info.streamId))?.setLevel(level, now);
      }
    });
    for (const key of energies.keys()) if (!seen.has(key)) energies.delete(key);
  }
  // Each tile's connection quality, every 2 s.
  const qualityStats = new Map();
  const qualityTimer = setInterval(async () => {
    const report = await session.pc?.getStats().catch(() => null);
    if (!report) return;
    for (const [key, level, detail] of tileQualities(report, session, stage, qualityStats)) {
      stage.tiles.get(key)?.setQuality(level, detail);
    }
  }, 2000);

  // Speaker view or the grid (remembered), and pages of tiles.
  const viewBtn = $('view-toggle');
  const renderView = () => {
    const on = stage.speakerView;
    viewBtn.setAttribute('aria-pressed', String(on));
    viewBtn.setAttribute('aria-label', on ? 'Grid view' : 'Speaker view');
    viewBtn.title = on ? 'Grid view (S)' : 'Speaker view (S)';
    viewBtn.querySelector('use').setAttribute('href', on ? '#i-grid' : '#i-speaker');
  };
  viewBtn.onclick = () => {
    stage.setSpeakerView(!stage.speakerView);
    store.set('view', stage.speakerView ? 'speaker' : 'grid');
    renderView();
  };
  const keys = (e) => {
    if (e.target.closest?.('input, textarea, select, dialog') || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 's') viewBtn.click();
    if (e.key === 'PageDown') stage.turnPage(1);
    if (e.key === 'PageUp') stage.turnPage(-1);
  };
  document.addEventListener('keydown', keys);
  if (store.get('view') === 'speaker') stage.setSpeakerView(true);
  renderView();
  // Speaker view shows someone as soon as there is someone.
  session.on('track', () => { if (stage.speakerView && !stage.pinned) stage.setSpeakerView(true); });

  return {
    stop: () => {
      clearInterval(speakTimer);
      clearInterval(sizeTimer);
      clearInterval(qualityTimer);
      document.removeEventListener('keydown', keys);
    },
  };
}
