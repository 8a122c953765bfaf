// Helpers for the browser end-to-end suite (run.mjs): the real server as a child process,
// Chromium participants with fake devices, polls with deadlines, and getStats() readers.

import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ARTIFACTS = path.join(ROOT, 'ci-artifacts');
export const SHOTS = path.join(ARTIFACTS, 'screenshots');
export const LOGS = path.join(ARTIFACTS, 'e2e');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';
const BIN = process.env.PEERCALLS_BIN ?? path.join(ROOT, 'target/release/peer-calls');
export const TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS ?? 30_000);

const started = Date.now();
export const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s]`, ...a);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value (and not {ok: false}); throws at the deadline. */
export async function waitFor(what, check, timeoutMs = TIMEOUT_MS, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last && last.ok !== false) return last;
    } catch (err) {
      last = `threw: ${err.message.split('\n')[0]}`;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(everyMs);
  }
}

export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 (openssl), as PEM files in a new
 * folder: {cert, key}.
 */
export async function selfSignedCert() {
  const dir = await mkdtemp(path.join(tmpdir(), 'peercalls-e2e-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { cert, key };
}

let nextNetns = 1;

/**
 * A network namespace joined to this one by a veth pair, for a browser that must not share
 * the server's loopback: `host` is the address on this side (the server binds it), `inside`
 * the one in the namespace. `run(cmd)` runs a command inside; `browser(path)` makes a
 * wrapper that starts that browser inside. `close()` removes it all.
 */
export async function netns(name) {
  const n = nextNetns++;
  const ns = `pc-${name}-${process.pid % 10000}-${n}`.slice(0, 15);
  const [a, b] = [`pch${process.pid % 1000}${n}`.slice(0, 15), `pcn${process.pid % 1000}${n}`.slice(0, 15)];
  const net = `10.${70 + (process.pid % 20)}.${n}`;
  const sh = (args) => execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  sh(['ip', 'netns', 'add', ns]);
  sh(['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  sh(['ip', 'link', 'set', b, 'netns', ns]);
  sh(['ip', 'addr', 'add', `${net}.1/24`, 'dev', a]);
  sh(['ip', 'link', 'set', a, 'up']);
  sh(['ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${net}.2/24`, 'dev', b]);
  sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', b, 'up']);
  sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  const dir = await mkdtemp(path.join(tmpdir(), `peercalls-e2e-${ns}-`));
  return {
    name: ns,
    host: `${net}.1`,
    inside: `${net}.2`,
    run: (cmd) => sh(['ip', 'netns', 'exec', ns, ...cmd]),
    /** Caps what reaches the namespace at `rate` (a tc rate such as `300kbit`): a token
     * bucket on the host side of the veth pair, dropping what waits over 50 ms. */
    limitDown: (rate) => sh(['tc', 'qdisc', 'add', 'dev', a, 'root', 'tbf', 'rate', rate, 'burst', '6kb', 'latency', '50ms']),
    async browser(executable) {
      const wrapper = path.join(dir, path.basename(executable));
      await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${executable} "$@"\n`);
      await chmod(wrapper, 0o755);
      return wrapper;
    },
    async close() {
      // The veth pair first: deleting a link is done when `ip` returns, while a deleted
      // namespace takes its devices down later, in the kernel's own time. A browser of the
      // next case that sees an interface vanish mid-load fails it with ERR_NETWORK_CHANGED.
      try { sh(['ip', 'link', 'del', a]); } catch { /* gone */ }
      try { sh(['ip', 'netns', 'del', ns]); } catch { /* gone */ }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The real peer-calls binary on loopback (or `ip`). `restart()` brings it back on the same port. */
export class Server {
  constructor(name, extraArgs = [], { tls = false, ip = '127.0.0.1' } = {}) {
    this.name = name;
    this.extraArgs = extraArgs;
    this.tls = tls;
    this.ip = ip;
    this.proc = null;
    this.port = 0;
  }

  get url() {
    return `${this.tls ? 'https' : 'http'}://${this.ip}:${this.port}`;
  }

  async start() {
    if (!this.port) this.port = await freePort(this.ip);
    if (this.tls && !this.cert) {
      this.cert = await selfSignedCert();
      this.extraArgs = [...this.extraArgs, '--tls-cert', this.cert.cert, '--tls-key', this.cert.key];
      // The health poll below trusts the test's own certificate.
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    }
    await mkdir(LOGS, { recursive: true });
    // One log per case: a restart appends to it.
    const out = createWriteStream(path.join(LOGS, `${this.name}-server.log`), { flags: this.started ? 'a' : 'w' });
    this.started = true;
    // Two shards, a room spread of 1 and no load needed to spread: the browsers of one room
    // land on different shards.
    const args = ['--bind', `${this.ip}:${this.port}`, ...(this.extraArgs.includes('--udp-port') ? [] : ['--udp-port', '0']), '--shards', '2', '--room-spread', '1', '--spread-load', '0', '--no-pin', ...this.extraArgs];
    const proc = spawn(BIN, args, { env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.pipe(out, { end: false });
    proc.stderr.pipe(out, { end: false });
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.proc = proc;
    await waitFor(`${this.name}: server on ${this.url}`, async () => {
      if (proc.exitCode !== null) throw new Error(`the server exited with ${proc.exitCode}; see ${LOGS}/${this.name}-server.log`);
      const r = await fetch(`${this.url}/health`).catch(() => null);
      return r?.ok;
    }, 15_000, 100);
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGINT'); // at once (SIGTERM would drain the calls first)
    const done = await Promise.race([this.exited, sleep(5000).then(() => null)]);
    if (!done) {
      proc.kill('SIGKILL');
      await this.exited;
    }
    this.proc = null;
  }

  async restart() {
    await this.stop();
    await this.start();
  }
}

const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
];
const FAKE_MEDIA = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];

