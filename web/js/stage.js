// The call's video tiles: one per participant (camera and microphone) and one per screen share.
// Lays them out as a grid that fills the space (or scrolls when there are too many), tracks
// which tiles are on screen (for subscriptions), shows names, mute / camera-off state and who
// is speaking, and offers pin, minimise and fullscreen on each tile. In speaker view the
// one speaking takes the main area; a grid with more tiles than fit goes by pages.

import { el, icon, Emitter } from './util.js';
import { isScreenStream } from './session.js';

const GAP = 8;
const HIDE_DELAY_MS = 1500; // a tile must be off screen this long before its video is dropped
const VISIBLE_RATIO = 0.2; // a tile counts as on screen when this much of it shows
const SPEAK_ON = 0.035;
const SPEAK_HOLD_MS = 700;
// Speaker view moves the main area to a new speaker at most this often (no flicker when
// two talk over each other).
const SPEAKER_HOLD_MS = 2000;

function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  const first = [...parts[0]][0];
  return (parts.length > 1 ? first + [...parts[parts.length - 1]][0] : first).toUpperCase();
}

// A stable colour per name, for avatars.
function hue(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

export class Tile {
  constructor(stage, { key, peerId, name, local = false, screen = false }) {
    this.stage = stage;
    this.key = key;
    this.peerId = peerId;
    this.local = local;
    this.screen = screen;
    this.streamId = null;
    this.stream = new MediaStream();
    this.speakingUntil = 0;
    this.video = el('video', { playsinline: true, autoplay: true });
    this.video.muted = local; // never play our own microphone back
    this.video.playsInline = true;
    this.avatar = el('div', { class: 'avatar' }, el('span'));
    this.nameEl = el('span', { class: 'name' });
    this.note = el('p', { class: 'tile-note', role: 'status' });
    this.handEl = el('span', { class: 'hand', role: 'img', title: 'Hand raised', 'aria-label': 'Hand raised', hidden: true }, icon('hand'));
    this.qualityEl = el('span', { class: 'quality', role: 'img', hidden: true }, el('i'), el('i'), el('i'));
    this.minimised = false;
    this.minBtn = el('button', {
      class: 'icon-btn min-btn',
      type: 'button',
      onclick: (e) => {
        e.stopPropagation();
        if (this.minimised) stage.restore(this);
        else stage.minimise(this);
      },
    }, icon('minus'));
    this.labelMinimise();
    this.el = el('div', {
      class: `tile${local ? ' local' : ''}${screen ? ' screen' : ''}`,
      dataset: { key, peerId: peerId ?? '', audio: 'on', video: 'off' },
      tabindex: '0',
    },
    this.video,
    this.avatar,
    this.note,
    el('div', { class: 'tile-bar' },
      el('span', { class: 'mic-off', title: 'Microphone off' }, icon('mic-off')),
      this.handEl,
      this.nameEl,
      this.qualityEl),
    el('div', { class: 'tile-actions' },
      this.minBtn,
      el('button', { class: 'icon-btn pin-btn', type: 'button', title: 'Pin', 'aria-label': 'Pin this tile', onclick: () => stage.togglePin(this) }, icon('pin')),
      el('button', { class: 'icon-btn fs-btn', type: 'button', title: 'Fullscreen', 'aria-label': 'Fullscreen', onclick: () => stage.fullscreen(this) }, icon('maximize'))));
    this.el.addEventListener('dblclick', () => stage.fullscreen(this));
    this.setName(name);
    this.video.addEventListener('loadedmetadata', () => this.refresh());
    this.video.addEventListener('resize', () => this.refresh());
  }

  setName(name) {
    this.name = name;
    const label = this.screen ? `${name}'s screen` : this.local ? `${name} (you)` : name;
    this.nameEl.textContent = label;
    this.el.dataset.name = name;
    this.el.setAttribute('aria-label', label);
    this.avatar.firstChild.textContent = initials(name);
    this.avatar.style.setProperty('--hue', hue(name));
  }

  addTrack(track) {
    for (const t of this.stream.getTracks()) if (t.kind === track.kind && t !== track) this.stream.removeTrack(t);
    if (!this.stream.getTracks().includes(track)) this.stream.addTrack(track);
    track.addEventListener('mute', () => this.refresh());
    track.addEventListener('unmute', () => this.refresh());
    track.addEventListener('ended', () => this.refresh());
    if (this.video.srcObject !== this.stream) this.video.srcObject = this.stream;
    this.play();
    this.refresh();
  }

  removeTrack(track) {
    if (!track) return;
    if (this.stream.getTracks().includes(track)) this.stream.removeTrack(track);
    // A media element with an empty stream waits for data forever; give it none.
    if (this.stream.getTracks().length === 0) this.video.srcObject = null;
    this.refresh();
  }

  play() {
    const p = this.video.play();
    if (p?.catch) {
      p.catch((err) => {
        if (err?.name === 'NotAllowedError') this.stage.emit('autoplay-blocked');
      });
    }
  }

  /** Shows the video or the avatar, and the microphone state. */
  refresh() {
    const v = this.stream.getVideoTracks()[0];
    const live = Boolean(v && v.readyState === 'live' && !v.muted);
    const on = live && this.videoWanted !== false;
    this.el.dataset.video = on ? 'on' : 'off';
    this.el.dataset.audio = this.audioWanted === false ? 'off' : 'on';
  }

  /** The participant's own announcement of their microphone and camera. */
  setState({ audio, video }) {
    if (typeof audio === 'boolean') this.audioWanted = audio;
    if (typeof video === 'boolean') this.videoWanted = video;
    this.refresh();
  }

  /**
   * What end-to-end encryption lets this page make of the tile's media: null (it
   * decrypts, or the call is not encrypted), 'key' (another passphrase), 'plain' (the
   * member joined without one) or 'locked' (the member encrypts, this page has no
   * passphrase). Undecryptable media is not shown or played: the tile says why.
   */
  setE2ee(state) {
    const notes = {
      key: "Can't decrypt: this member uses another passphrase",
      plain: 'Not encrypted: this member joined without the passphrase',
      locked: 'Encrypted end to end: join with the passphrase to see and hear this member',
    };
    const note = notes[state] ?? null;
    if (note) this.el.dataset.e2ee = state;
    else delete this.el.dataset.e2ee;
    this.note.textContent = note ?? '';
    this.video.muted = this.local || state === 'locked';
  }

  setLevel(level, now) {
    if (level > SPEAK_ON && this.audioWanted !== false) this.speakingUntil = now + SPEAK_HOLD_MS;
    const speaking = now < this.speakingUntil;
    if (speaking !== this.el.classList.contains('speaking')) this.el.classList.toggle('speaking', speaking);
    if (speaking) this.stage.onSpeaking(this, now);
  }

  /** The minimise button's name: what it does now. */
  labelMinimise() {
    const label = this.minimised ? 'Restore this tile' : 'Minimise this tile';
    this.minBtn.title = this.minimised ? 'Restore' : 'Minimise';
    this.minBtn.setAttribute('aria-label', label);
    this.minBtn.querySelector('use').setAttribute('href', this.minimised ? '#i-restore' : '#i-minus');
  }

  /** Whether the member has a hand raised. */
  setHand(raised) {
    this.handEl.hidden = !raised;
    this.el.classList.toggle('hand-raised', raised);
  }

  /**
   * The connection-quality bars (call/quality.js): `level` 'good', 'fair', 'poor' or
   * 'none' (nothing arrives), `detail` the figures behind it; null hides them.
   */
  setQuality(level, detail = '') {
    this.qualityEl.hidden = !level;
    if (!level) return;
    this.qualityEl.dataset.level = level;
    const words = { good: 'good', fair: 'fair', poor: 'poor', none: 'no media arriving' };
    const label = `Connection: ${words[level] ?? level}${detail ? ` (${detail})` : ''}`;
    this.qualityEl.title = label;
    this.qualityEl.setAttribute('aria-label', label);
  }

  destroy() {
    this.video.srcObject = null;
    this.el.remove();
  }
}

export class Stage extends Emitter {
  constructor(root) {
    super();
    this.root = root; // #stage
    this.grid = root.querySelector('#tiles');
    this.pinArea = root.querySelector('#pinned');
    this.minArea = root.querySelector('#minimised');
    this.pager = root.querySelector('#pager');
    // Speaker view: the one speaking takes the main area (unless a tile was pinned by
    // hand); when it was moved there by speaker view, `autoPinned`.
    this.speakerView = false;
    this.autoPinned = false;
    this.speakerSince = 0;
    this.grid.addEventListener('scroll', () => this.renderPager(), { passive: true });
    this.pager?.querySelector('.prev')?.addEventListener('click', () => this.turnPage(-1));
    this.pager?.querySelector('.next')?.addEventListener('click', () => this.turnPage(1));
    this.tiles = new Map(); // key -> Tile
    this.visible = new Set(); // tile keys on screen
    this.hideTimers = new Map();
    this.pinned = null;
    this.io = 'IntersectionObserver' in window
      ? new IntersectionObserver((entries) => this.onIntersect(entries), { threshold: [0, VISIBLE_RATIO, 0.5, 1] })
      : null;
    this.ro = 'ResizeObserver' in window ? new ResizeObserver(() => this.layout()) : null;
    this.ro?.observe(this.root);
    window.addEventListener('resize', () => this.layout());
    document.addEventListener('fullscreenchange', () => this.layout());
  }

  // ---- tiles

  keyFor(peerId, streamId) {
    return streamId && isScreenStream(streamId) ? `${peerId}|${streamId}` : peerId;
  }

  ensure(key, opts) {
    let t = this.tiles.get(key);
    if (t) return t;
    t = new Tile(this, { key, ...opts });
    this.tiles.set(key, t);
    // Order: our own camera first, then the others' cameras, then screen shares.
    this.grid.append(t.el);
    this.sort();
    this.io?.observe(t.el);
    if (!this.io) this.visible.add(key);
    this.layout();
    return t;
  }

  sort() {
    const rank = (t) => (t.screen ? 2 : 0) + (t.local ? 0 : 1);
    const tiles = [...this.grid.children].map((e) => this.tiles.get(e.dataset.key)).filter(Boolean);
    const sorted = [...tiles].sort((a, b) => rank(a) - rank(b));
    if (sorted.some((t, i) => t !== tiles[i])) this.grid.append(...sorted.map((t) => t.el));
  }

  peerTile(peerId, name) {
    const t = this.ensure(peerId, { peerId, name });
    if (t.name !== name) t.setName(name);
    return t;
  }

  /** The tile that shows a remote track (made when missing). */
  trackTile(info, name) {
    const screen = isScreenStream(info.streamId);
    const key = this.keyFor(info.peerId, info.streamId);
    const t = this.ensure(key, { peerId: info.peerId, name, screen });
    t.streamId = info.streamId;
    return t;
  }

  remove(key) {
    const t = this.tiles.get(key);
    if (!t) return;
    if (this.pinned === t) this.unpin();
    this.io?.unobserve(t.el);
    t.destroy();
    this.minArea.hidden = this.minArea.children.length === 0;
    this.tiles.delete(key);
    this.visible.delete(key);
    clearTimeout(this.hideTimers.get(key));
    this.hideTimers.delete(key);
    this.layout();
  }

  removePeer(peerId) {
    for (const [key, t] of [...this.tiles]) if (t.peerId === peerId && !t.local) this.remove(key);
  }

  clearRemote() {
    for (const [key, t] of [...this.tiles]) if (!t.local) this.remove(key);
  }

  tilesOf(peerId) {
    return [...this.tiles.values()].filter((t) => t.peerId === peerId);
  }

  // ---- visibility → subscriptions

  onIntersect(entries) {
    let changed = false;
    for (const e of entries) {
      const key = e.target.dataset.key;
      if (!this.tiles.has(key) || this.tiles.get(key).minimised) continue;
      if (e.isIntersecting && e.intersectionRatio >= VISIBLE_RATIO - 0.001) {
        clearTimeout(this.hideTimers.get(key));
        this.hideTimers.delete(key);
        if (!this.visible.has(key)) {
          this.visible.add(key);
          changed = true;
        }
      } else if (this.visible.has(key) && !this.hideTimers.has(key)) {
        this.hideTimers.set(key, setTimeout(() => {
          this.hideTimers.delete(key);
          this.visible.delete(key);
          this.emit('visibility');
        }, HIDE_DELAY_MS));
      }
    }
    if (changed) this.emit('visibility');
  }

  isVisible(peerId, streamId) {
    return this.visible.has(this.keyFor(peerId, streamId));
  }

  // ---- pin and fullscreen

  togglePin(tile) {
    if (this.pinned === tile && !this.autoPinned) this.unpin();
    else this.pin(tile);
    this.autoPinned = false;
  }

  pin(tile) {
    if (tile.minimised) this.restore(tile, false);
    if (this.pinned) this.unpin(false);
    this.pinned = tile;
    tile.el.classList.add('pinned');
    this.pinArea.append(tile.el);
    this.pinArea.hidden = false;
    this.root.classList.add('has-pin');
    this.layout();
  }

  unpin(relayout = true) {
    const t = this.pinned;
    if (!t) return;
    this.pinned = null;
    this.autoPinned = false;
    t.el.classList.remove('pinned');
    this.grid.append(t.el);
    this.sort();
    this.pinArea.hidden = true;
    this.root.classList.remove('has-pin');
    if (relayout) this.layout();
  }

  fullscreen(tile) {
    const doc = document;
    const current = doc.fullscreenElement ?? doc.webkitFullscreenElement;
    if (current) {
      (doc.exitFullscreen ?? doc.webkitExitFullscreen)?.call(doc);
      return;
    }
    const target = tile.el;
    const req = target.requestFullscreen ?? target.webkitRequestFullscreen;
    if (req) {
      Promise.resolve(req.call(target)).catch(() => this.pin(tile));
    } else if (tile.video.webkitEnterFullscreen) {
      tile.video.webkitEnterFullscreen(); // iPhone: only a video element can go fullscreen
    } else {
      this.pin(tile);
    }
  }

  // ---- speaker view

  /** Speaker view on or off: the one speaking (or the first other member) in the main area. */
  setSpeakerView(on) {
    this.speakerView = on;
    this.root.classList.toggle('speaker-view', on);
    if (!on) {
      if (this.autoPinned) this.unpin();
      return;
    }
    if (this.pinned) return;
    const speaking = [...this.tiles.values()].find((t) => !t.local && t.el.classList.contains('speaking'));
    const first = speaking ?? [...this.tiles.values()].find((t) => !t.local && !t.minimised);
    if (first) this.autoPin(first, Date.now());
  }

  /**
   * A tile speaks: in speaker view it takes the main area once the one there has stopped
   * speaking, and not sooner than a moment after the last change.
   */
  onSpeaking(tile, now) {
    if (!this.speakerView || tile.local || tile.minimised || this.pinned === tile) return;
    if (this.pinned && !this.autoPinned) return; // pinned by hand: it stays
    if (this.pinned?.el.classList.contains('speaking') || now - this.speakerSince < SPEAKER_HOLD_MS) return;
    this.autoPin(tile, now);
  }

  autoPin(tile, now) {
    this.pin(tile);
    this.autoPinned = true;
    this.speakerSince = now;
  }

  // ---- minimised tiles: a chip with the name, no video (it is not subscribed)

  minimise(tile) {
    if (tile.minimised) return;
    if (this.pinned === tile) this.unpin(false);
    tile.minimised = true;
    tile.labelMinimise();
    tile.el.classList.add('minimised');
    this.minArea.append(tile.el);
    this.minArea.hidden = false;
    this.io?.unobserve(tile.el);
    clearTimeout(this.hideTimers.get(tile.key));
    this.hideTimers.delete(tile.key);
    if (this.visible.delete(tile.key)) this.emit('visibility');
    this.layout();
  }

  restore(tile, relayout = true) {
    if (!tile.minimised) return;
    tile.minimised = false;
    tile.labelMinimise();
    tile.el.classList.remove('minimised');
    this.grid.append(tile.el);
    this.sort();
    this.minArea.hidden = this.minArea.children.length === 0;
    if (this.io) this.io.observe(tile.el);
    else this.visible.add(tile.key);
    if (relayout) this.layout();
  }

  // ---- pages: a grid with more tiles than fit scrolls a page at a time

  /** The page height: the rows of tiles that fit in the grid. */
  pageHeight() {
    const tileH = parseFloat(this.grid.style.getPropertyValue('--tile-h')) || this.grid.clientHeight;
    const rows = Math.max(1, Math.floor((this.grid.clientHeight + GAP) / (tileH + GAP)));
    return rows * (tileH + GAP);
  }

  turnPage(step) {
    this.grid.scrollTo({ top: Math.max(0, this.grid.scrollTop + step * this.pageHeight()), behavior: 'instant' });
    this.renderPager();
  }

  renderPager() {
    if (!this.pager) return;
    const paged = this.grid.classList.contains('scrolls');
    this.pager.hidden = !paged;
    if (!paged) return;
    const page = this.pageHeight();
    const pages = Math.max(1, Math.ceil((this.grid.scrollHeight - GAP) / page - 0.01));
    const at = Math.min(pages - 1, Math.round(this.grid.scrollTop / page));
    this.pager.querySelector('.where').textContent = `${at + 1} / ${pages}`;
    this.pager.querySelector('.prev').disabled = at === 0;
    this.pager.querySelector('.next').disabled = at >= pages - 1;
  }

  // ---- layout

  /** Chooses columns so that tiles are as large as possible; scrolls when they get too small. */
  layout() {
    if (this.layoutFrame) return;
    const run = () => {
      this.layoutFrame = 0;
      const n = this.grid.children.length;
      const w = this.grid.clientWidth;
      const h = this.grid.clientHeight;
      if (!n || !w || !h) return;
      const strip = this.root.classList.contains('has-pin');
      const portrait = h > w * 1.2;
      const ratio = portrait ? 4 / 3 : 16 / 9;
      if (strip) {
        const tileH = Math.max(60, Math.min(h - GAP, 160));
        this.grid.style.setProperty('--tile-w', `${Math.floor(tileH * 16 / 9)}px`);
        this.grid.style.setProperty('--cols', String(n));
        this.grid.classList.remove('scrolls');
        this.renderPager();
        return;
      }
      const minW = Math.min(w, w < 600 ? 150 : 220);
      let best = { cols: 1, tileW: 0 };
      for (let cols = 1; cols <= n; cols++) {
        const rows = Math.ceil(n / cols);
        const byW = (w - GAP * (cols - 1)) / cols;
        const byH = ((h - GAP * (rows - 1)) / rows) * ratio;
        const tileW = Math.min(byW, byH);
        if (tileW > best.tileW) best = { cols, tileW };
      }
      let scrolls = false;
      if (best.tileW < minW) {
        // Too many to fit: fixed-size tiles, and the grid scrolls (off-screen tiles are not subscribed).
        const cols = Math.max(1, Math.floor((w + GAP) / (minW + GAP)));
        best = { cols, tileW: Math.floor((w - GAP * (cols - 1)) / cols) };
        scrolls = true;
      }
      this.grid.style.setProperty('--cols', String(best.cols));
      this.grid.style.setProperty('--tile-w', `${Math.floor(best.tileW)}px`);
      this.grid.style.setProperty('--tile-h', `${Math.floor(best.tileW / ratio)}px`);
      this.grid.classList.toggle('scrolls', scrolls);
      this.renderPager();
    };
    this.layoutFrame = requestAnimationFrame(run);
  }
}
