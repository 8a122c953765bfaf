// The landing page: create a room (named or random) or join one by name or invite link,
// with the rooms this browser joined lately.

import { $, el, store, validRoom, roomFromInput, randomRoomName, BASE } from './util.js';
import { show, showError } from './ui.js';

export function recentRooms() {
  try {
    return JSON.parse(store.get('recent', '[]')).filter(validRoom).slice(0, 5);
  } catch {
    return [];
  }
}

export function rememberRoom(room) {
  store.set('recent', JSON.stringify([room, ...recentRooms().filter((r) => r !== room)].slice(0, 5)));
}

export function initLanding() {
  show('landing');
  const go = (room) => location.assign(`${BASE}/call/${encodeURIComponent(room)}`);
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
    $('recent-list').replaceChildren(...recent.map((r) => el('li', {}, el('a', { href: `${BASE}/call/${encodeURIComponent(r)}`, text: r }))));
  }
}