/**
 * One participant in its own Chromium process with an empty profile.
 * opts: {viewport, initScript, permissions, denyMedia: origin whose camera and microphone are blocked,
 *   bypassCSP}
 */
export async function participant(name, opts = {}) {
  // opts.executablePath: another Chromium (a wrapper that starts it in a namespace).
  const profile = await mkdtemp(path.join(tmpdir(), `peercalls-e2e-${name}-`));
  // --use-fake-ui-for-media-stream would accept every prompt, even for a blocked site.
  const args = [...ARGS, ...(opts.denyMedia ? ['--use-fake-device-for-media-stream'] : FAKE_MEDIA)];
  // A server with the test's self-signed certificate (opts.insecureTls).
  if (opts.insecureTls) args.push('--ignore-certificate-errors');
  // A server on a veth address is not a secure origin; camera and microphone need one.
  if (opts.secureOrigin) args.push(`--unsafely-treat-insecure-origin-as-secure=${opts.secureOrigin}`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.executablePath ?? CHROMIUM,
    headless: true,
    args,
    viewport: opts.viewport ?? { width: 1100, height: 700 },
    isMobile: opts.isMobile ?? false,
    hasTouch: opts.isMobile ?? false,
    permissions: opts.permissions,
    ignoreHTTPSErrors: Boolean(opts.insecureTls),
    // A test's own scripts in the page (a worker from a blob: URL), which the page's
    // Content-Security-Policy refuses.
    bypassCSP: Boolean(opts.bypassCSP),
  });
  // The lowest video preset (360p, 15 fps): three browsers and the server share two cores.
  await context.addInitScript(() => {
    try {
      if (!localStorage.getItem('peercalls.quality')) localStorage.setItem('peercalls.quality', 'low');
    } catch {
      // no storage on this page
    }
  });
  // One script or several, run in this order.
  for (const script of [opts.initScript ?? []].flat()) await context.addInitScript(script);
  const page = context.pages()[0] ?? (await context.newPage());
  if (opts.denyMedia) {
    // As if the person had clicked "Block" for this site.
    const cdp = await context.newCDPSession(page);
    for (const name of ['camera', 'microphone']) {
      await cdp.send('Browser.setPermission', { permission: { name }, setting: 'denied', origin: opts.denyMedia });
    }
  }
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  return {
    name,
    page,
    context,
    logs,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/**
 * One participant in Firefox (ESR), driven over WebDriver BiDi by puppeteer-core, with fake
 * devices and no permission prompts. Its `page` offers the part of Playwright's page API the
 * helpers here use, so join(), inbound() and decodes() work on both browsers.
 * Firefox gathers no loopback candidates: its server must listen on a real interface.
 */
export async function firefoxParticipant(name, opts = {}) {
  const profile = await mkdtemp(path.join(tmpdir(), `peercalls-e2e-${name}-`));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: opts.executablePath ?? FIREFOX,
    headless: true,
    userDataDir: profile,
    defaultViewport: opts.viewport ?? { width: 1100, height: 700 },
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      // A server on a veth address is not a secure origin; camera and microphone need one.
      'media.devices.insecure.enabled': true,
      'media.getusermedia.insecure.enabled': true,
    },
  });
  const raw = (await browser.pages())[0] ?? (await browser.newPage());
  // The lowest video preset, as for Chromium participants.
  await raw.evaluateOnNewDocument(() => {
    try {
      if (!localStorage.getItem('peercalls.quality')) localStorage.setItem('peercalls.quality', 'low');
    } catch {
      // no storage on this page
    }
  });
  const logs = [];
  raw.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  // Firefox reports a failed ICE check as a script error of its own, not one of the page's.
  raw.on('pageerror', (e) => logs.push(`${/^WebRTC: /.test(e.message) ? 'browser' : 'pageerror'}: ${e.message}`));
  const page = {
    goto: (url) => raw.goto(url),
    evaluate: (fn, arg) => raw.evaluate(fn, arg),
    click: (selector) => raw.click(selector),
    fill: (selector, value) => raw.locator(selector).fill(value),
    screenshot: (o) => raw.screenshot(o),
    locator: (selector) => ({
      waitFor: () => raw.waitForSelector(selector, { visible: true, timeout: TIMEOUT_MS }),
      innerText: () => raw.$eval(selector, (e) => e.innerText),
    }),
  };
  return {
    name,
    page,
    browser,
    logs,
    async close() {
      await browser.close().catch(() => {});
      await rm(profile, { recursive: true, force: true }).catch(() => {});
    },
  };
}

