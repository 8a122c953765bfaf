// Small helpers shared by the page's modules. No dependencies.

export const $ = (id) => document.getElementById(id);

/**
 * The path the server serves the page under (`--base-path`, behind a reverse proxy), or ''
 * for the root: the server puts it in `<meta name="peer-calls-base">`.
 */
export const BASE = globalThis.document?.querySelector('meta[name="peer-calls-base"]')?.content ?? '';

/** Creates an element: el('div', {class: 'x', text: 'hi', onclick}, child, …). */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** An <svg> that uses a symbol of the sprite in index.html (`#i-<name>`). */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(ns, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

/** localStorage that never throws (private mode, disabled storage). */
export const store = {
  get(key, fallback = null) {
    try {
      const v = localStorage.getItem(`peercalls.${key}`);
      return v === null ? fallback : v;
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      if (value === null || value === undefined) localStorage.removeItem(`peercalls.${key}`);
      else localStorage.setItem(`peercalls.${key}`, String(value));
    } catch {
      // storage unavailable: nothing is remembered
    }
  },
};

/** Random string of `n` characters of `alphabet` (crypto.getRandomValues works on http too). */
export function randomString(n, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789') {
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

const ADJECTIVES = ['amber', 'bright', 'calm', 'clever', 'cosy', 'eager', 'gentle', 'golden', 'happy', 'jolly',
  'kind', 'lively', 'lucky', 'merry', 'misty', 'nimble', 'quiet', 'rapid', 'silver', 'sunny', 'swift', 'tidy',
  'vivid', 'warm', 'wise', 'brave', 'crisp', 'fresh', 'grand', 'noble'];
const NOUNS = ['otter', 'falcon', 'maple', 'river', 'comet', 'harbor', 'meadow', 'pebble', 'lantern', 'orchid',
  'badger', 'canyon', 'cedar', 'dolphin', 'ember', 'fjord', 'glacier', 'heron', 'island', 'juniper', 'koala',
  'lagoon', 'mango', 'nebula', 'oasis', 'panda', 'quartz', 'robin', 'summit', 'tulip'];

/** A readable random room name, e.g. `calm-otter-7k2q` (about 44 bits). */
export function randomRoomName() {
  const b = new Uint32Array(2);
  crypto.getRandomValues(b);
  return `${ADJECTIVES[b[0] % ADJECTIVES.length]}-${NOUNS[b[1] % NOUNS.length]}-${randomString(6)}`;
}

export const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;
// eslint-disable-next-line no-control-regex
export const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** Whether `name` is a room name the server accepts (and a usable path segment). */
export const validRoom = (name) => ROOM_RE.test(name) && !/^\.+$/.test(name);

/** A nickname the server accepts: 1–64 characters, no control characters. */
export function validNickname(nick) {
  const n = [...nick].length;
  return n >= 1 && n <= 64 && !CONTROL_RE.test(nick);
}

/** The room name in a pasted invite link or a bare name; null when it is neither. */
export function roomFromInput(text) {
  const t = text.trim();
  if (!t) return null;
  let candidate = t;
  const m = t.match(/\/call\/([^/?#\s]+)/);
  if (m) candidate = m[1];
  try {
    candidate = decodeURIComponent(candidate);
  } catch {
    return null;
  }
  return validRoom(candidate) ? candidate : null;
}

export function callUrl(room) {
  return `${location.origin}${BASE}/call/${encodeURIComponent(room)}`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Tiny event emitter: on(name, fn) returns an unsubscribe function. */
export class Emitter {
  constructor() {
    this.handlers = new Map();
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name)?.delete(fn);
  }

  emit(name, detail) {
    for (const fn of this.handlers.get(name) ?? []) {
      try {
        fn(detail);
      } catch (err) {
        console.error(`handler for ${name} failed`, err);
      }
    }
  }
}

/** Copies text to the clipboard; falls back to a hidden text area on http:// pages. */
export async function copyText(text) {
  try {
    if (navigator.clipboard?.writeText && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the old way
  }
  const ta = el('textarea', { readonly: true, style: 'position:fixed;opacity:0;top:0;left:0' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

/** Base64 of bytes, in slices so that large inputs do not overflow the call stack. */
export function bytesToBase64(bytes) {
  let bin = '';
  const STEP = 0x8000;
  for (let i = 0; i < bytes.length; i += STEP) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + STEP));
  }
  return btoa(bin);
}

export function base64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
