// The call's controls: microphone and camera (buttons and the m/v keys), raising a hand
// (h), screen share,
// the devices dialog, the invite link, and the side panel with the chat and the list of
// people.

import { $, el, icon, store } from '../util.js';
import { SCREEN_PREFIX } from '../session.js';
import { screenShareSupported } from '../media.js';
import { toast, showError, invite, fillQuality, fillDevices } from '../ui.js';
import { SOURCE_NAMES } from '../access.js';

/**
 * Which controls a member sees, from what the server allows it (`joined`): none it may
 * not use, so that nothing shows that would only be refused.
 */
export function visibleControls(allowed, screenSupported = true) {
  const may = (s) => allowed.publish.includes(s);
  return {
    mic: may('microphone'),
    cam: may('camera'),
    screen: screenSupported && may('screen_share'),
    screenAudio: may('screen_share_audio'),
    devices: may('microphone') || may('camera'),
    chat: allowed.data,
    // A raised hand is told in the member's state message: app data.
    hand: allowed.data,
    moderate: allowed.moderate,
  };
}

/** The people list's rows: this member first, then the others with their state. */
export function peopleRows({ selfId, nickname, selfState, peers, peerState }) {
  const rows = [{ id: selfId ?? 'me', name: `${nickname} (you)`, state: selfState }];
  for (const [id, name] of peers) rows.push({ id, name, state: peerState.get(id) ?? {} });
  // Raised hands first, in the order of the list otherwise.
  const rest = rows.slice(1);
  return [rows[0], ...rest.filter((r) => r.state.hand), ...rest.filter((r) => !r.state.hand)];
}

