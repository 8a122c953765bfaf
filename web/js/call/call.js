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

/**
 * What the parts of a call share: the session and what the page shows of it.
 * `myState()` is this member's microphone and camera; `announce(to)` tells the room.
 */
function callContext(room, nickname, media, meter) {
  const session = new Session({ room, nickname, media });
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
    nameOf: (id) => (id === session.peerId ? nickname : names.get(id) ?? 'someone'),
    myState: () => ({
      audio: media.audioOn && Boolean(media.audioTrack),
      video: media.videoOn && Boolean(media.videoTrack),
    }),
    announce: (to) => session.message({ state: call.myState() }, to),
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

export function startCall(room, nickname, media, meter) {
  show('in-call');
  const call = callContext(room, nickname, media, meter);
  const { session, stage, chat } = call;
  window.peerCalls = { session, stage, media, chat }; // for tests and debugging

  const tiles = wireTiles(call);
  const controls = wireControls(call);
  const connection = wireConnection(session);

  session.on('notice', ({ message, error }) => toast(message, { error }));
  session.on('fatal', ({ code, message }) => {
    endCall(false);
    const title = { room_full: 'This room is full', replaced: 'Call opened elsewhere', server_full: 'The server is full' }[code] ?? 'Could not join';
    const actions = code === 'replaced'
      ? [{ label: 'Use it here', primary: true, onclick: () => location.reload() }, homeAction]
      : [reloadAction(), homeAction];
    notice(title, message, actions, 'error');
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
    $('conn').hidden = true;
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
