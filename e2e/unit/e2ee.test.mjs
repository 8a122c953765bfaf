// Unit tests of end-to-end encryption's frames (node --test; no browser): a sealed
// frame keeps its codec header in the clear and hides the rest; the same passphrase and
// room open it; another passphrase, another room, a frame sent in the clear or a changed
// header do not.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { clearBytes, deriveKey, seal, open, MARKER } from '../../web/js/e2ee-frame.js';

/** A VP8 keyframe's first bytes (frame tag, start code, 640×360) and a body. */
function vp8Keyframe() {
  const frame = new Uint8Array(400);
  frame.set([0x50, 0x2f, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
  for (let i = 10; i < frame.length; i++) frame[i] = i % 251;
  return frame;
}

const keys = {};
async function key(passphrase, room = 'standup') {
  keys[`${passphrase} ${room}`] ??= await deriveKey(passphrase, room);
  return keys[`${passphrase} ${room}`];
}

test('the codec header stays clear, the rest is hidden, and the same passphrase opens it', async () => {
  const frame = vp8Keyframe();
  const clear = clearBytes('video', 'key');
  assert.equal(clear, 10);
  const sealed = new Uint8Array(await seal(await key('correct horse'), frame.buffer, clear));
  // The server still reads a keyframe of 640×360 from the header.
  assert.deepEqual(sealed.subarray(0, 10), frame.subarray(0, 10));
  assert.equal(sealed[sealed.length - 1], MARKER);
  // Tag (16), IV (12) and the marker added; no run of the body in the clear.
  assert.equal(sealed.length, frame.length + 16 + 12 + 1);
  const body = Buffer.from(frame.subarray(10, 42));
  assert.equal(Buffer.from(sealed).indexOf(body), -1);
  const opened = await open(await key('correct horse'), sealed.buffer, clear);
  assert.deepEqual(new Uint8Array(opened.data), frame);
  // Two seals of one frame differ (a fresh IV each).
  const again = new Uint8Array(await seal(await key('correct horse'), frame.buffer, clear));
  assert.notDeepEqual(again, sealed);
});

test('another passphrase or room, a changed header, or a plain frame do not open', async () => {
  const clear = clearBytes('video', 'delta');
  assert.equal(clear, 3);
  const frame = vp8Keyframe().subarray(0, 120);
  frame[0] = 0x31; // a delta frame
  const sealed = await seal(await key('correct horse'), frame.slice().buffer, clear);
  assert.deepEqual(await open(await key('wrong horse'), sealed, clear), { error: 'key' });
  assert.deepEqual(await open(await key('correct horse', 'other-room'), sealed, clear), { error: 'key' });
  const changed = new Uint8Array(sealed.slice(0));
  changed[1] ^= 1; // the header is authenticated
  assert.deepEqual(await open(await key('correct horse'), changed.buffer, clear), { error: 'key' });
  assert.deepEqual(await open(await key('correct horse'), frame.slice().buffer, clear), { error: 'plain' });
});

test('audio keeps its TOC byte; frames shorter than their header still seal and open', async () => {
  assert.equal(clearBytes('audio'), 1);
  const k = await key('correct horse');
  for (const frame of [new Uint8Array([0xfc]), new Uint8Array([0x78, 1, 2, 3, 4]), new Uint8Array([0x10, 0x02])]) {
    const clear = frame.length === 2 ? clearBytes('video', 'delta') : clearBytes('audio');
    const sealed = new Uint8Array(await seal(k, frame.slice().buffer, clear));
    assert.equal(sealed[0], frame[0]);
    const opened = await open(k, sealed.buffer, clear);
    assert.deepEqual(new Uint8Array(opened.data), frame);
  }
});