export async function shot(p, file) {
  await mkdir(SHOTS, { recursive: true });
  await p.page.screenshot({ path: path.join(SHOTS, file) });
}

/** On the call page's join screen: enter the name, wait for the preview, join. */
export async function join(p, { screenshot, camera = true, mic = true, passphrase = '' } = {}) {
  const { page } = p;
  await page.locator('#nickname').waitFor({ state: 'visible' });
  await page.fill('#nickname', p.name);
  await waitFor(`${p.name}: camera preview`, () => page.evaluate(() => {
    const v = document.getElementById('preview');
    return document.getElementById('preview-tile').dataset.video === 'on' && v.videoWidth > 0;
  }));
  if (!camera) await page.click('#lobby-cam');
  if (!mic) await page.click('#lobby-mic');
  if (passphrase) {
    await page.click('#e2ee-box summary');
    await page.fill('#e2ee-passphrase', passphrase);
  }
  if (screenshot) await shot(p, screenshot);
  await page.click('#join');
  await page.locator('#in-call').waitFor({ state: 'visible' });
  await waitFor(`${p.name}: connected`, () => page.evaluate(() => document.body.dataset.conn === 'connected'));
}

/**
 * Runs in the page: inbound RTP of the current peer connection (RTCPeerConnection.getStats()),
 * matched to the tile whose <video> plays the track. One entry per tile and kind.
 */
