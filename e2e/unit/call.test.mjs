// Unit tests of the call's pure parts (node --test; no browser): what the connection
// banner says, how a member's state message is read, the people list's rows.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { bannerText, connLabel } from '../../web/js/call/connection.js';
import { peerStateOf } from '../../web/js/call/tiles.js';
import { peopleRows } from '../../web/js/call/controls.js';

test('the banner says what happens and when the next try is', () => {
  const base = { detail: '', secs: 0, everJoined: true, host: 'calls.example:443' };
  assert.equal(bannerText({ ...base, state: 'connected' }), null);
  assert.equal(bannerText({ ...base, state: 'closed' }), null);
  assert.equal(bannerText({ ...base, state: 'connecting' }), 'Connecting to the call…');
  assert.equal(bannerText({ ...base, state: 'reconnecting', secs: 3 }), 'Connection lost. Reconnecting… Next try in 3 s.');
  assert.equal(bannerText({ ...base, state: 'reconnecting', detail: 'server restarting' }), 'Reconnecting: server restarting.');
  // Never joined and the connection failed: the server is unreachable, by name.
  assert.equal(
    bannerText({ ...base, state: 'connecting', detail: 'refused', everJoined: false, secs: 2 }),
    'Cannot reach the server at calls.example:443. Next try in 2 s.',
  );
  // Media that cannot connect (ICE) is explained, with what to try.
  const blocked = bannerText({ ...base, state: 'blocked', detail: 'direct' });
  assert.match(blocked, /cannot reach the server/);
  assert.match(blocked, /add a TURN server/);
  assert.match(bannerText({ ...base, state: 'blocked', detail: 'relayed' }), /not even through the relay server \(TURN\)/);
  assert.equal(connLabel('blocked'), 'No media');
  assert.equal(connLabel('reconnecting'), 'Reconnecting…');
  assert.equal(connLabel('odd'), 'odd');
});

test('a state message is read as the tile shows it; anything else is chat', () => {
  assert.deepEqual(peerStateOf({ state: { audio: false } }), { audio: false, video: true });
  assert.deepEqual(peerStateOf({ state: {} }), { audio: true, video: true });
  for (const other of [null, 'hi', { text: 'hi' }, { state: 'on' }]) assert.equal(peerStateOf(other), null);
});

test('the people list starts with this member, then the others with their state', () => {
  const rows = peopleRows({
    selfId: null,
    nickname: 'Ann',
    selfState: { audio: true, video: false },
    peers: new Map([['2', 'Bob'], ['3', 'Cy']]),
    peerState: new Map([['2', { audio: false, video: true }]]),
  });
  assert.deepEqual(rows, [
    { id: 'me', name: 'Ann (you)', state: { audio: true, video: false } },
    { id: '2', name: 'Bob', state: { audio: false, video: true } },
    { id: '3', name: 'Cy', state: {} },
  ]);
});
