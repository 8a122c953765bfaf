// Unit tests of the chat's emoji fallback (node --test; no browser): in a browser without an
// emoji font, each emoji is written as its name; text-style symbols and plain text stay.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { emojiAsText, emojiName } from '../../web/js/emoji.js';

test('emoji become their names; text stays', () => {
  assert.equal(emojiAsText('nice 👍 see you 🎉!'), 'nice :thumbs up sign: see you :party popper:!');
  assert.equal(emojiAsText('plain text, © 2026, ☺ and ™'), 'plain text, © 2026, ☺ and ™');
  assert.equal(emojiAsText('☺️'), ':white smiling face:', 'with the emoji selector it is an emoji');
  assert.equal(emojiAsText(''), '');
});

test('skin tones, sequences, flags and keycaps are named as one', () => {
  assert.equal(emojiName('👍🏽'), 'thumbs up sign (medium skin tone)');
  assert.equal(emojiName('👩🏽‍💻'), 'woman (medium skin tone) + personal computer');
  assert.equal(emojiName('🇫🇮'), 'flag FI');
  assert.equal(emojiName('1️⃣'), 'keycap 1');
  assert.equal(emojiAsText('go 🇫🇮 #️⃣'), 'go :flag FI: :keycap #:');
  assert.equal(emojiAsText('❤️‍🔥'), ':heavy black heart + fire:');
});
