// Text chat and file sending, both as `message` relays through the server (docs/web-client.md):
//
//   {"chat": "text"}
//   {"file": {"id", "name", "mime", "size", "chunks"}}       then, for index 0..chunks-1:
//   {"fileChunk": {"id", "index", "data": "<base64 of at most 48 KiB>"}}
//   {"fileAbort": {"id"}}                                       the sender gave up
//   {"fileCancel": {"id"}}, to the sender                       a receiver gave up
//
// They go on the data channel once it is open (the server relays them to each member on
// its channel, or on its WebSocket), and on the WebSocket before that; a transfer keeps the
// path it started on.
//
// Chunks are paced under the server's rate limit (50 messages/s per connection) and wait for
// the WebSocket's send buffer to drain, so a large file neither trips the limit nor floods the
// receivers' connections.
//
// A received file is only ever downloaded: its Blob is application/octet-stream whatever the
// sender announced (an HTML or SVG file opened on this origin would run its script here), and
// the announced size and MAX_FILE_BYTES are checked as each part arrives, not at the end.

import { $, el, icon, formatBytes, randomString, bytesToBase64, base64ToBytes, sleep } from './util.js';
import { canDrawEmoji, emojiAsText } from './emoji.js';

export const MAX_FILE_BYTES = 16 * 1024 * 1024;
export const CHUNK_BYTES = 48 * 1024; // 64 KiB of base64
const CHUNK_INTERVAL_MS = 60; // ~16 chunks/s: ~780 KB/s, well under the rate limit
const MAX_BUFFERED = 512 * 1024;
const MAX_CHAT_CHARS = 4000;
const INCOMING_TIMEOUT_MS = 60_000;
// Received files kept for download at most; past it the oldest are let go.
const MAX_KEPT_BYTES = 64 * 1024 * 1024;

