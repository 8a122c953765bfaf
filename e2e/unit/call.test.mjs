// Unit tests of the call's pure parts (node --test; no browser): what the connection
// banner says, how a member's state message is read, the people list's rows, how loud a
// member was between two polls.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { bannerText, connLabel } from '../../web/js/call/connection.js';
import { intervalLevel, peerStateOf } from '../../web/js/call/tiles.js';
import { peopleRows } from '../../web/js/call/controls.js';
import { qualityOf, inboundInterval, qualityDetail } from '../../web/js/call/quality.js';
import { meshFits, offersFirst } from '../../web/js/mesh.js';
import { connState } from '../../web/js/session.js';

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

test('media that never connected is explained once ICE fails or stalls, in any browser', () => {
  const open = { closed: false, signal: 'open', everConnected: false, iceStuck: false };
  assert.equal(connState({ ...open, media: null }), 'connected');
  assert.equal(connState({ ...open, media: 'connecting' }), 'connecting');
  // Chromium keeps checking: the page's own 10 s clock says when to explain.
  assert.equal(connState({ ...open, media: 'connecting', iceStuck: true }), 'blocked');
  // Firefox gives up within seconds: explained at once, not "Reconnecting…".
  assert.equal(connState({ ...open, media: 'failed' }), 'blocked');
  // Once media has flowed, a failure is an interruption to recover from.
  const was = { ...open, everConnected: true };
  assert.equal(connState({ ...was, media: 'failed' }), 'reconnecting');
  assert.equal(connState({ ...was, media: 'disconnected', iceStuck: true }), 'reconnecting');
  assert.equal(connState({ ...was, media: 'connected' }), 'connected');
  // A fresh session after the failure keeps the explanation up; a server gone away does not.
  assert.equal(connState({ ...open, signal: 'connecting', media: null, iceStuck: true, rejoining: true }), 'blocked');
  assert.equal(connState({ ...open, signal: 'reconnecting', media: null, iceStuck: true }), 'reconnecting');
  // The socket's state comes first; closed above all.
  assert.equal(connState({ ...open, signal: 'reconnecting', media: 'failed' }), 'reconnecting');
  assert.equal(connState({ ...open, closed: true, signal: 'reconnecting' }), 'closed');
});

test('a state message is read as the tile shows it; anything else is chat', () => {
  assert.deepEqual(peerStateOf({ state: { audio: false } }), { audio: false, video: true, e2ee: false, hand: false });
  assert.deepEqual(peerStateOf({ state: {} }), { audio: true, video: true, e2ee: false, hand: false });
  assert.deepEqual(peerStateOf({ state: { e2ee: true } }), { audio: true, video: true, e2ee: true, hand: false });
  assert.equal(peerStateOf({ state: { hand: true } }).hand, true);
  assert.equal(peerStateOf({ state: { e2ee: 'yes' } }).e2ee, false, 'only true says so');
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
  // Raised hands come first after this member.
  const hands = peopleRows({
    selfId: '1',
    nickname: 'Ann',
    selfState: {},
    peers: new Map([['2', 'Bob'], ['3', 'Cy'], ['4', 'Di']]),
    peerState: new Map([['3', { hand: true }], ['4', { hand: true }]]),
  });
  assert.deepEqual(hands.map((r) => r.name), ['Ann (you)', 'Cy', 'Di', 'Bob']);
});

test("a tile's connection quality: loss, jitter and round trip over the last interval", () => {
  assert.equal(qualityOf({ received: 100, lostPct: 0.5, jitterMs: 8, rttMs: 30 }), 'good');
  assert.equal(qualityOf({ received: 100, lostPct: 5 }), 'fair');
  assert.equal(qualityOf({ received: 100, rttMs: 450 }), 'fair');
  assert.equal(qualityOf({ received: 100, lostPct: 20 }), 'poor');
  assert.equal(qualityOf({ received: 100, jitterMs: 150 }), 'poor');
  assert.equal(qualityOf({ received: 0 }), 'none', 'nothing arrives');
  assert.equal(inboundInterval(null, { packetsReceived: 5 }), null, 'the first statistics');
  assert.deepEqual(
    inboundInterval({ packetsReceived: 100, packetsLost: 2 }, { packetsReceived: 190, packetsLost: 12 }),
    { received: 90, lostPct: 10 },
  );
  assert.equal(qualityDetail({ lostPct: 1.25, jitterMs: 7.6, rttMs: 31.2 }), 'loss 1.3%, jitter 8 ms, round trip 31 ms');
  assert.equal(qualityDetail({ lostPct: 0 }), 'loss 0.0%');
});

test('a level is the average over the interval, so a short beep between polls counts', () => {
  // Silence, then 20 ms at full scale (energy = level² × seconds) inside a 200 ms poll.
  const a = { totalAudioEnergy: 1.0, totalSamplesDuration: 10.0 };
  const b = { totalAudioEnergy: 1.0 + 0.02, totalSamplesDuration: 10.2, audioLevel: 0 };
  assert.ok(Math.abs(intervalLevel(a, b) - Math.sqrt(0.1)) < 1e-9);
  // Silence stays silent; the first stats and an empty interval give nothing.
  assert.equal(intervalLevel(b, { ...b, totalSamplesDuration: 10.4 }), 0);
  assert.equal(intervalLevel(undefined, b), null);
  assert.equal(intervalLevel(b, b), null);
  // A browser without the energy fields: its last level.
  assert.equal(intervalLevel(undefined, { audioLevel: 0.5 }), 0.5);
  assert.equal(intervalLevel(undefined, {}), null);
});

test('a direct call: rooms that fit, and which side offers', () => {
  assert.equal(meshFits(2, 1), true, 'alone: ready for the second');
  assert.equal(meshFits(2, 2), true);
  assert.equal(meshFits(2, 3), false, 'one more: through the server');
  assert.equal(meshFits(null, 2), false, 'the server offers no direct calls');
  assert.equal(meshFits(1, 1), false);
  assert.equal(offersFirst('p-1a', 'p-2b'), true);
  assert.equal(offersFirst('p-2b', 'p-1a'), false, 'exactly one of the two offers');
});
