// Emoji in chat, in a browser without an emoji font (a bare Linux, a kiosk): instead of
// empty boxes, each emoji is written as its name, `:thumbs up sign:`. Browsers that can
// draw emoji show them as sent.

import { EMOJI_NAMES_TEXT } from './emoji-names.js';

let names = null;
function nameOf(cp) {
  if (!names) {
    names = new Map();
    for (const entry of EMOJI_NAMES_TEXT.split(';')) {
      const at = entry.indexOf(':');
      names.set(parseInt(entry.slice(0, at), 16), entry.slice(at + 1));
    }
  }
  return names.get(cp) ?? `u+${cp.toString(16)}`;
}

const SKIN_TONES = {
  0x1f3fb: 'light skin tone',
  0x1f3fc: 'medium-light skin tone',
  0x1f3fd: 'medium skin tone',
  0x1f3fe: 'medium-dark skin tone',
  0x1f3ff: 'dark skin tone',
};

// One emoji as people see it: a flag (two regional indicators), a keycap, or pictographs
// with their presentation selector and skin tone, joined by zero-width joiners.
const EMOJI = /\p{RI}\p{RI}|[#*0-9]\uFE0F?\u20E3|\p{Extended_Pictographic}\uFE0F?\p{Emoji_Modifier}?(?:\u200D\p{Extended_Pictographic}\uFE0F?\p{Emoji_Modifier}?)*/gu;

/** The name of one emoji sequence (as EMOJI matches it). */
export function emojiName(seq) {
  const cps = [...seq].map((c) => c.codePointAt(0));
  if (cps.length === 2 && cps.every((c) => c >= 0x1f1e6 && c <= 0x1f1ff)) {
    return `flag ${cps.map((c) => String.fromCharCode(c - 0x1f1e6 + 65)).join('')}`;
  }
  if (cps.at(-1) === 0x20e3) return `keycap ${seq[0]}`;
  let name = '';
  for (const c of cps) {
    if (c === 0xfe0f || c === 0x200d) continue;
    if (SKIN_TONES[c]) name += ` (${SKIN_TONES[c]})`;
    else name += (name ? ' + ' : '') + nameOf(c);
  }
  return name;
}

/**
 * `text` with every emoji a text font would not draw written as `:name:`. Symbols that
 * fonts draw as text (©, ™, ☺ without the emoji selector) stay as they are.
 */
export function emojiAsText(text) {
  return text.replace(EMOJI, (seq) => {
    const asEmoji = /\p{Emoji_Presentation}|\uFE0F|\u20E3|\p{Emoji_Modifier}|\u200D/u.test(seq);
    return asEmoji ? `:${emojiName(seq)}:` : seq;
  });
}

let drawable = null;
/**
 * Whether this browser draws emoji: an emoji font draws a party popper in colour. (Text
 * fonts draw a few emoji in black, DejaVu Sans a grinning face among them, and boxes for
 * the rest; and a text font's glyph wins over the emoji font's, so the probe is one that
 * text fonts lack.)
 */
export function canDrawEmoji(doc = document) {
  if (drawable !== null) return drawable;
  try {
    const draw = (text) => {
      const c = doc.createElement('canvas');
      c.width = 40;
      c.height = 40;
      const g = c.getContext('2d', { willReadFrequently: true });
      g.font = '32px sans-serif';
      g.textBaseline = 'top';
      g.fillStyle = '#000';
      g.fillText(text, 0, 0);
      return g.getImageData(0, 0, 40, 40).data;
    };
    const px = draw('\u{1F389}');
    drawable = false;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] !== px[i + 1] || px[i + 1] !== px[i + 2]) drawable = true;
    }
  } catch {
    drawable = true; // no canvas to tell: show them as sent
  }
  return drawable;
}
