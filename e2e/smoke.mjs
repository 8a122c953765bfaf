// Browser smoke test: two real Chromium processes (fake camera and microphone) join one room on
// a running peer-calls server, one through the landing page's form, one by link. Then we check
// from RTCPeerConnection.getStats() that each one decodes the other's video and receives its
// audio, and that a chat message crosses over.
//
//   PEERCALLS_URL=http://127.0.0.1:3789 node e2e/smoke.mjs
//   bash e2e/run.sh       # builds and starts a server on a free port, then runs this
//
// Exit code 0 on success, 1 (with the reason and the pages' logs) on failure.
// Screenshots go to ci-artifacts/screenshots/ at the repo root.

import { chromium } from 'playwright-core';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BASE = (process.env.PEERCALLS_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.SMOKE_TIMEOUT_MS ?? 30_000);
const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../ci-artifacts/screenshots');
const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
];

const started = Date.now();
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `check` until it returns a truthy value; on the deadline throws with the last value seen.
async function waitFor(what, check, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last && last.ok !== false) return last;
    } catch (err) {
      last = `threw: ${err.message}`;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(250);
  }
}

// One participant: its own browser process with a fresh, empty profile.
async function participant(name) {
  const profile = await mkdtemp(path.join(tmpdir(), `peercalls-${name}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1100, height: 700 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  const close = async () => {
    await context.close().catch(() => {});
    await rm(profile, { recursive: true, force: true });
  };
  return { name, page, logs, close };
}

// Runs in the page: the inbound RTP stats of the single peer connection.
function inboundStats() {
  const pc = window.peerCall?.pc;
  if (!pc) return null;
  return pc.getStats().then((report) => {
    const out = { state: pc.connectionState, video: null, audio: null };
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') {
        out.video = { framesDecoded: s.framesDecoded ?? 0, frameWidth: s.frameWidth ?? 0, packetsReceived: s.packetsReceived ?? 0 };
      } else if (s.kind === 'audio') {
        out.audio = { packetsReceived: s.packetsReceived ?? 0 };
      }
    });
    return out;
  });
}

// Two samples ~1 s apart: video frames keep being decoded, and audio packets arrive.
async function mediaFlows(p) {
  const a = await p.page.evaluate(inboundStats);
  await sleep(1000);
  const b = await p.page.evaluate(inboundStats);
  const ok = Boolean(
    a?.video && b?.video && b.video.framesDecoded > a.video.framesDecoded && b.video.frameWidth > 0 &&
    b.audio && b.audio.packetsReceived > 0,
  );
  return { ok, before: a, after: b };
}

// On the call page: fill in the nickname and join.
async function join(p) {
  await p.page.locator('#nickname').waitFor({ state: 'visible' });
  await p.page.fill('#nickname', p.name);
  await p.page.screenshot({ path: path.join(SHOTS, `2-join-${p.name}.png`) });
  await p.page.click('#join');
  await p.page.locator('#call-view').waitFor({ state: 'visible' });
}

async function main() {
  if (!BASE) {
    console.error('FAIL: set PEERCALLS_URL to a running server, e.g. PEERCALLS_URL=http://127.0.0.1:3789');
    process.exitCode = 1;
    return;
  }
  await rm(SHOTS, { recursive: true, force: true }); // no stale screenshots from an earlier run
  await mkdir(SHOTS, { recursive: true });
  const room = `smoke-${Math.random().toString(36).slice(2, 10)}`;
  const people = [];
  try {
    people.push(await participant('alice'), await participant('bob'));
    const [alice, bob] = people;

    // Alice comes in through the landing page's form (POST /call, 302 to /call/{room}); Bob by link.
    await alice.page.goto(`${BASE}/`);
    await alice.page.fill('#call', room);
    await alice.page.screenshot({ path: path.join(SHOTS, '1-landing.png') });
    await Promise.all([alice.page.waitForURL(`${BASE}/call/${room}`), alice.page.click('#create button')]);
    log(`landing page OK; room ${room}`);
    await bob.page.goto(`${BASE}/call/${room}`);

    for (const p of people) await join(p);
    log('both joined');

    for (const p of people) {
      const s = await waitFor(`${p.name}: media from the other browser`, () => mediaFlows(p));
      log(`${p.name} receives media:`, JSON.stringify(s.after));
    }

    const text = `hello from alice ${room}`;
    await alice.page.fill('#chat-input', text);
    await alice.page.click('#chat-send');
    await waitFor("alice's chat message in bob's #chat-log",
      () => bob.page.locator('#chat-log').innerText().then((t) => t.includes(text)));
    log('chat message arrived');

    for (const p of people) await p.page.screenshot({ path: path.join(SHOTS, `3-in-call-${p.name}.png`) });
    const errors = people.flatMap((p) => p.logs.filter((l) => l.startsWith('pageerror')).map((l) => `${p.name}: ${l}`));
    if (errors.length) throw new Error(`uncaught errors in the page:\n${errors.join('\n')}`);
    log(`PASS in ${((Date.now() - started) / 1000).toFixed(1)}s; screenshots in ${SHOTS}`);
  } catch (err) {
    console.error(`\nFAIL: ${err.message}\n`);
    for (const p of people) {
      await p.page.screenshot({ path: path.join(SHOTS, `fail-${p.name}.png`) }).catch(() => {});
      const status = await p.page.locator('#status').innerText().catch(() => '?');
      console.error(`--- ${p.name}: status line "${status}"; console:\n${p.logs.slice(-30).join('\n') || '(empty)'}`);
    }
    process.exitCode = 1;
  } finally {
    await Promise.all(people.map((p) => p.close()));
  }
}

await main();