export function pageInbound() {
  const pc = window.peerCalls?.session?.pc;
  if (!pc) return Promise.resolve(null);
  const owner = new Map();
  for (const tile of document.querySelectorAll('#stage .tile')) {
    if (tile.dataset.local) continue;
    const stream = tile.querySelector('video')?.srcObject;
    for (const t of stream?.getTracks() ?? []) {
      owner.set(t.id, { name: tile.dataset.name, screen: tile.classList.contains('screen'), key: tile.dataset.key });
    }
  }
  return pc.getStats().then((report) => {
    const out = [];
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const o = owner.get(s.trackIdentifier);
      if (!o) return;
      out.push({
        ...o,
        kind: s.kind,
        framesDecoded: s.framesDecoded ?? 0,
        frameWidth: s.frameWidth ?? 0,
        packetsReceived: s.packetsReceived ?? 0,
        totalAudioEnergy: s.totalAudioEnergy ?? 0,
        audioLevel: s.audioLevel ?? 0,
      });
    });
    return out;
  });
}

export const inbound = (p) => p.page.evaluate(pageInbound);

function pick(list, name, kind, screen) {
  return list?.find((s) => s.name === name && s.kind === kind && s.screen === screen) ?? null;
}

/**
 * Two getStats() samples ~1 s apart: `viewer` decodes `publisher`'s video (framesDecoded grows,
 * frameWidth > 0) and receives its audio (packetsReceived grows). Options: screen (the screen
 * share tile), audio (default true).
 */
export async function decodes(viewer, publisher, { screen = false, audio = true } = {}) {
  const a = await inbound(viewer);
  await sleep(1000);
  const b = await inbound(viewer);
  const v0 = pick(a, publisher, 'video', screen);
  const v1 = pick(b, publisher, 'video', screen);
  const a0 = pick(a, publisher, 'audio', screen);
  const a1 = pick(b, publisher, 'audio', screen);
  const videoOk = Boolean(v0 && v1 && v1.framesDecoded > v0.framesDecoded && v1.frameWidth > 0);
  const audioOk = !audio || Boolean(a0 && a1 && a1.packetsReceived > a0.packetsReceived);
  return { ok: videoOk && audioOk, video: v1, audio: a1, framesBefore: v0?.framesDecoded };
}

/** Waits until `viewer` decodes `publisher` (see decodes()). */
export function waitDecodes(viewer, publisher, opts = {}, timeoutMs = TIMEOUT_MS) {
  const what = `${viewer.name} decodes ${publisher}'s ${opts.screen ? 'screen' : 'camera'}${opts.audio === false ? '' : ' and receives audio'}`;
  return waitFor(what, () => decodes(viewer, publisher, opts), timeoutMs).then((r) => {
    log(`  ${what}: ${r.video.frameWidth}px, frames ${r.framesBefore}→${r.video.framesDecoded}${r.audio ? `, audio packets ${r.audio.packetsReceived}` : ''}`);
    return r;
  });
}

/** The page's state for diagnostics on failure. */
export async function describe(p) {
  return p.page.evaluate(() => ({
    url: location.href,
    screen: document.body.dataset.screen,
    conn: document.body.dataset.conn,
    banner: document.getElementById('banner')?.textContent,
    notice: document.getElementById('notice')?.hidden ? undefined : document.getElementById('notice-text')?.textContent,
    tiles: [...document.querySelectorAll('#stage .tile')].map((t) => `${t.dataset.key}:${t.dataset.name}:v=${t.dataset.video}:a=${t.dataset.audio}`),
    toasts: [...document.querySelectorAll('.toast')].map((t) => t.textContent),
  })).catch((err) => `unavailable: ${err.message}`);
}

/** How many m-lines a participant's session has (its remote description's media sections). */
export async function mlineCount(p) {
  return p.page.evaluate(() => window.peerCalls.session.pc.remoteDescription.sdp.split('\r\nm=').length - 1);
}