/** Wires the controls to the call; returns `stopScreen` (hanging up ends a share). */
export function wireControls(call) {
  const { session, stage, media, room } = call;

  // ---- microphone and camera
  const micBtn = $('btn-mic');
  const camBtn = $('btn-cam');
  const handBtn = $('btn-hand');
  const renderControls = () => {
    const s = call.myState();
    micBtn.classList.toggle('off', !s.audio);
    micBtn.querySelector('use').setAttribute('href', s.audio ? '#i-mic' : '#i-mic-off');
    micBtn.querySelector('span').textContent = s.audio ? 'Mute' : 'Unmute';
    micBtn.title = `${s.audio ? 'Mute' : 'Unmute'} (M)`;
    camBtn.classList.toggle('off', !s.video);
    camBtn.querySelector('use').setAttribute('href', s.video ? '#i-cam' : '#i-cam-off');
    camBtn.querySelector('span').textContent = s.video ? 'Stop video' : 'Start video';
    camBtn.title = `${s.video ? 'Stop video' : 'Start video'} (V)`;
    handBtn.classList.toggle('active', s.hand);
    handBtn.setAttribute('aria-pressed', String(s.hand));
    handBtn.querySelector('span').textContent = s.hand ? 'Lower hand' : 'Raise hand';
    handBtn.title = `${s.hand ? 'Lower hand' : 'Raise hand'} (H)`;
    stage.tiles.get('local')?.setHand(s.hand);
  };
  media.on('state', () => {
    renderControls();
    call.syncLocal();
    call.announce();
    call.renderPeople();
  });
  media.on('track', () => call.syncLocal());
  media.on('error', ({ message }) => toast(message, { error: true, ms: 7000 }));
  renderControls();
  // Turning on a microphone or camera a moderator muted publishes it afresh.
  micBtn.onclick = () => media.setAudioOn(!media.audioOn).then(() => { if (media.audioOn) session.republish('audio'); });
  camBtn.onclick = () => media.setVideoOn(!media.videoOn).then(() => { if (media.videoOn) session.republish('video'); });
  document.addEventListener('keydown', (e) => {
    if (e.target.closest?.('input, textarea, select, dialog') || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'm' && !micBtn.hidden) micBtn.click();
    if (e.key === 'v' && !camBtn.hidden) camBtn.click();
    if (e.key === 'h' && !handBtn.hidden) handBtn.click();
  });
  handBtn.onclick = () => {
    call.hand = !call.hand;
    renderControls();
    call.announce();
    call.renderPeople();
  };

  // ---- what this member may do: the controls it may not use are not shown
  session.on('joined', ({ allowed, locked }) => {
    const v = visibleControls(allowed, screenShareSupported());
    micBtn.hidden = !v.mic;
    camBtn.hidden = !v.cam;
    handBtn.hidden = !v.hand;
    $('screen-wrap').hidden = !v.screen;
    $('share-screen-audio').hidden = !v.screenAudio;
    $('btn-settings').hidden = !v.devices;
    $('chat-form').hidden = !v.chat;
    $('moderate-wrap').hidden = !v.moderate;
    renderLock(locked);
  });
  // A moderator muted us: the server stopped forwarding it; the page says so and shows it off.
  session.on('muted', ({ source, by }) => {
    toast(`${by} muted your ${SOURCE_NAMES[source] ?? source}.`, { ms: 6000 });
    if (source === 'microphone') media.setAudioOn(false);
    if (source === 'camera') media.setVideoOn(false);
    if (source === 'screen_share' || source === 'screen_share_audio') stopScreen();
  });

  // ---- moderation (roomAdmin): lock the room, end the call for everyone
  const modMenu = $('moderate-menu');
  const showModMenu = (open) => {
    modMenu.hidden = !open;
    $('btn-moderate').setAttribute('aria-expanded', String(open));
  };
  $('btn-moderate').onclick = () => showModMenu(modMenu.hidden);
  document.addEventListener('click', (e) => {
    if (!e.target.closest('#moderate-wrap')) showModMenu(false);
  });
  function renderLock(locked) {
    $('lock-room').textContent = locked ? 'Unlock the room' : 'Lock the room';
    $('room-name').classList.toggle('locked', locked);
    $('room-name').title = locked ? 'Locked: nobody new may join' : '';
  }
  $('lock-room').onclick = () => {
    showModMenu(false);
    session.lockRoom(!session.locked);
  };
  // Ending the call for everyone takes a second click, so that a slip does not end it.
  let endArmed = 0;
  $('end-room').onclick = () => {
    if (!endArmed) {
      $('end-room').textContent = 'Click again to end the call for everyone';
      endArmed = setTimeout(() => {
        endArmed = 0;
        $('end-room').textContent = 'End the call for everyone';
      }, 4000);
      return;
    }
    clearTimeout(endArmed);
    endArmed = 0;
    showModMenu(false);
    session.endRoom();
  };
  session.on('locked', ({ locked, by }) => {
    renderLock(locked);
    toast(locked ? `${by} locked the room: nobody new may join.` : `${by} unlocked the room.`);
  });

  // ---- screen share: its own stream (id 'screen-…'), published with `publish`, shown as its own tile
  let screen = null; // {stream, refs, tile}
  const screenMenu = $('screen-menu');
  if (!screenShareSupported()) $('screen-wrap').hidden = true;
  const showMenu = (open) => {
    screenMenu.hidden = !open;
    $('btn-screen').setAttribute('aria-expanded', String(open));
  };
  $('btn-screen').onclick = () => {
    if (screen) stopScreen();
    else showMenu(screenMenu.hidden);
  };
  document.addEventListener('click', (e) => {
    if (!e.target.closest('#screen-wrap')) showMenu(false);
  });
  $('share-screen').onclick = () => startScreen(false);
  $('share-screen-audio').onclick = () => startScreen(true);
  async function startScreen(withAudio) {
    showMenu(false);
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
    const tile = stage.ensure('local-screen', { peerId: null, name: call.nickname, local: true, screen: true });
    const v = stream.getVideoTracks()[0];
    if (v) tile.addTrack(v);
    screen = { stream, refs, tile };
    for (const t of stream.getTracks()) t.addEventListener('ended', () => { if (screen?.stream === stream) stopScreen(); });
    $('btn-screen').classList.add('active');
    $('btn-screen').querySelector('span').textContent = 'Stop sharing';
  }
  function stopScreen() {
    if (!screen) return;
    const s = screen;
    screen = null;
    for (const ref of s.refs) session.unpublish(ref);
    for (const t of s.stream.getTracks()) t.stop();
    stage.remove('local-screen');
    $('btn-screen').classList.remove('active');
    $('btn-screen').querySelector('span').textContent = 'Share';
  }

  // ---- devices dialog
  fillQuality($('call-quality'), media);
  $('btn-settings').onclick = async () => {
    await fillDevices(media);
    showError('settings-error', [media.errors.video, media.errors.audio].filter(Boolean).join(' '));
    if ($('settings').showModal) $('settings').showModal();
    else $('settings').setAttribute('open', '');
  };
  const applySink = (id) => {
    if (!id) return;
    for (const t of stage.tiles.values()) if (!t.local) t.video.setSinkId?.(id).catch(() => {});
  };
  $('call-output-device').addEventListener('change', (e) => {
    store.set('outputDevice', e.target.value);
    applySink(e.target.value);
  });

  $('btn-invite').onclick = () => invite(room);

  // ---- side panel: chat and people
  call.setUnread = (n) => {
    call.unread = n;
    $('unread').hidden = n === 0;
    $('unread').textContent = n > 9 ? '9+' : String(n);
  };
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
      call.setUnread(0);
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

  call.renderPeople = () => {
    const rows = peopleRows({
      selfId: session.peerId,
      nickname: call.nickname,
      selfState: call.myState(),
      peers: session.peers,
      peerState: call.peerState,
    });
    $('people-count').textContent = String(rows.length);
    $('btn-people').querySelector('span').textContent = `People (${rows.length})`;
    $('people-list').replaceChildren(...rows.map((r) => el('li', { dataset: { peerId: r.id } },
      el('span', { class: 'person', text: r.name }),
      r.state.hand ? el('span', { class: 'state-icon hand', role: 'img', title: 'Hand raised', 'aria-label': 'Hand raised' }, icon('hand')) : null,
      el('span', { class: `state-icon${r.state.audio === false ? ' off' : ''}`, title: r.state.audio === false ? 'Microphone off' : 'Microphone on' }, icon(r.state.audio === false ? 'mic-off' : 'mic')),
      el('span', { class: `state-icon${r.state.video === false ? ' off' : ''}`, title: r.state.video === false ? 'Camera off' : 'Camera on' }, icon(r.state.video === false ? 'cam-off' : 'cam')))));
  };
  call.renderPeople();

  return { stopScreen };
}