export class Chat {
  constructor({ session, nameOf, onUnread }) {
    this.session = session;
    this.nameOf = nameOf;
    this.onUnread = onUnread;
    this.log = $('chat-log');
    this.incoming = new Map(); // id -> {from, meta, parts, received, bytes, row}
    this.outgoing = new Map(); // id -> {cancelled}
    this.kept = []; // received files, oldest first: {url, blob, link}
    $('chat-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.sendText();
    });
    $('chat-input').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        this.sendText();
      }
    });
    // The server dropped a message: a file being sent now lost a part, so stop it.
    session.on('rate-limited', () => {
      for (const state of this.outgoing.values()) state.cancelled = 'the server dropped a part (rate limit); send it again';
    });
    $('file-input').addEventListener('change', (e) => {
      const files = [...e.target.files];
      e.target.value = '';
      for (const f of files) this.sendFile(f);
    });
  }

  sendText() {
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_CHAT_CHARS) {
      this.system(`Message too long (${text.length} characters; at most ${MAX_CHAT_CHARS}).`, true);
      return;
    }
    if (!this.session.message({ chat: text })) {
      this.system('Not connected: the message was not sent. Try again when the call is connected.', true);
      return;
    }
    this.line(this.session.nickname, text, true);
    input.value = '';
    input.style.height = '';
  }

  /** Handles an app message; returns true when it was chat or a file. */
  receive(from, data) {
    if (typeof data?.chat === 'string') {
      this.line(this.nameOf(from), data.chat.slice(0, MAX_CHAT_CHARS), false);
      return true;
    }
    if (data?.file && typeof data.file === 'object') {
      this.fileStart(from, data.file);
      return true;
    }
    if (data?.fileChunk && typeof data.fileChunk === 'object') {
      this.fileChunk(from, data.fileChunk);
      return true;
    }
    if (data?.fileAbort && typeof data.fileAbort === 'object') {
      const t = this.incoming.get(`${from}/${data.fileAbort.id}`);
      if (t) this.failIncoming(`${from}/${data.fileAbort.id}`, 'the sender cancelled');
      return true;
    }
    if (data?.fileCancel && typeof data.fileCancel === 'object') {
      const row = [...this.log.querySelectorAll('.msg.own[data-file-id]')].find((r) => r.dataset.fileId === String(data.fileCancel.id));
      const card = row?.querySelector('.file-card');
      if (card) {
        const note = card.querySelector('.file-cancelled') ?? card.appendChild(el('span', { class: 'file-cancelled' }));
        const names = new Set([...(note.dataset.names ?? '').split('\n').filter(Boolean), this.nameOf(from)]);
        note.dataset.names = [...names].join('\n');
        note.textContent = `cancelled by ${[...names].join(', ')}`;
      }
      return true;
    }
    return false;
  }

  // ---- rendering

  scrollDown(force) {
    const nearBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
    if (force || nearBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  row(name, own, ...body) {
    const time = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const row = el('div', { class: `msg${own ? ' own' : ''}` },
      el('div', { class: 'meta' }, el('b', { text: own ? 'You' : name }), ' ', el('time', { text: time })),
      el('div', { class: 'body' }, ...body));
    this.log.append(row);
    this.scrollDown(own);
    if (!own) this.onUnread?.();
    return row;
  }

  line(name, raw, own) {
    // Links become clickable; everything is text (never HTML from others). Emoji this
    // browser cannot draw are written as their names.
    const text = canDrawEmoji() ? raw : emojiAsText(raw);
    const parts = [];
    let last = 0;
    for (const m of text.matchAll(/https?:\/\/[^\s<>"]+/g)) {
      if (m.index > last) parts.push(text.slice(last, m.index));
      parts.push(el('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer', text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < text.length) parts.push(text.slice(last));
    return this.row(name, own, ...parts);
  }

  system(text, error = false) {
    const row = el('div', { class: `msg system${error ? ' error' : ''}`, text });
    this.log.append(row);
    this.scrollDown(true);
    return row;
  }

  fileCard(meta, own) {
    const bar = el('progress', { max: '100', value: '0' });
    const status = el('span', { class: 'file-status', text: own ? 'sending…' : 'receiving…' });
    const card = el('div', { class: 'file-card' },
      icon('file'),
      el('div', { class: 'file-info' },
        el('span', { class: 'file-name', text: meta.name }),
        el('span', { class: 'file-size', text: formatBytes(meta.size) }),
        bar, status));
    return { card, bar, status };
  }

  // ---- sending files

  async sendFile(file) {
    if (file.size > MAX_FILE_BYTES) {
      this.system(`“${file.name}” is ${formatBytes(file.size)}; files can be at most ${formatBytes(MAX_FILE_BYTES)}.`, true);
      return;
    }
    if (!this.session.isOpen) {
      this.system(`Not connected: “${file.name}” was not sent.`, true);
      return;
    }
    const id = randomString(10);
    const chunks = Math.max(1, Math.ceil(file.size / CHUNK_BYTES));
    const meta = { id, name: file.name.slice(0, 255) || 'file', mime: file.type || 'application/octet-stream', size: file.size, chunks };
    const { card, bar, status } = this.fileCard(meta, true);
    const cancel = el('button', { type: 'button', class: 'link-btn', text: 'Cancel' });
    card.append(cancel);
    const row = this.row(this.session.nickname, true, card);
    row.dataset.fileId = id;
    const state = { cancelled: false };
    this.outgoing.set(id, state);
    cancel.onclick = () => { state.cancelled = true; };
    // One path for the whole transfer (the data channel when it is open): parts sent on
    // two paths could overtake each other.
    const via = this.session.dataPath;
    card.dataset.via = via;
    try {
      if (!this.session.message({ file: meta }, undefined, via)) throw new Error('not connected');
      for (let i = 0; i < chunks; i++) {
        if (i > 0) await sleep(CHUNK_INTERVAL_MS);
        if (state.cancelled) throw new Error(typeof state.cancelled === 'string' ? state.cancelled : 'cancelled');
        const bytes = new Uint8Array(await file.slice(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES).arrayBuffer());
        // Wait for the path to drain (the channel's bufferedamountlow), so chunks do not
        // pile up in the browser or at the server.
        if (!(await this.session.drained(via, MAX_BUFFERED, Date.now() + 30_000))) throw new Error('the connection is too slow');
        if (!this.session.message({ fileChunk: { id, index: i, data: bytesToBase64(bytes) } }, undefined, via)) throw new Error('the connection was lost');
        bar.value = Math.round(((i + 1) / chunks) * 100);
      }
      // A rate-limit error for the last part arrives a moment later.
      await sleep(300);
      if (state.cancelled) throw new Error(typeof state.cancelled === 'string' ? state.cancelled : 'cancelled');
      status.textContent = 'sent';
      row.dataset.done = 'true';
    } catch (err) {
      status.textContent = `not sent: ${err.message}`;
      card.classList.add('failed');
      this.session.message({ fileAbort: { id } }, undefined, via);
    } finally {
      cancel.remove();
      this.outgoing.delete(id);
    }
  }

  // ---- receiving files

  fileStart(from, meta) {
    const id = String(meta.id ?? '');
    const size = Number(meta.size);
    const chunks = Number(meta.chunks);
    const name = String(meta.name ?? 'file').replace(/[\\/]/g, '_').slice(0, 255) || 'file';
    // The original's one-message form: {file: {name, mime, base64}}.
    if (typeof meta.base64 === 'string' && !meta.chunks) {
      if (meta.base64.length > Math.ceil(MAX_FILE_BYTES / 3) * 4) {
        this.system(`${this.nameOf(from)} tried to send a file that is too large.`, true);
        return;
      }
      try {
        const bytes = base64ToBytes(meta.base64);
        const m = { name, mime: String(meta.mime ?? ''), size: bytes.length };
        const { card, bar, status } = this.fileCard(m, false);
        const row = this.row(this.nameOf(from), false, card);
        this.finishIncoming({ meta: m, card, bar, status, row }, [bytes]);
      } catch {
        this.system(`A file from ${this.nameOf(from)} could not be read.`, true);
      }
      return;
    }
    if (!id || !Number.isFinite(size) || size < 0 || size > MAX_FILE_BYTES || !Number.isInteger(chunks) || chunks < 1 || chunks > Math.ceil(MAX_FILE_BYTES / 1024)) {
      this.system(`${this.nameOf(from)} tried to send a file that is too large or malformed.`, true);
      return;
    }
    const m = { id, name, mime: String(meta.mime ?? 'application/octet-stream'), size, chunks };
    const { card, bar, status } = this.fileCard(m, false);
    const row = this.row(this.nameOf(from), false, card);
    row.dataset.fileId = id;
    const key = `${from}/${id}`;
    const t = { from, meta: m, parts: new Array(chunks), received: 0, bytes: 0, card, bar, status, row, timer: 0 };
    this.incoming.set(key, t);
    this.touch(key, t);
    // The receiver may give up too: the sender hears of it (and goes on for the others).
    const cancel = el('button', { type: 'button', class: 'link-btn', text: 'Cancel' });
    cancel.onclick = () => {
      this.failIncoming(key, 'cancelled');
      this.session.message({ fileCancel: { id } }, from);
    };
    card.append(cancel);
    t.cancel = cancel;
  }

  touch(key, t) {
    clearTimeout(t.timer);
    t.timer = setTimeout(() => this.failIncoming(key, 'the transfer stalled'), INCOMING_TIMEOUT_MS);
  }

  fileChunk(from, chunk) {
    const key = `${from}/${chunk.id}`;
    const t = this.incoming.get(key);
    if (!t) return;
    const i = Number(chunk.index);
    if (!Number.isInteger(i) || i < 0 || i >= t.meta.chunks || t.parts[i] || typeof chunk.data !== 'string') return;
    // Sizes are enforced as parts arrive: nothing past the announced size is kept.
    // (One part is at most the server's message limit, 256 KiB.)
    const limit = Math.min(t.meta.size, MAX_FILE_BYTES);
    let part;
    try {
      part = base64ToBytes(chunk.data);
    } catch {
      this.failIncoming(key, 'a part was damaged');
      return;
    }
    if (t.bytes + part.length > limit) {
      this.failIncoming(key, `it is larger than the ${formatBytes(t.meta.size)} announced`);
      return;
    }
    t.parts[i] = part;
    t.bytes += part.length;
    t.received += 1;
    t.bar.value = Math.round((t.received / t.meta.chunks) * 100);
    this.touch(key, t);
    if (t.received === t.meta.chunks) {
      clearTimeout(t.timer);
      t.cancel?.remove();
      this.incoming.delete(key);
      this.finishIncoming(t, t.parts);
    }
  }

  finishIncoming(t, parts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    if (total !== t.meta.size) {
      t.status.textContent = `damaged: ${total} of ${t.meta.size} bytes`;
      t.card.classList.add('failed');
      return;
    }
    // Never the announced type: only downloaded, never shown on this origin.
    const blob = new Blob(parts, { type: 'application/octet-stream' });
    const url = URL.createObjectURL(blob);
    t.bar.remove();
    const link = el('a', { class: 'file-download', href: url, download: t.meta.name, rel: 'noopener', text: 'Download' });
    t.status.replaceWith(link);
    t.row.dataset.done = 'true';
    this.keep({ url, blob, link });
  }

  /** Holds a received file for download, letting the oldest go past MAX_KEPT_BYTES. */
  keep(file) {
    this.kept.push(file);
    let total = this.kept.reduce((n, f) => n + f.blob.size, 0);
    while (total > MAX_KEPT_BYTES && this.kept.length > 1) {
      const old = this.kept.shift();
      total -= old.blob.size;
      this.release(old, 'no longer kept (newer files took its place)');
    }
  }

  release(file, why) {
    URL.revokeObjectURL(file.url);
    file.link.replaceWith(el('span', { class: 'file-status', text: why }));
  }

  /** The call ended: received files are let go, transfers stop. */
  close() {
    for (const f of this.kept) this.release(f, 'no longer available (the call ended)');
    this.kept = [];
    for (const key of [...this.incoming.keys()]) this.failIncoming(key, 'the call ended');
    for (const state of this.outgoing.values()) state.cancelled = 'the call ended';
  }

  failIncoming(key, why) {
    const t = this.incoming.get(key);
    if (!t) return;
    clearTimeout(t.timer);
    this.incoming.delete(key);
    t.parts = [];
    t.status.textContent = `not received: ${why}`;
    t.card.classList.add('failed');
    t.cancel?.remove();
  }

  /** A peer left: transfers from them will not finish. */
  peerLeft(peerId) {
    for (const [key, t] of [...this.incoming]) if (t.from === peerId) this.failIncoming(key, 'the sender left');
  }
}
