// Unit tests of the page's side of permissions (node --test; no browser): the access token
// taken from the link and removed from the address bar, what a JWT's claims say before
// joining, the title of each denial page, which controls a member sees.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { takeAccessToken, readClaims, denialTitle } from '../../web/js/access.js';
import { visibleControls } from '../../web/js/call/controls.js';

function fakes(href) {
  const kept = new Map();
  const replaced = [];
  return {
    loc: { href },
    hist: { state: null, replaceState: (_s, _t, url) => replaced.push(url) },
    storage: { setItem: (k, v) => kept.set(k, v), getItem: (k) => kept.get(k) ?? null },
    kept,
    replaced,
  };
}

test('the access token is taken from the link, removed from the address bar and kept for the tab', () => {
  const f = fakes('https://calls.example/call/standup?access_token=abc.def.ghi&x=1#top');
  assert.equal(takeAccessToken('standup', f.loc, f.hist, f.storage), 'abc.def.ghi');
  assert.deepEqual(f.replaced, ['/call/standup?x=1#top']);
  // A reload (or "Rejoin") without it in the link finds it again, for that room only.
  const again = { ...f, loc: { href: 'https://calls.example/call/standup' } };
  assert.equal(takeAccessToken('standup', again.loc, again.hist, again.storage), 'abc.def.ghi');
  assert.equal(takeAccessToken('other', again.loc, again.hist, again.storage), null);
  assert.equal(f.replaced.length, 1, 'nothing to remove the second time');
});

const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims) => `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}.sig`;

test("a JWT's claims say the fixed name and whether its holder only watches", () => {
  assert.deepEqual(readClaims(jwt({ exp: 1, name: 'Ada', video: { roomJoin: true } })), { name: 'Ada', viewer: false });
  assert.deepEqual(readClaims(jwt({ exp: 1, video: { canPublish: false } })), { name: null, viewer: true });
  assert.deepEqual(readClaims(jwt({ exp: 1, video: { canPublishSources: ['screen_share'] } })), { name: null, viewer: true });
  assert.deepEqual(readClaims(jwt({ exp: 1, name: 'Ünïcödé 名前' })), { name: 'Ünïcödé 名前', viewer: false });
  // An opaque token (the webhook provider's) or garbage says nothing.
  for (const t of ['inv-ada', 'a.b.c', null, '', 'x.!!!.y']) assert.deepEqual(readClaims(t), { name: null, viewer: false });
});

test('each refusal gets a page title that says what happened', () => {
  assert.equal(denialTitle('the access token expired 5 s ago'), 'This invitation has expired');
  assert.equal(denialTitle('the access token is for room a, not b'), 'This link is for another room');
  assert.equal(denialTitle('room r is locked: its moderators let nobody new in'), 'This room is locked');
  assert.equal(denialTitle('a moderator removed you from room r; you may not join it again'), 'You were removed from this room');
  assert.equal(denialTitle('this server admits members with an access token only; the link you used has none'), 'This room needs an invitation');
  assert.equal(denialTitle('the permissions service did not answer in time; try again later'), 'The server cannot check your invitation');
  assert.equal(denialTitle('something new'), 'You cannot join this room');
});

test('a member sees only the controls it may use', () => {
  const all = { publish: ['camera', 'microphone', 'screen_share', 'screen_share_audio'], subscribe: true, data: true, moderate: false };
  assert.deepEqual(visibleControls(all), { mic: true, cam: true, screen: true, screenAudio: true, devices: true, chat: true, hand: true, moderate: false });
  const viewer = { publish: [], subscribe: true, data: false, moderate: false };
  assert.deepEqual(visibleControls(viewer), { mic: false, cam: false, screen: false, screenAudio: false, devices: false, chat: false, hand: false, moderate: false });
  assert.equal(visibleControls({ ...all, moderate: true }).moderate, true);
  assert.equal(visibleControls(all, false).screen, false, 'no screen share where the browser has none');
});
