// A call's life: it starts with the session, the stage of tiles and the chat; the other
// concerns wire themselves to them (tiles.js, controls.js, connection.js); it ends by
// hanging up, by the server ending it, or by the page going away.

import { $, BASE } from '../util.js';
import { Session } from '../session.js';
import { Stage } from '../stage.js';
import { Chat } from '../chat.js';
import { show, toast, notice, homeAction, reloadAction, invite } from '../ui.js';
import { wireTiles } from './tiles.js';
import { wireControls } from './controls.js';
import { wireConnection } from './connection.js';
import { denialTitle } from '../access.js';
import { Mesh } from '../mesh.js';

/**
 * What the parts of a call share: the session and what the page shows of it.
 * `myState()` is this member's microphone and camera; `announce(to)` tells the room.
 */
function callContext(room, nickname, media, meter, credentials) {
  const session = new Session({ room, nickname, media, ...credentials });
  const stage = new Stage($('stage'));
  const names = new Map(); // peerId -> nickname, kept after they leave (chat history)
  const call = {
    room,
    nickname,
    media,
    meter,
    session,
    stage,
    names,
    peerState: new Map(), // peerId -> {audio, video}
    nameOf: (id) => (id === session.peerId ? call.nickname : names.get(id) ?? 'someone'),
    myState: () => ({
      audio: media.audioOn && Boolean(media.audioTrack),
      video: media.videoOn && Boolean(media.videoTrack),
      e2ee: Boolean(session.e2ee),
      hand: call.hand,
    }),
    hand: false, // a raised hand (controls.js)
    // Our microphone and camera state, for the others' tiles: a chat-less member (no
    // canPublishData) publishes nothing to announce and may not send it.
    announce: (to) => session.allowed.data && session.message({ state: call.myState() }, to),
    // Set by the controls: the people list and the unread-chat badge.
    renderPeople: () => {},
    setUnread: () => {},
    unread: 0,
  };
  call.chat = new Chat({
    session,
    nameOf: call.nameOf,
    onUnread: () => {
      if ($('side').hidden || $('panel-chat').hidden) call.setUnread(call.unread + 1);
    },
  });
  return call;
}

/** The title of the page a call that ended by `fatal` gets. */
export function fatalTitle(code, message) {
  const titles = {
    room_full: 'This room is full',
    replaced: 'Call opened elsewhere',
    server_full: 'The server is full',
    kicked: 'You were removed from the call',
    room_ended: 'The call has ended',
  };
  return titles[code] ?? (code === 'forbidden' ? denialTitle(message) : 'Could not join');
}

/** `credentials`: {accessToken, password} for the join, and `e2ee` (e2ee.js) or null. */
export function startCall(room, nickname, media, meter, credentials = {}) {
  show('in-call');
  const call = callContext(room, nickname, media, meter, credentials);
  const { session, stage, chat } = call;
  // A direct call while the room fits (`--mesh-max`): decided at `joined`, before the
  // session starts its media, and again as members come and go.
  const mesh = new Mesh({
    session,
    media,
    onTrack: (peerId, track) => stage.peerTile(peerId, call.names.get(peerId) ?? 'someone').addTrack(track),
    onChange: () => {
      session.setSfuSending(!mesh.direct);
      session.scheduleReconcile();
      document.body.dataset.path = mesh.pc?.connectionState === 'connected' && mesh.direct ? 'direct' : 'server';
    },
  });
  call.mesh = mesh;
  const meshFollows = (others) => {
    mesh.update(others, session.meshMax);
    session.setSfuSending(!mesh.direct);
  };
  session.on('joined', ({ peers }) => meshFollows(peers.map((p) => p.peerId)));
  for (const ev of ['peer-joined', 'peer-left']) session.on(ev, () => meshFollows([...session.peers.keys()]));
  media.on('track', ({ kind, track }) => mesh.replaceTrack(kind, track));
  window.peerCalls = { session, stage, media, chat, mesh }; // for tests and debugging
  $('e2ee-badge').hidden = !session.e2ee;

  const tiles = wireTiles(call);
  const controls = wireControls(call);
  const connection = wireConnection(session);

  session.on('notice', ({ message, error }) => toast(message, { error }));
  session.on('fatal', ({ code, message }) => {
    endCall(false);
    if ($('password-dialog').open) $('password-dialog').close();
    const final = code === 'kicked' || code === 'room_ended' || code === 'forbidden';
    const actions = code === 'replaced'
      ? [{ label: 'Use it here', primary: true, onclick: () => location.reload() }, homeAction]
      : final ? [{ ...homeAction, primary: true }] : [reloadAction(), homeAction];
    notice(fatalTitle(code, message), message, actions, final && code !== 'forbidden' ? 'info' : 'error');
  });
  // An invitation named us otherwise than the join screen did.
  session.on('nickname', ({ nickname: name }) => {
    call.nickname = name;
    stage.tiles.get('local')?.setName(name);
    call.renderPeople();
  });
  wirePassword(session, () => {
    endCall(false);
    notice('You left the call', `Room “${room}”.`, [reloadAction('Try again'), homeAction]);
  });

  function endCall(sendLeave) {
    chat.close();
    tiles.stop();
    connection.stop();
    controls.stopScreen();
    session.close(sendLeave);
    media.stop();
    meter.close();
    stage.clearRemote();
    session.e2ee?.close();
    call.mesh.close();
    $('conn').hidden = true;
    $('e2ee-badge').hidden = true;
  }
  $('btn-hangup').onclick = () => {
    endCall(true);
    notice('You left the call', `Room “${room}”.`, [
      { label: 'Rejoin', primary: true, onclick: () => location.reload() },
      { label: 'New room', href: `${BASE}/` },
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

/** The room needs a password: ask for it, and join again with it. */
function wirePassword(session, leave) {
  const dialog = $('password-dialog');
  session.on('password-required', ({ reason, retry }) => {
    const error = $('password-error');
    error.textContent = retry ? reason : '';
    error.hidden = !retry;
    if (!dialog.open) dialog.showModal?.() ?? dialog.setAttribute('open', '');
    $('password-input').focus();
  });
  $('password-form').addEventListener('submit', () => {
    session.joinWithPassword($('password-input').value);
  });
  $('password-leave').onclick = () => {
    dialog.close();
    leave();
  };
}
