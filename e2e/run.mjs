// Browser end-to-end suite: real Chromium and Firefox processes (fake camera and microphone)
// against the real peer-calls server on loopback (or a veth address). Every case starts its own
// server; assertions come from RTCPeerConnection.getStats() and the page, polled with deadlines.
//
//   node e2e/run.mjs                 every case
//   node e2e/run.mjs call reconnect  only these cases
//
// PEERCALLS_BIN picks the server binary (default target/release/peer-calls), CHROMIUM and FIREFOX the browsers.
// Screenshots: ci-artifacts/screenshots/; server logs: ci-artifacts/e2e/.
// Ends with "N passed, N failed"; the exit code is 1 when any case failed.

import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import {
  CHROMIUM, firefoxParticipant, freePort, netns, Server, participant, join, shot, waitFor, waitDecodes, inbound, mlineCount, log, sleep, describe, SHOTS, LOGS, TIMEOUT_MS,
} from './lib.mjs';

const room = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

// Things a case opens; closed after the case whatever happens.
class Scope {
  constructor(name) {
    this.name = name;
    this.people = [];
    this.servers = [];
    this.cleanups = [];
  }

  async server(args = [], opts = {}) {
    const s = new Server(this.name, args, opts);
    this.servers.push(s);
    await s.start();
    return s;
  }

  async person(name, opts) {
    const p = await participant(name, opts);
    this.people.push(p);
    return p;
  }

  async firefox(name, opts) {
    const p = await firefoxParticipant(name, opts);
    this.people.push(p);
    return p;
  }

  async close() {
    await Promise.all(this.people.map((p) => p.close()));
    await Promise.all(this.servers.map((s) => s.stop()));
    for (const c of this.cleanups) await c();
  }
}

const tileCount = (p, name) => p.page.evaluate((n) => document.querySelectorAll(`#stage .tile[data-name="${n}"]:not(.screen)`).length, name);
const tileAttr = (p, name, attr) => p.page.evaluate(([n, a]) => document.querySelector(`#stage .tile[data-name="${n}"]:not(.screen)`)?.dataset[a], [name, attr]);

// Records every error toast (they vanish after a few seconds) in window.__errorToasts.
const recordErrorToasts = () => {
  window.__errorToasts = [];
  document.addEventListener('DOMContentLoaded', () => {
    new MutationObserver((changes) => {
      for (const c of changes) {
        for (const n of c.addedNodes) if (n.classList?.contains('error')) window.__errorToasts.push(n.textContent);
      }
    }).observe(document.getElementById('toasts'), { childList: true });
  });
};

// The call's controls, by role and accessible name, as a screen reader finds them.
const CONTROLS = ['Mute', 'Stop video', 'Raise hand', 'Speaker view', 'Share', 'Devices', 'Invite', 'Chat', /^People/, 'Leave'];

async function controlsByName(p) {
  for (const name of CONTROLS) {
    const b = p.page.getByRole('button', { name, exact: true });
    const n = await b.count();
    if (n !== 1 || !(await b.isVisible())) throw new Error(`${p.name}: ${n} visible button(s) named ${name}`);
  }
}

/** The tiles' last row, when not full, is centred in the stage (within 2 px). */
async function lastRowCentred(p) {
  return p.page.evaluate(() => {
    const grid = document.getElementById('tiles').getBoundingClientRect();
    const tiles = [...document.querySelectorAll('#tiles .tile')].map((t) => t.getBoundingClientRect());
    const rows = new Map();
    for (const r of tiles) rows.set(Math.round(r.top), [...(rows.get(Math.round(r.top)) ?? []), r]);
    const ordered = [...rows.keys()].sort((a, b) => a - b).map((k) => rows.get(k));
    const last = ordered.at(-1);
    const mid = (last[0].left + last.at(-1).right) / 2;
    const off = Math.abs(mid - (grid.left + grid.right) / 2);
    return { ok: ordered.length > 1 && last.length < ordered[0].length && off <= 2, rows: ordered.map((r) => r.length), off };
  });
}

/** Two people in one room; the second comes in through the first one's invite link. */
async function pair(s, srv, r, { screenshots = false, bobOpts } = {}) {
  const alice = await s.person('alice', { permissions: ['clipboard-read', 'clipboard-write'] });
  const bob = await s.person('bob', bobOpts);
  await alice.page.goto(`${srv.url}/call/${r}`);
  await join(alice, { screenshot: screenshots ? '2-join-screen.png' : undefined });
  // The invite link, as the Invite button copies it.
  await alice.page.click('#btn-invite');
  const link = await waitFor('the invite link on the clipboard', () => alice.page.evaluate(() => navigator.clipboard.readText()));
  if (!link.endsWith(`/call/${r}`)) throw new Error(`unexpected invite link ${link}`);
  await bob.page.goto(link);
  await join(bob);
  return { alice, bob };
}

/** An HS256 access token for `--auth jwt --jwt-secret secret` (as `peer-calls token` makes). */
function mintToken(secret, claims) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`;
}

/** On the join screen of an invitation link: the name is the invitation's; join. */
async function joinInvited(p, { viewer = false, connected = true } = {}) {
  const { page } = p;
  await page.locator('#join').waitFor({ state: 'visible' });
  if (!viewer) {
    await waitFor(`${p.name}: camera preview`, () => page.evaluate(() => document.getElementById('preview').videoWidth > 0));
  }
  await page.click('#join');
  if (!connected) return;
  await page.locator('#in-call').waitFor({ state: 'visible' });
  await waitFor(`${p.name}: connected`, () => page.evaluate(() => document.body.dataset.conn === 'connected'));
}

/** The full-page notice's title, once it shows one that `re` matches. */
function waitNotice(p, re) {
  return waitFor(`${p.name}: the page "${re}"`, () => p.page.evaluate(() => (document.getElementById('notice').hidden ? '' : document.getElementById('notice-title').textContent))
    .then((t) => (re.test(t) ? t : null)));
}

/** Whether `viewer` receives `from`'s microphone now (its packets grow over a second). */
async function hears(viewer, from) {
  const audio = async () => (await inbound(viewer))?.find((x) => x.name === from && x.kind === 'audio' && !x.screen)?.packetsReceived ?? 0;
  const a = await audio();
  await sleep(1000);
  return (await audio()) > a && a > 0;
}

/** Opens the moderator's menu on `name`'s tile and picks `item`. */
async function moderate(p, name, item) {
  const tile = p.page.locator(`#stage .tile[data-name="${name}"]:not(.screen)`);
  await tile.hover();
  await p.page.getByRole('button', { name: `Moderate ${name}` }).click();
  await tile.getByRole('menuitem', { name: item }).click();
}

/** coturn (Debian's turnserver) on loopback with a TURN REST secret; stopped with the case. */
async function coturn(s, secret) {
  const port = await freePort();
  const proc = spawn('turnserver', [
    '-n', '-v', '--no-cli', '--log-file=stdout', '--simple-log',
    '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
    '--min-port=40000', '--max-port=40999',
    '--use-auth-secret', `--static-auth-secret=${secret}`, '--realm=peer-calls.test',
    '--allow-loopback-peers', '--no-tls', '--no-dtls', '--fingerprint',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  proc.stdout.on('data', (d) => lines.push(...d.toString().split('\n')));
  proc.stderr.on('data', (d) => lines.push(...d.toString().split('\n')));
  s.cleanups.push(() => proc.kill('SIGKILL'));
  await waitFor('coturn listening', () => lines.some((l) => /listener opened on|Total General servers/.test(l)), 10_000, 100);
  return { port, lines };
}

/** `from` sends a file of `size` random bytes in the chat; it reaches `to` byte for byte. */
async function sendFile(from, to, name, size) {
  const bytes = randomBytes(size);
  const sha = createHash('sha256').update(bytes).digest('hex');
  await from.page.setInputFiles('#file-input', { name, mimeType: 'application/octet-stream', buffer: bytes });
  // The received file's Blob (the policy lets the page fetch nothing but its server, not
  // even its own blobs).
  const got = await waitFor(`the file at ${to.name}, complete`, () => to.page.evaluate(async (n) => {
    const f = window.peerCalls.chat.kept.find((k) => k.link.download === n);
    if (!f) return null;
    const buf = await f.blob.arrayBuffer();
    const hash = [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join('');
    return { name: f.link.download, size: buf.byteLength, hash };
  }, name));
  if (got.name !== name || got.size !== bytes.length || got.hash !== sha) {
    throw new Error(`file differs: got ${JSON.stringify(got)}, sent ${bytes.length} bytes sha256 ${sha}`);
  }
  log(`  file arrived intact: ${got.size} bytes, sha256 ${sha.slice(0, 16)}…`);
}

/** redis-server on a loopback port, for a case's cluster; stopped with the case. */
async function redis(s) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  proc.stdout.on('data', (d) => lines.push(...d.toString().split('\n')));
  s.cleanups.push(() => proc.kill('SIGKILL'));
  await waitFor('redis-server ready', () => lines.some((l) => /Ready to accept connections/.test(l)), 10_000, 100);
  return `redis://127.0.0.1:${port}/`;
}

/** A node of a cluster on `redisUrl`, named `id`, with the case's other servers. */
async function clusterNode(s, redisUrl, id, extra = []) {
  const port = await freePort();
  const srv = new Server(`${s.name}-${id}`, [
    '--redis', redisUrl, '--cluster-secret', 'the e2e cluster secret', '--node-id', id,
    '--node-address', `http://127.0.0.1:${port}`, ...extra,
  ]);
  srv.port = port;
  s.servers.push(srv);
  await srv.start();
  return srv;
}

/** A node port (server-to-server transport) figure from a node's /metrics. */
async function nodeFigure(srv, series) {
  const page = await (await fetch(`${srv.url}/metrics`)).text();
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** A counter's total over all its labels on `srv`'s /metrics page (read with `token`). */
async function metricsFigure(srv, token, series) {
  const page = await (await fetch(`${srv.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
  return page.split('\n').filter((l) => l.startsWith(series)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** A server (with /metrics) on the host side of a network namespace's veth pair, alice's
 * Chromium inside the namespace (`shape(ns)` first sets what her network does) and bob's
 * on the host, in one room, each decoding the other. `metrics()` reads the server's page. */
async function acrossNamespace(s, name, shape = () => {}, personOpts = {}) {
  const ns = await netns(name);
  s.cleanups.push(() => ns.close());
  const token = `e2e-${name}`;
  const srv = await s.server(['--metrics-token', token], { ip: ns.host });
  shape(ns);
  const r = room(name);
  const alice = await s.person('alice', { executablePath: await ns.browser(CHROMIUM), secureOrigin: srv.url, ...personOpts });
  await alice.page.goto(`${srv.url}/call/${r}`);
  await join(alice);
  const bob = await s.person('bob', { secureOrigin: srv.url, ...personOpts });
  await bob.page.goto(`${srv.url}/call/${r}`);
  await join(bob);
  await waitDecodes(alice, 'bob');
  await waitDecodes(bob, 'alice');
  const metrics = async () => (await fetch(`${srv.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
  return { ns, alice, bob, metrics, srv, room: r };
}

/** Watches each `[person, from]` decode `from`'s camera for `ms`, sampled every 100 ms:
 * the frames decoded and the longest time without a new one. */
async function watchFrames(pairs, ms) {
  const frames = async (p, from) => (await inbound(p))?.find((x) => x.name === from && x.kind === 'video' && !x.screen)?.framesDecoded ?? 0;
  const watch = pairs.map(([p, from]) => ({ p, from, last: 0, since: Date.now(), longest: 0, first: 0 }));
  for (const w of watch) w.first = w.last = await frames(w.p, w.from);
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await sleep(100);
    for (const w of watch) {
      const n = await frames(w.p, w.from);
      const now = Date.now();
      if (n > w.last) {
        w.longest = Math.max(w.longest, now - w.since);
        [w.last, w.since] = [n, now];
      }
    }
  }
  return watch.map((w) => ({ p: w.p, from: w.from, frames: w.last - w.first, longest: Math.max(w.longest, Date.now() - w.since) }));
}

const CASES = {
  // ICE over TCP: a browser in a network namespace whose UDP to the server's media ports
  // is dropped (nftables) still connects, over TCP, and decodes; a second browser outside
  // uses UDP as usual.
  async tcp(s) {
    const ns = await netns('tcp');
    s.cleanups.push(() => ns.close());
    const udp = 52000 + Math.floor(Math.random() * 5000);
    const srv = await s.server(['--udp-port', String(udp), '--tcp-port', '0'], { ip: ns.host });
    ns.run(['nft', 'add', 'table', 'inet', 'peercalls']);
    ns.run(['nft', 'add', 'chain', 'inet', 'peercalls', 'out', '{ type filter hook output priority 0 ; }']);
    ns.run(['nft', 'add', 'rule', 'inet', 'peercalls', 'out', 'ip', 'daddr', ns.host, 'udp', 'dport', `${udp}-${udp + 1}`, 'drop']);
    const r = room('tcp');
    const walled = await s.person('alice', { executablePath: await ns.browser(CHROMIUM), secureOrigin: srv.url });
    await walled.page.goto(`${srv.url}/call/${r}`);
    await join(walled);
    const bob = await s.person('bob', { secureOrigin: srv.url });
    await bob.page.goto(`${srv.url}/call/${r}`);
    await join(bob);
    await waitDecodes(walled, 'bob');
    await waitDecodes(bob, 'alice');
    const proto = await walled.page.evaluate(async () => {
      const stats = await window.peerCalls.session.pc.getStats();
      let chosen = null;
      stats.forEach((st) => {
        if (st.type === 'transport' && st.selectedCandidatePairId) chosen = stats.get(st.selectedCandidatePairId);
      });
      return chosen && stats.get(chosen.remoteCandidateId)?.protocol;
    });
    if (proto !== 'tcp') throw new Error(`alice's media goes over ${proto}, not TCP`);
    log('  alice, with UDP to the media ports dropped, sends and receives over ICE-TCP');
  },

  // 20% of UDP lost each way (nftables in alice's network namespace: this kernel has no
  // netem): both keep decoding without a freeze of 2 s or more. Alice's losses toward
  // the server are repaired by her browser's resends; the server's toward her from the
  // engine's own history (its NACK answers, counted in /metrics).
  async loss(s) {
    const { alice, bob, metrics } = await acrossNamespace(s, 'loss', (ns) => {
      ns.run(['nft', 'add', 'table', 'inet', 'peercalls']);
      for (const [chain, hook] of [['in', 'input'], ['out', 'output']]) {
        ns.run(['nft', 'add', 'chain', 'inet', 'peercalls', chain, `{ type filter hook ${hook} priority 0 ; }`]);
        ns.run(['nft', 'add', 'rule', 'inet', 'peercalls', chain, 'meta', 'l4proto', 'udp', 'numgen', 'random', 'mod', '100', 'lt', '20', 'drop']);
      }
    });
    for (const w of await watchFrames([[alice, 'bob'], [bob, 'alice']], 10_000)) {
      log(`  ${w.p.name} decodes ${w.from} through 20% loss each way: ${w.frames} frames in 10 s, longest gap ${w.longest} ms`);
      if (w.frames < 50) throw new Error(`${w.p.name} decoded only ${w.frames} frames of ${w.from} in 10 s`);
      if (w.longest >= 2000) throw new Error(`${w.p.name}'s video of ${w.from} froze for ${w.longest} ms`);
    }
    const resent = (await metrics()).split('\n').filter((l) => l.startsWith('peercalls_shard_rtp_resent_total'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    log(`  the server resent ${resent} packets from its history`);
    if (!(resent > 0)) throw new Error('the server resent nothing to alice');
  },

  // The server's bandwidth estimate of each subscriber's downlink, from the browser's
  // congestion control feedback (TWCC). Both start above 300 kbit/s (each is at least
  // what its browser receives, so each camera sends over 190 kbit/s); then alice's
  // downlink is capped at 120 kbit/s (a token bucket on the host side of her veth
  // pair) and her estimate falls to at most 300 kbit/s while bob's stays above.
  async bwe(s) {
    // HD cameras and tiles over 640 px wide: each gets the other's top simulcast layer (a
    // smaller capture or tile gets a smaller layer, under 300 kbit/s, docs/simulcast.md).
    const hd = () => localStorage.setItem('peercalls.quality', 'hd');
    const big = { viewport: { width: 1920, height: 1080 }, initScript: hd };
    const { ns, alice, metrics, srv } = await acrossNamespace(s, 'bwe', () => {}, big);
    const bands = async () => {
      const lines = (await metrics()).split('\n').filter((l) => l.startsWith('peercalls_shard_subscribers_by_estimate{'));
      const sum = (le) => lines.filter((l) => l.includes(`le="${le}"`)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      const cumulative = ['100000', '300000', '1000000', '3000000', '10000000', '+Inf'].map((le) => `≤${le}: ${sum(le)}`).join(', ');
      return { under300k: sum('300000'), all: sum('+Inf'), cumulative };
    };
    const until = async (what, done) => {
      let last;
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline) {
        last = await bands();
        if (done(last)) break;
        await sleep(500);
      }
      log(`  ${what}: estimates ${last.cumulative}`);
      if (!done(last)) throw new Error(`${what}: the estimates are not as expected (${last.cumulative})`);
    };
    // The browsers' encoders ramp up: both downlinks carry more than 300 kbit/s.
    await until('both downlinks open', (b) => b.all === 2 && b.under300k === 0);
    ns.limitDown('120kbit');
    await until("alice's downlink capped at 120 kbit/s", (b) => b.all === 2 && b.under300k === 1);
    const [w] = await watchFrames([[alice, 'bob']], 10_000);
    log(`  alice decodes bob behind 120 kbit/s: ${w.frames} frames in 10 s, longest gap ${w.longest} ms; paced ${await metricsFigure(srv, 'e2e-bwe', 'peercalls_shard_rtp_paced_total')} packets`);
  },

  // Firefox ESR and Chromium in one room decode each other. Firefox gathers no loopback
  // candidates, so the server listens on the host side of a veth pair: a real interface.
  async firefox(s) {
    const ns = await netns('ff');
    s.cleanups.push(() => ns.close());
    const srv = await s.server([], { ip: ns.host });
    const r = room('firefox');
    const fox = await s.firefox('fox');
    await fox.page.goto(`${srv.url}/call/${r}`);
    await join(fox);
    const chrome = await s.person('chrome', { secureOrigin: srv.url });
    await chrome.page.goto(`${srv.url}/call/${r}`);
    await join(chrome);
    await waitDecodes(fox, 'chrome');
    await waitDecodes(chrome, 'fox');
    await shot(fox, 'firefox.png');
    // Chromium leaves and comes back: Firefox takes its new tracks on the m-lines it left
    // (the offer relabels them with the new msid).
    const before = await mlineCount(fox);
    await chrome.page.click('#btn-hangup');
    await waitFor("chrome's tile gone at fox", async () => (await tileCount(fox, 'chrome')) === 0);
    await chrome.page.goto(`${srv.url}/call/${r}`);
    await join(chrome);
    await waitDecodes(fox, 'chrome');
    const after = await mlineCount(fox);
    if (after !== before) throw new Error(`fox's session grew from ${before} to ${after} m-lines when chrome came back`);
    log(`  chrome came back on the m-lines it left: fox's session still has ${after} m-lines`);
  },

  // Media that cannot reach the server (its advertised address is unreachable): within
  // ~10 s the page says so in words, with what to try, instead of "Connecting…" — in
  // Chromium (which keeps checking) and in Firefox (which fails ICE within seconds).
  async unreachable(s) {
    const srv = await s.server(['--advertise-ip', '192.0.2.1']);
    const r = room('unreachable');
    const explained = async (p) => {
      await p.page.goto(`${srv.url}/call/${r}`);
      await p.page.locator('#nickname').waitFor({ state: 'visible' });
      await p.page.fill('#nickname', p.name);
      await p.page.click('#join');
      const started = Date.now();
      const banner = await waitFor(`${p.name}: the explanation`, () => p.page.evaluate(() => {
        const b = document.getElementById('banner');
        return !b.hidden && /cannot reach the server/.test(b.textContent) ? b.textContent : null;
      }), 20_000);
      const secs = (Date.now() - started) / 1000;
      if (secs > 15) throw new Error(`${p.name}: explained only after ${secs} s`);
      if (!/TURN/.test(banner)) throw new Error(`${p.name}: no advice: ${banner}`);
      // It stays explained (a fresh attempt after a failure does not go back to "Connecting…").
      await sleep(6000);
      const label = await p.page.locator('#conn-text').innerText();
      if (label !== 'No media') throw new Error(`${p.name}: header says ${label}`);
      log(`  ${p.name}, after ${secs.toFixed(1)} s: ${banner}`);
    };
    const alice = await s.person('alice');
    const fox = await s.firefox('fox');
    await Promise.all([explained(alice), explained(fox)]);
    await shot(alice, 'ice-failed.png');
  },

  // A browser that may only use relay candidates joins through a real coturn with the
  // server's TURN REST credentials, and decodes; the chosen pair is a relayed one.
  async turn(s) {
    const secret = randomBytes(12).toString('hex');
    const turn = await coturn(s, secret);
    const srv = await s.server(['--ice-server', `turn:127.0.0.1:${turn.port}?transport=udp`, '--turn-secret', secret]);
    const r = room('turn');
    const relayOnly = () => localStorage.setItem('peercalls.icePolicy', 'relay');
    const alice = await s.person('alice', { initScript: relayOnly });
    await alice.page.goto(`${srv.url}/call/${r}`);
    await join(alice);
    const bob = await s.person('bob');
    await bob.page.goto(`${srv.url}/call/${r}`);
    await join(bob);
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    const pair = await alice.page.evaluate(async () => {
      const stats = await window.peerCalls.session.pc.getStats();
      let chosen = null;
      stats.forEach((st) => {
        if (st.type === 'transport' && st.selectedCandidatePairId) chosen = stats.get(st.selectedCandidatePairId);
      });
      const local = chosen && stats.get(chosen.localCandidateId);
      return { type: local?.candidateType, servers: window.peerCalls.session.iceServers };
    });
    if (pair.type !== 'relay') throw new Error(`alice's media does not go through TURN: ${JSON.stringify(pair)}`);
    const user = pair.servers.find((x) => x.username)?.username ?? '';
    if (!/^\d+:\d+$/.test(user)) throw new Error(`unexpected TURN user name ${user}`);
    if (!turn.lines.some((l) => l.includes(user))) throw new Error(`coturn never saw ${user}: ${turn.lines.slice(-20).join(' / ')}`);
    log(`  alice relays through coturn as ${user}`);
  },

  // https and wss with a self-signed certificate: two browsers (told to accept it) decode
  // each other; plain http on the same port is redirected to https.
  async tls(s) {
    const srv = await s.server([], { tls: true });
    const r = room('tls');
    const secure = { insecureTls: true, permissions: ['clipboard-read', 'clipboard-write'] };
    const alice = await s.person('alice', secure);
    await alice.page.goto(`${srv.url.replace('https:', 'http:')}/call/${r}`);
    if (!alice.page.url().startsWith(`${srv.url}/call/${r}`)) throw new Error(`plain http was not redirected: ${alice.page.url()}`);
    await join(alice);
    const bob = await s.person('bob', secure);
    await bob.page.goto(`${srv.url}/call/${r}`);
    await join(bob);
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    const ws = await alice.page.evaluate(() => window.peerCalls.session.ws?.url);
    if (!ws?.startsWith('wss://')) throw new Error(`the WebSocket is not wss: ${ws}`);
    log(`  signalling over ${ws}`);
  },

  // Landing page → create a named room → join screen → call; the second browser joins through
  // the invite link. Each decodes the other's video and receives the other's audio.
  async call(s) {
    const srv = await s.server();
    const r = room('call');
    const alice = await s.person('alice', { permissions: ['clipboard-read', 'clipboard-write'] });
    await alice.page.goto(`${srv.url}/`);
    await alice.page.fill('#call', r);
    await shot(alice, '1-landing.png');
    await Promise.all([alice.page.waitForURL(`${srv.url}/call/${r}`), alice.page.click('#create-btn')]);
    await join(alice, { screenshot: '2-join-screen.png' });
    await alice.page.click('#btn-invite');
    const link = await waitFor('invite link on the clipboard', () => alice.page.evaluate(() => navigator.clipboard.readText()));
    log(`  invite link: ${link}`);
    const bob = await s.person('bob');
    await bob.page.goto(link);
    await join(bob);
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    // The connection state is shown.
    const conn = await alice.page.locator('#conn').innerText();
    if (!/connected/i.test(conn)) throw new Error(`connection state shows "${conn}"`);
    // A random room from the landing page.
    await bob.page.goto(`${srv.url}/`);
    await Promise.all([bob.page.waitForURL(/\/call\/[a-z]+-[a-z]+-[a-z0-9]{6}$/), bob.page.click('#create-btn')]);
    log(`  random room: ${bob.page.url()}`);
  },

  // Text chat both ways, and a file of several chunks arrives byte for byte; too large a file
  // is refused with a message.
  async chat(s) {
    const token = 'e2e-chat';
    const srv = await s.server(['--metrics-token', token]);
    const figure = (series) => metricsFigure(srv, token, series);
    const { alice, bob } = await pair(s, srv, room('chat'));
    for (const p of [alice, bob]) await waitFor(`${p.name}: the data channel is open`, () => p.page.evaluate(() => window.peerCalls.session.dataPath === 'channel'));
    await bob.page.click('#btn-chat');
    const text = `hello bob, ünïcødé ✓ ${Date.now()}`;
    await alice.page.click('#btn-chat');
    await alice.page.fill('#chat-input', text);
    await alice.page.click('#chat-send');
    await waitFor("alice's message in bob's chat", () => bob.page.locator('#chat-log').innerText().then((t) => t.includes(text)));
    await bob.page.fill('#chat-input', 'hi alice');
    await bob.page.press('#chat-input', 'Enter');
    await waitFor("bob's message in alice's chat", () => alice.page.locator('#chat-log').innerText().then((t) => t.includes('hi alice')));
    log('  chat crossed both ways');
    // Emoji: drawn where the browser has an emoji font, else written as their names (never
    // empty boxes).
    await alice.page.fill('#chat-input', 'well done 👍🏽 🎉');
    await alice.page.press('#chat-input', 'Enter');
    const drawable = await bob.page.evaluate(async () => (await import('/static/js/emoji.js')).canDrawEmoji());
    const shown = drawable ? 'well done 👍🏽 🎉' : 'well done :thumbs up sign (medium skin tone): :party popper:';
    await waitFor(`bob's chat shows "${shown}"`, () => bob.page.locator('#chat-log').innerText().then((t) => t.includes(shown)));
    log(`  emoji ${drawable ? 'drawn (the browser has an emoji font)' : 'written as names (no emoji font here)'}: "${shown}"`);

    await sendFile(alice, bob, 'report.bin', 200 * 1024 + 123); // five chunks
    await waitFor("alice's side says sent", () => alice.page.evaluate(() => Boolean(document.querySelector('#chat-log .msg.own[data-done="true"]'))));
    const via = await alice.page.evaluate(() => document.querySelector('#chat-log .msg.own[data-file-id] .file-card').dataset.via);
    const [received, sent] = [await figure('peercalls_shard_data_messages_received_total'), await figure('peercalls_shard_data_messages_sent_total')];
    if (via !== 'channel' || !(received >= 7 && sent >= 7)) throw new Error(`the file did not go on the data channels: via ${via}, ${received} received and ${sent} sent there`);
    log(`  chat and the file went on the data channels (the server took ${received} messages from them and sent ${sent})`);

    // The receiver cancels: the sender's card says so, and the rest is not kept.
    await alice.page.setInputFiles('#file-input', { name: 'slow.bin', mimeType: 'application/octet-stream', buffer: randomBytes(1024 * 1024) });
    const cancel = bob.page.locator('#chat-log .msg:not(.own) .file-card', { hasText: 'slow.bin' }).getByRole('button', { name: 'Cancel', exact: true });
    await cancel.click();
    await waitFor("alice's card: cancelled by bob", () => alice.page.locator('#chat-log .msg.own .file-card', { hasText: 'slow.bin' }).innerText().then((t) => t.includes('cancelled by bob')));
    await waitFor("bob's card: not received, cancelled", () => bob.page.locator('#chat-log .file-card', { hasText: 'slow.bin' }).innerText().then((t) => t.includes('not received: cancelled')));
    log('  bob cancelled a file on his side: his card says so, and alice\'s says who cancelled');

    // Without the data channel (closed), chat and files go on the WebSocket both ways.
    await bob.page.evaluate(() => window.peerCalls.session.channel.close());
    await waitFor("bob's path: the socket", () => bob.page.evaluate(() => window.peerCalls.session.dataPath === 'socket'));
    await bob.page.fill('#chat-input', 'over the socket');
    await bob.page.press('#chat-input', 'Enter');
    await waitFor("bob's message at alice", () => alice.page.locator('#chat-log').innerText().then((t) => t.includes('over the socket')));
    await alice.page.fill('#chat-input', 'and back');
    await alice.page.press('#chat-input', 'Enter');
    await waitFor("alice's message at bob, on his socket", () => bob.page.locator('#chat-log').innerText().then((t) => t.includes('and back')));
    await sendFile(alice, bob, 'fallback.bin', 100 * 1024 + 1);
    log('  with his data channel closed, bob chats and receives a file on the WebSocket');

    await alice.page.setInputFiles('#file-input', { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(16 * 1024 * 1024 + 1) });
    await waitFor('the size limit message', () => alice.page.locator('#chat-log .msg.system.error').innerText().then((t) => t.includes('at most 16')));
    await shot(bob, '4-chat.png');

    // A file announced as HTML with a script: at bob it is only ever a download, never a page
    // of this origin, so its script does not run, whether he clicks it or opens its address.
    const evil = '<!doctype html><script>localStorage.setItem("pwned", "1"); document.title = "pwned";</script>';
    await alice.page.setInputFiles('#file-input', { name: 'invite.html', mimeType: 'text/html', buffer: Buffer.from(evil) });
    const link = await waitFor('the HTML file at bob', () => bob.page.evaluate(() => {
      const f = window.peerCalls.chat.kept.find((k) => k.link.download === 'invite.html');
      return f ? { href: f.url, type: f.blob.type } : null;
    }));
    if (link.type !== 'application/octet-stream') throw new Error(`the received file is a ${link.type}`);
    const [download] = await Promise.all([
      bob.page.waitForEvent('download'),
      bob.page.click('#chat-log a.file-download[download="invite.html"]'),
    ]);
    log(`  clicked: downloaded as ${download.suggestedFilename()}`);
    const tab = await bob.context.newPage();
    await tab.goto(link.href).catch(() => {}); // "Download is starting": not shown as a page
    await sleep(500);
    const pwned = await bob.page.evaluate(() => localStorage.getItem('pwned'));
    if (pwned !== null || (await tab.title()) === 'pwned') throw new Error('the received HTML ran its script on the call origin');
    await tab.close();
    log('  an HTML file with a script is only downloaded; its script never runs');

    // A sender that lies about the size (past the page's own checks): the server refuses
    // the part beyond it, on either path, and says why; it never reaches bob.
    for (const via of ['channel', 'socket']) {
      const id = `liar-${via}`;
      await alice.page.evaluate(({ id, via }) => {
        const s = window.peerCalls.session;
        s.message({ file: { id, name: `${id}.txt`, mime: 'text/plain', size: 10, chunks: 1 } }, undefined, via);
        s.message({ fileChunk: { id, index: 0, data: btoa('x'.repeat(5000)) } }, undefined, via);
      }, { id, via });
      await waitFor(`alice is told the server refused the part (${via})`, () => alice.page.evaluate((id) => [...document.querySelectorAll('.toast')]
        .some((t) => t.textContent.includes(`file "${id}" is larger than its announced size`)), id));
      await sleep(300);
      const got = await bob.page.evaluate((id) => window.peerCalls.chat.incoming.get([...window.peerCalls.chat.incoming.keys()].find((k) => k.endsWith(`/${id}`)))?.received, id);
      if (got !== 0) throw new Error(`bob received ${got} part(s) of a file past its size (${via})`);
    }
    log('  a part past its file\'s announced size is refused by the server, on the data channel and on the socket');

    // Hanging up lets the received files go (their object URLs are revoked).
    await bob.page.click('#btn-hangup');
    const left = await bob.page.evaluate(() => ({
      kept: window.peerCalls.chat.kept.length,
      links: document.querySelectorAll('#chat-log a.file-download').length,
      text: document.getElementById('chat-log').textContent,
    }));
    if (left.kept || left.links || !left.text.includes('no longer available (the call ended)')) {
      throw new Error(`received files outlive the call: ${JSON.stringify({ kept: left.kept, links: left.links })}`);
    }
  },

  // A screen share (with and without audio) is a new tile on the other side and decodes; stopping
  // it removes the tile.
  async screen(s) {
    const srv = await s.server();
    const { alice, bob } = await pair(s, srv, room('screen'));
    await waitDecodes(bob, 'alice');
    await alice.page.click('#btn-screen');
    await alice.page.click('#share-screen');
    await waitFor("alice's screen tile at bob", () => bob.page.evaluate(() => Boolean(document.querySelector('#stage .tile.screen[data-name="alice"]'))));
    await waitDecodes(bob, 'alice', { screen: true, audio: false });
    await waitDecodes(bob, 'alice'); // the camera goes on
    await shot(bob, '5-screen-share.png');
    await alice.page.click('#btn-screen'); // stop
    await waitFor("alice's screen tile gone at bob", () => bob.page.evaluate(() => !document.querySelector('#stage .tile.screen')));
    log('  stopped sharing: tile removed');
    await alice.page.click('#btn-screen');
    await alice.page.click('#share-screen-audio');
    await waitDecodes(bob, 'alice', { screen: true, audio: true });
    const tracks = await bob.page.evaluate(() => document.querySelector('#stage .tile.screen video').srcObject.getTracks().map((t) => t.kind).sort().join(','));
    if (tracks !== 'audio,video') throw new Error(`screen tile has ${tracks}`);
    // Sharing again takes the m-lines the last share left: no session grows.
    const counts = [await mlineCount(alice), await mlineCount(bob)];
    await alice.page.click('#btn-screen'); // stop
    await waitFor("alice's screen tile gone at bob", () => bob.page.evaluate(() => !document.querySelector('#stage .tile.screen')));
    await alice.page.click('#btn-screen');
    await alice.page.click('#share-screen-audio');
    await waitDecodes(bob, 'alice', { screen: true, audio: true });
    const again = [await mlineCount(alice), await mlineCount(bob)];
    if (again.join() !== counts.join()) throw new Error(`sharing again grew the sessions (alice, bob): ${counts} → ${again} m-lines`);
    log(`  shared again on the m-lines the last share left: alice ${again[0]}, bob ${again[1]} m-lines`);
  },

  // A third browser joins late and decodes both; it sees who is in the room; its hang-up removes
  // its tile for the others; when it comes back, its new tracks reuse the m-lines it left.
  async late(s) {
    const srv = await s.server();
    const r = room('late');
    // Bob is on a phone-sized screen.
    const { alice, bob } = await pair(s, srv, r, { bobOpts: { viewport: { width: 390, height: 800 }, isMobile: true } });
    await waitDecodes(alice, 'bob');
    const carol = await s.person('carol');
    await carol.page.goto(`${srv.url}/call/${r}`);
    // Carol joins with her camera off: the others see her avatar, and her video once she starts it.
    await join(carol, { camera: false });
    await waitDecodes(carol, 'alice');
    await waitDecodes(carol, 'bob');
    const rows = await waitFor("alice's last row of tiles centred", () => lastRowCentred(alice));
    log(`  three tiles in rows of ${rows.rows.join(' + ')}, the last centred (${rows.off.toFixed(1)} px off)`);
    await waitFor("alice shows carol's avatar", async () => (await tileAttr(alice, 'carol', 'video')) === 'off');
    const off = await carol.page.evaluate(() => window.peerCalls.media.videoTrack === null && window.peerCalls.session.videoSender.track === null);
    if (!off) throw new Error("carol's camera runs although she joined with it off");
    await carol.page.click('#btn-cam');
    await waitDecodes(alice, 'carol');
    await waitDecodes(bob, 'carol');
    log('  carol joined with the camera off, then started it');
    await carol.page.click('#btn-people');
    const people = await carol.page.locator('#people-list').innerText();
    for (const n of ['alice', 'bob', 'carol (you)']) if (!people.includes(n)) throw new Error(`carol's people list lacks ${n}: ${people}`);
    await carol.page.click('#btn-people');
    // For the picture: bob mutes, carol says hello, alice has the chat open.
    await bob.page.click('#btn-mic');
    await carol.page.click('#btn-chat');
    await carol.page.fill('#chat-input', 'Hello both! Can you hear me?');
    await carol.page.press('#chat-input', 'Enter');
    await carol.page.click('#btn-chat');
    await alice.page.click('#btn-chat');
    await waitFor("carol's message at alice", () => alice.page.locator('#chat-log').innerText().then((t) => t.includes('Can you hear me?')));
    await waitFor("alice sees bob muted", async () => (await tileAttr(alice, 'bob', 'audio')) === 'off');
    await alice.page.mouse.move(0, 0);
    await shot(alice, '3-call-three.png');
    await alice.page.click('#btn-chat');
    await shot(bob, '3-call-three-phone.png');
    // Who is speaking is highlighted (the fake microphones beep).
    await waitFor("alice sees someone's tile marked as speaking", () => alice.page.evaluate(() => Boolean(document.querySelector('#stage .tile.speaking:not(.local)'))));
    // Pin a tile: it fills the stage, the others move to a strip, and all still decode.
    await alice.page.hover('#stage .tile[data-name="carol"]');
    await alice.page.click('#stage .tile[data-name="carol"] .pin-btn');
    await waitFor("carol's tile pinned at alice", () => alice.page.evaluate(() => document.querySelector('#pinned .tile')?.dataset.name === 'carol'));
    await waitDecodes(alice, 'carol', { audio: false });
    await waitDecodes(alice, 'bob', { audio: false });
    await shot(alice, '3-call-pinned.png');
    await alice.page.click('#pinned .tile .pin-btn');
    // Fullscreen on double click, and back.
    await alice.page.dblclick('#stage .tile[data-name="bob"]');
    await waitFor('bob fullscreen at alice', () => alice.page.evaluate(() => document.fullscreenElement?.dataset.name === 'bob'));
    await alice.page.evaluate(() => document.exitFullscreen());
    log('  speaking highlight, pin and fullscreen work');
    await carol.page.click('#btn-hangup');
    await carol.page.locator('#notice').waitFor({ state: 'visible' });
    for (const p of [alice, bob]) {
      await waitFor(`carol's tile gone at ${p.name}`, async () => (await tileCount(p, 'carol')) === 0);
    }
    log('  carol hung up: her tile is gone for alice and bob');
    await waitDecodes(alice, 'bob');
    // Carol comes back (new tracks): alice receives them on the m-lines her first visit left,
    // so coming and going does not grow alice's session.
    const before = await mlineCount(alice);
    await carol.page.goto(`${srv.url}/call/${r}`);
    await join(carol);
    await waitDecodes(alice, 'carol');
    const after = await mlineCount(alice);
    if (after !== before) throw new Error(`alice's session grew from ${before} to ${after} m-lines when carol came back`);
    log(`  carol came back on the m-lines she left: alice's session still has ${after} m-lines`);
  },

  // Every control has an accessible name, on a desktop and on a phone (where the buttons show
  // only icons); mute, camera, screen share and leave leave no error toast and no console error.
  async controls(s) {
    const srv = await s.server();
    const r = room('controls');
    const alice = await s.person('alice', { viewport: { width: 1280, height: 800 }, initScript: recordErrorToasts });
    const bob = await s.person('bob', { viewport: { width: 390, height: 844 }, isMobile: true, initScript: recordErrorToasts });
    for (const p of [alice, bob]) {
      await p.page.goto(`${srv.url}/call/${r}`);
      for (const name of ['Turn microphone off', 'Turn camera off', 'Join call']) {
        await waitFor(`${p.name}: a button named ${name} on the join screen`, () => p.page.getByRole('button', { name, exact: true }).isVisible());
      }
      await join(p);
      await controlsByName(p);
    }
    await waitDecodes(alice, 'bob');
    log('  every control found by role and name at 1280×800 and 390×844');
    for (const p of [alice, bob]) {
      await p.page.getByRole('button', { name: 'Mute', exact: true }).click();
      await p.page.getByRole('button', { name: 'Unmute', exact: true }).waitFor();
      await p.page.getByRole('button', { name: 'Stop video', exact: true }).click();
      await p.page.getByRole('button', { name: 'Start video', exact: true }).click();
      await p.page.getByRole('button', { name: 'Unmute', exact: true }).click();
    }
    await alice.page.getByRole('button', { name: 'Share', exact: true }).click();
    await alice.page.getByRole('menuitem', { name: 'Share screen', exact: true }).click();
    await waitFor("alice's screen at bob", () => bob.page.evaluate(() => Boolean(document.querySelector('#stage .tile.screen'))));
    await alice.page.getByRole('button', { name: 'Stop sharing', exact: true }).click();
    await waitDecodes(bob, 'alice');
    for (const p of [alice, bob]) {
      await p.page.getByRole('button', { name: 'Leave', exact: true }).click();
      await p.page.locator('#notice').waitFor({ state: 'visible' });
    }
    await sleep(1000);
    for (const p of [alice, bob]) {
      const toasts = await p.page.evaluate(() => window.__errorToasts);
      const errors = p.logs.filter((l) => l.startsWith('error:'));
      if (toasts.length || errors.length) throw new Error(`${p.name}: error toasts ${JSON.stringify(toasts)}, console errors ${JSON.stringify(errors)}`);
    }
    log('  join, mute, camera, share and leave: no error toast, no console error');
  },

  // Two nodes of a cluster on one redis-server: alice's tab on node a, bob's on node b; each
  // decodes the other through the node ports, chat crosses, and when node a is killed
  // (SIGKILL) alice's page goes on at node b with the same member, without a reload.
  async cluster(s) {
    const url = await redis(s);
    // Each tab stays on the node it opened (no room affinity): the room spans both.
    const a = await clusterNode(s, url, 'a', ['--room-affinity', 'false']);
    const b = await clusterNode(s, url, 'b', ['--room-affinity', 'false']);
    await waitFor('the nodes see each other', async () => (await nodeFigure(a, 'peercalls_cluster_nodes')) === 2
      && (await nodeFigure(b, 'peercalls_cluster_nodes')) === 2, 15_000);
    const r = room('cluster');
    const alice = await s.person('alice');
    const bob = await s.person('bob');
    await alice.page.goto(`${a.url}/call/${r}`);
    await join(alice);
    await bob.page.goto(`${b.url}/call/${r}`);
    await join(bob);
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    for (const n of [a, b]) {
      const crossed = await nodeFigure(n, 'peercalls_node_port_rtp_received_total');
      if (!(crossed > 0)) throw new Error(`no media crossed into ${n.name}'s node port`);
    }
    log('  media crossed both ways between the nodes');
    await alice.page.click('#btn-chat');
    await alice.page.fill('#chat-input', 'hello from node a');
    await alice.page.press('#chat-input', 'Enter');
    await bob.page.click('#btn-chat');
    await waitFor("alice's message at bob", () => bob.page.locator('#chat-log').innerText().then((t) => t.includes('hello from node a')));
    await sendFile(alice, bob, 'across.bin', 300 * 1024 + 7); // several chunks, through the cluster
    await shot(bob, 'cluster-two-nodes.png');

    const before = await alice.page.evaluate(() => { window.__noReload = true; return window.peerCalls.session.peerId; });
    a.proc.kill('SIGKILL');
    const killed = Date.now();
    await waitFor('alice on node b', () => alice.page.evaluate((id) => {
      const sess = window.peerCalls.session;
      return sess.joined && sess.peerId === id && sess.node?.startsWith('http://127.0.0.1');
    }, before), 15_000, 100);
    await waitDecodes(bob, 'alice');
    await waitDecodes(alice, 'bob');
    log(`  alice went on at node b, decoding again ${((Date.now() - killed) / 1000).toFixed(1)} s after node a died`);
    if (!(await alice.page.evaluate(() => window.__noReload === true))) throw new Error("alice's page reloaded");
    const tiles = await bob.page.evaluate(() => document.querySelectorAll('#stage .tile[data-name="alice"]:not(.screen)').length);
    if (tiles !== 1) throw new Error(`bob shows ${tiles} tiles for alice`);
  },

  // The WebSocket drops (resume, same session) and the server restarts (new session): both
  // browsers reconnect by themselves and decode video again, without reloading.
  async reconnect(s) {
    const srv = await s.server();
    const { alice, bob } = await pair(s, srv, room('reconnect'));
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    for (const p of [alice, bob]) await p.page.evaluate(() => { window.__noReload = true; });

    // 1. Only the socket drops: the session resumes; the peer connection stays.
    const before = await alice.page.evaluate(() => { window.__pc = window.peerCalls.session.pc; return window.peerCalls.session.peerId; });
    await alice.page.evaluate(() => window.peerCalls.session.ws.close());
    await waitFor('alice resumed', () => alice.page.evaluate((id) => window.peerCalls.session.joined && window.peerCalls.session.peerId === id && window.peerCalls.session.pc === window.__pc, before));
    await waitDecodes(bob, 'alice');
    await waitDecodes(alice, 'bob');
    log('  socket drop: resumed the same session');

    // 2. The server restarts on the same port.
    await srv.stop();
    await waitFor('both notice the loss', async () => {
      const states = await Promise.all([alice, bob].map((p) => p.page.evaluate(() => document.body.dataset.conn)));
      return states.every((st) => st === 'reconnecting' || st === 'connecting');
    }, 10_000);
    await shot(alice, '6-reconnecting.png');
    await srv.start();
    log('  server restarted');
    for (const p of [alice, bob]) await waitFor(`${p.name} reconnected`, () => p.page.evaluate(() => document.body.dataset.conn === 'connected'), 30_000);
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    for (const p of [alice, bob]) {
      if (!(await p.page.evaluate(() => window.__noReload === true))) throw new Error(`${p.name}'s page reloaded`);
    }
    const tiles = await alice.page.evaluate(() => document.querySelectorAll('#stage .tile[data-name="bob"]').length);
    if (tiles !== 1) throw new Error(`alice shows ${tiles} tiles for bob after the restart`);
  },

  // Mute and camera off are seen on the other side (tile state and getStats), and so is turning
  // them back on; switching the microphone does not renegotiate or rejoin.
  async mute(s) {
    const srv = await s.server();
    const { alice, bob } = await pair(s, srv, room('mute'));
    await waitDecodes(bob, 'alice');
    const energy = async () => (await inbound(bob)).find((x) => x.name === 'alice' && x.kind === 'audio' && !x.screen)?.totalAudioEnergy ?? 0;
    const frames = async () => (await inbound(bob)).find((x) => x.name === 'alice' && x.kind === 'video' && !x.screen)?.framesDecoded ?? 0;
    // Sound arrives while unmuted (the fake microphone beeps).
    await waitFor('audio energy from alice', async () => { const a = await energy(); await sleep(1200); return (await energy()) > a; });

    await alice.page.click('#btn-mic');
    await waitFor('bob sees alice muted', async () => (await tileAttr(bob, 'alice', 'audio')) === 'off');
    await waitFor('silence from alice', async () => { const a = await energy(); await sleep(1500); return (await energy()) - a < 1e-6; });
    log('  mute: tile shows it, audio energy flat');
    await alice.page.click('#btn-mic');
    await waitFor('bob sees alice unmuted', async () => (await tileAttr(bob, 'alice', 'audio')) === 'on');
    await waitFor('sound from alice again', async () => { const a = await energy(); await sleep(1200); return (await energy()) > a; });

    await alice.page.click('#btn-cam');
    await waitFor('bob sees alice camera off', async () => (await tileAttr(bob, 'alice', 'video')) === 'off');
    await waitFor('no frames from alice', async () => { const a = await frames(); await sleep(1000); return (await frames()) === a; });
    const camLight = await alice.page.evaluate(() => window.peerCalls.media.videoTrack === null);
    if (!camLight) throw new Error("alice's camera track still runs while the camera is off");
    await shot(bob, '7-camera-off.png');
    log('  camera off: tile shows it, no frames decoded, camera stopped');
    await alice.page.click('#btn-cam');
    await waitFor('bob sees alice camera on', async () => (await tileAttr(bob, 'alice', 'video')) === 'on');
    await waitDecodes(bob, 'alice');

    // Switch the microphone in the Devices dialog: replaceTrack, same peer connection.
    const pc0 = await alice.page.evaluate(() => { window.__pc = window.peerCalls.session.pc; return window.peerCalls.media.audioTrack.label; });
    await alice.page.click('#btn-settings');
    const options = await alice.page.locator('#call-audio-device option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    const other = options.find(([, label]) => label !== pc0);
    if (!other) throw new Error(`only one microphone: ${JSON.stringify(options)}`);
    await alice.page.selectOption('#call-audio-device', other[0]);
    await alice.page.click('#settings button.primary');
    await waitFor('alice sends the other microphone', () => alice.page.evaluate((label) => {
      const s = window.peerCalls.session;
      return s.pc === window.__pc && s.audioSender.track?.label === label;
    }, other[1]));
    await waitFor('audio from the new microphone at bob', async () => { const a = await energy(); await sleep(1200); return (await energy()) > a; });
    log(`  switched microphone to "${other[1]}" without renegotiating`);
  },

  // Pub/sub: in a window too small for every tile, tiles off screen are unsubscribed and
  // subscribed again when scrolled into view.
  async visible(s) {
    const srv = await s.server();
    const r = room('visible');
    const alice = await s.person('alice', { viewport: { width: 640, height: 340 } });
    const bob = await s.person('bob');
    const carol = await s.person('carol');
    for (const p of [alice, bob, carol]) {
      await p.page.goto(`${srv.url}/call/${r}`);
      await join(p);
    }
    const scrolls = await waitFor('alice: the grid scrolls', () => alice.page.evaluate(() => {
      const g = document.getElementById('tiles');
      return g.classList.contains('scrolls') && g.scrollHeight > g.clientHeight + 20 && document.querySelectorAll('#tiles .tile').length === 3;
    }));
    if (!scrolls) throw new Error('no scrolling grid');
    // Which remote tile is on screen, from the page's layout.
    const onScreen = () => alice.page.evaluate(() => {
      const g = document.getElementById('tiles').getBoundingClientRect();
      const out = {};
      for (const t of document.querySelectorAll('#tiles .tile:not(.local)')) {
        const b = t.getBoundingClientRect();
        const shown = Math.max(0, Math.min(b.bottom, g.bottom) - Math.max(b.top, g.top)) / b.height;
        out[t.dataset.name] = shown;
      }
      return out;
    });
    const check = async (visible, hidden) => {
      const shown = await onScreen();
      if (!(shown[visible] > 0.5 && shown[hidden] < 0.2)) throw new Error(`layout: ${JSON.stringify(shown)}`);
      await waitDecodes(alice, visible, { audio: true });
      // The hidden one: its video is unsubscribed (no video track in its tile, nothing decoded),
      // while its audio still plays.
      await waitFor(`alice: ${hidden}'s video unsubscribed`, async () => {
        const a = await inbound(alice);
        const hasVideo = await alice.page.evaluate((n) => document.querySelector(`#tiles .tile[data-name="${n}"] video`).srcObject.getVideoTracks().length, hidden);
        const subscribed = await alice.page.evaluate((n) => {
          const s = window.peerCalls.session;
          return [...s.tracks.entries()].filter(([, i]) => s.peers.get(i.peerId) === n && i.kind === 'video').map(([k]) => s.isSubscribed(k));
        }, hidden);
        return { ok: hasVideo === 0 && !subscribed.includes(true) && !a.some((x) => x.name === hidden && x.kind === 'video'), hasVideo, subscribed };
      });
      await waitFor(`alice: ${hidden}'s audio still arrives`, async () => {
        const pkts = async () => (await inbound(alice)).find((x) => x.name === hidden && x.kind === 'audio')?.packetsReceived ?? 0;
        const a = await pkts();
        await sleep(1000);
        return (await pkts()) > a;
      });
      log(`  on screen: ${visible} decodes; off screen: ${hidden} video unsubscribed, audio kept`);
    };
    // Tile order: alice (self), bob, carol. At the top, carol is off screen.
    await alice.page.evaluate(() => { document.getElementById('tiles').scrollTop = 0; });
    await check('bob', 'carol');
    await shot(alice, '8-visible-top.png');
    await alice.page.evaluate(() => { const g = document.getElementById('tiles'); g.scrollTop = g.scrollHeight; });
    await check('carol', 'bob');
    // Back to the top: bob's video comes back on the m-line it had (parked, not stopped),
    // so scrolling back and forth does not grow the peer connection.
    const transceivers = () => alice.page.evaluate(() => window.peerCalls.session.pc.getTransceivers().length);
    const before = await transceivers();
    await alice.page.evaluate(() => { document.getElementById('tiles').scrollTop = 0; });
    await check('bob', 'carol');
    await alice.page.evaluate(() => { const g = document.getElementById('tiles'); g.scrollTop = g.scrollHeight; });
    await check('carol', 'bob');
    const after = await transceivers();
    if (after !== before) throw new Error(`scrolling back and forth grew the peer connection: ${before} → ${after} transceivers`);
    log(`  scrolled back and forth: still ${after} transceivers`);
  },

  // Error pages: camera denied (a clear message; joining still works, to watch), room full,
  // no devices, server unreachable (then reachable), unsupported browser, invalid room name.
  // Permissions (#21) with --auth jwt: invitation links; the token leaves the address bar
  // and fixes the name; a webinar viewer is never asked for a camera, sees no controls it
  // may not use and watches; a moderator mutes a microphone (turned on again, it is heard
  // again), removes a member with a reason (who sees it, and whose link no longer works),
  // locks the room and ends the call; expired and locked-out links get their own pages.
  async permissions(s) {
    const secret = randomBytes(32).toString('hex');
    const srv = await s.server(['--auth', 'jwt', '--jwt-secret', secret]);
    const r = room('perm');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const link = (name, video, claims = {}) => `${srv.url}/call/${r}?access_token=${mintToken(secret, {
      exp, name, video: { room: r, roomJoin: true, roomCreate: true, ...video }, ...claims,
    })}`;
    const countCameraPrompts = () => {
      window.__prompts = 0;
      const md = navigator.mediaDevices;
      const gum = md.getUserMedia.bind(md);
      md.getUserMedia = (c) => { window.__prompts += 1; return gum(c); };
    };

    const ada = await s.person('Ada');
    await ada.page.goto(link('Ada', { roomAdmin: true }));
    if (ada.page.url().includes('access_token')) throw new Error(`the token stayed in the address bar: ${ada.page.url()}`);
    const field = await ada.page.evaluate(() => ({ value: document.getElementById('nickname').value, fixed: document.getElementById('nickname').readOnly }));
    if (field.value !== 'Ada' || !field.fixed) throw new Error(`the name field is ${JSON.stringify(field)}`);
    await joinInvited(ada);
    if (!(await ada.page.getByRole('button', { name: 'Moderate', exact: true }).isVisible())) throw new Error('the moderator has no Moderate menu');

    const viewer = await s.person('Vi', { initScript: [recordErrorToasts, countCameraPrompts] });
    await viewer.page.goto(link('Vi', { canPublish: false, canPublishData: false }));
    await joinInvited(viewer, { viewer: true });
    await waitDecodes(viewer, 'Ada');
    const seen = await viewer.page.evaluate(() => ({
      prompts: window.__prompts,
      errors: window.__errorToasts,
      mic: !document.getElementById('btn-mic').hidden,
      cam: !document.getElementById('btn-cam').hidden,
      share: !document.getElementById('screen-wrap').hidden,
      chat: !document.getElementById('chat-form').hidden,
      moderate: !document.getElementById('moderate-wrap').hidden,
    }));
    if (seen.prompts !== 0 || seen.errors.length || seen.mic || seen.cam || seen.share || seen.chat || seen.moderate) throw new Error(`the viewer: ${JSON.stringify(seen)}`);
    await shot(viewer, '21-viewer.png');
    log('  the viewer watches Ada: never asked for a camera, no publish, chat or moderation controls');

    const bo = await s.person('Bo');
    const boLink = link('Bo', {});
    await bo.page.goto(boLink);
    await joinInvited(bo);
    await waitDecodes(ada, 'Bo');
    await moderate(ada, 'Bo', 'Mute microphone');
    await waitFor("Bo's microphone shows muted", () => bo.page.evaluate(() => document.getElementById('btn-mic').classList.contains('off')));
    await waitFor("Bo's microphone no longer reaches Ada", async () => !(await hears(ada, 'Bo')));
    await bo.page.click('#btn-mic');
    await waitFor('Ada hears Bo again once he turns his microphone on', () => hears(ada, 'Bo'));
    log('  muted by Ada, Bo is not forwarded; his microphone turned on again is heard again');

    await moderate(ada, 'Bo', 'Remove from the call');
    await ada.page.fill('#kick-reason', 'off topic');
    await ada.page.getByRole('button', { name: 'Remove', exact: true }).click();
    await waitNotice(bo, /You were removed from the call/);
    const said = await bo.page.locator('#notice-text').innerText();
    if (!said.includes('Ada') || !said.includes('off topic')) throw new Error(`the kicked member reads: ${said}`);
    await shot(bo, '21-kicked.png');
    await bo.page.goto(boLink);
    await joinInvited(bo, { connected: false });
    await waitNotice(bo, /You were removed from this room/);
    log(`  Bo, removed ("${said}"), cannot come back with his link`);

    await ada.page.click('#btn-moderate');
    await ada.page.getByRole('menuitem', { name: 'Lock the room' }).click();
    await waitFor('the room shows locked', () => viewer.page.evaluate(() => document.getElementById('room-name').classList.contains('locked')));
    await bo.page.goto(link('Cy', {}));
    await joinInvited(bo, { connected: false });
    await waitNotice(bo, /This room is locked/);
    await shot(bo, '21-locked.png');
    await bo.page.goto(link('Cy', {}, { exp: Math.floor(Date.now() / 1000) - 60 }));
    await joinInvited(bo, { connected: false });
    await waitNotice(bo, /This invitation has expired/);
    log('  locked room and expired invitation: each its own page');

    await ada.page.click('#btn-moderate');
    await ada.page.getByRole('menuitem', { name: 'End the call for everyone' }).click();
    await ada.page.getByRole('menuitem', { name: /Click again/ }).click();
    await waitNotice(viewer, /The call has ended/);
    await waitNotice(ada, /The call has ended/);
    log('  Ada ends the call: everyone sees that it ended');
  },

  // A room password (open rooms, #21): the first member sets one on the join screen; the
  // next is asked for it, a wrong one is refused in the dialog, the right one joins.
  async password(s) {
    const srv = await s.server();
    const r = room('pw');
    const alice = await s.person('alice');
    await alice.page.goto(`${srv.url}/call/${r}`);
    await alice.page.click('#password-box summary');
    await alice.page.fill('#room-password', 'correct horse');
    await join(alice);
    const bob = await s.person('bob');
    await bob.page.goto(`${srv.url}/call/${r}`);
    await bob.page.fill('#nickname', 'bob');
    await bob.page.click('#join');
    await bob.page.locator('#password-dialog').waitFor({ state: 'visible' });
    await bob.page.fill('#password-input', 'wrong');
    await bob.page.getByRole('button', { name: 'Join', exact: true }).click();
    await waitFor('the wrong password is refused in the dialog', () => bob.page.evaluate(() => /not the password/.test(document.getElementById('password-error').textContent)));
    await shot(bob, '21-password.png');
    await bob.page.fill('#password-input', 'correct horse');
    await bob.page.getByRole('button', { name: 'Join', exact: true }).click();
    await waitFor('bob connected', () => bob.page.evaluate(() => document.body.dataset.conn === 'connected'));
    await waitDecodes(bob, 'alice');
    log('  bob was asked for the password alice set, refused a wrong one, joined with hers');
  },

  // Simulcast (#22): alice's camera goes out in three layers; the size of bob's tile
  // decides which one he receives: large, a high one; small, a low one (frameWidth
  // follows in getStats), and alice's browser pauses her top layer, which no tile
  // wants; large again, her top layer resumes and bob gets a high one.
  async simulcast(s) {
    const srv = await s.server();
    const r = room('sim');
    const hd = () => localStorage.setItem('peercalls.quality', 'hd');
    const alice = await s.person('alice', { initScript: hd });
    const bob = await s.person('bob', { viewport: { width: 1920, height: 1080 } });
    await alice.page.goto(`${srv.url}/call/${r}`);
    await join(alice);
    await bob.page.goto(`${srv.url}/call/${r}`);
    await join(bob);
    await waitDecodes(bob, 'alice');
    const width = async () => (await inbound(bob))?.find((x) => x.name === 'alice' && x.kind === 'video' && !x.screen)?.frameWidth ?? 0;
    // He starts on her lowest layer and probes his way up to the top one, 1280 px wide.
    const large = await waitFor('bob gets alice\'s top layer in a large tile', async () => {
      const w = await width();
      return w >= 1280 ? w : null;
    });
    await bob.page.setViewportSize({ width: 420, height: 300 });
    const small = await waitFor('bob gets a low layer in a small tile', async () => {
      const w = await width();
      return w > 0 && w <= 320 ? w : null;
    });
    await shot(bob, '22-small-tile.png');
    // No tile wants alice's top layer now: her browser pauses it.
    const active = () => alice.page.evaluate(() => window.peerCalls.session.videoSender.getParameters().encodings.map((e) => e.active));
    await waitFor("alice's top layer paused", async () => (await active())[2] === false);
    await waitDecodes(bob, 'alice');
    await bob.page.setViewportSize({ width: 1920, height: 1080 });
    const again = await waitFor('bob gets the top layer again', async () => {
      const w = await width();
      return w >= large ? w : null;
    });
    await waitFor("alice's top layer resumed", async () => (await active())[2] === true);
    await waitDecodes(bob, 'alice');
    log(`  frameWidth of alice's camera at bob: ${large} (large tile), ${small} (small), ${again} (large again)`);
    // /metrics counts the switches and each layer's bytes.
    const page = await (await fetch(`${srv.url}/metrics`)).text();
    const sum = (name) => page.split('\n').filter((l) => l.startsWith(name)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    const switches = sum('peercalls_shard_simulcast_layer_switches_total');
    const layers = [0, 1, 2].map((l) => sum(`peercalls_shard_video_forwarded_bytes_layer_${l}_total`));
    if (switches < 2 || layers.filter((b) => b > 0).length < 2) throw new Error(`metrics: ${switches} switches, bytes by layer ${layers}`);
    log(`  /metrics: ${switches} layer switches; video bytes by layer ${layers.join(', ')}`);
  },

  async errors(s) {
    const srv = await s.server(['--max-room-size', '2']);
    const r = room('errors');
    const alice = await s.person('alice');
    await alice.page.goto(`${srv.url}/call/${r}`);
    await join(alice);

    // Camera and microphone blocked for the site: message, then join anyway and watch alice.
    const dora = await s.person('dora', { denyMedia: srv.url });
    await dora.page.goto(`${srv.url}/call/${r}`, { waitUntil: 'domcontentloaded' });
    await waitFor('the permission message', () => dora.page.locator('#media-error').innerText().then((t) => /denied/i.test(t)));
    await shot(dora, '9-camera-denied.png');
    log(`  camera denied: "${(await dora.page.locator('#media-error').innerText()).slice(0, 70)}…"`);
    await dora.page.fill('#nickname', 'dora');
    await dora.page.click('#join');
    await waitFor('dora connected', () => dora.page.evaluate(() => document.body.dataset.conn === 'connected'));
    await waitDecodes(dora, 'alice');
    await waitFor("alice sees dora's tile without video", async () => (await tileAttr(alice, 'dora', 'video')) === 'off');

    // The room holds two: a third gets "room full". The same page then checks the other errors.
    const eve = await s.person('eve', {
      initScript: () => {
        if (location.search.includes('nowebrtc')) delete window.RTCPeerConnection;
        if (location.search.includes('nodevices')) {
          const err = () => Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
          navigator.mediaDevices.getUserMedia = err;
          navigator.mediaDevices.enumerateDevices = () => Promise.resolve([]);
        }
      },
    });
    await eve.page.goto(`${srv.url}/call/${r}`);
    await eve.page.fill('#nickname', 'eve');
    await eve.page.click('#join');
    await waitFor('room full notice', () => eve.page.evaluate(() => !document.getElementById('notice').hidden && /full/i.test(document.getElementById('notice-title').textContent)));
    await shot(eve, '9-room-full.png');
    log('  room full: notice shown');

    await eve.page.goto(`${srv.url}/call/bad%20name`);
    await waitFor('invalid room notice', () => eve.page.evaluate(() => /not a valid room name/.test(document.getElementById('notice-text').textContent)));
    await eve.page.goto(`${srv.url}/call/${r}?nowebrtc`);
    await waitFor('unsupported notice', () => eve.page.evaluate(() => /cannot make calls/.test(document.getElementById('notice-title').textContent)));
    await shot(eve, '9-unsupported.png');
    // A module the page could not fetch (as when the network changes mid-load): the page
    // reloads itself once and starts; when the fetch fails again, it says what happened.
    let failFetches = 1;
    const lobbyModule = '**/static/js/lobby.js';
    await eve.page.route(lobbyModule, (r) => (failFetches-- > 0 ? r.abort('internetdisconnected') : r.continue()));
    await eve.page.goto(`${srv.url}/call/${r}-3`);
    await eve.page.locator('#nickname').waitFor();
    const navigation = await eve.page.evaluate(() => performance.getEntriesByType('navigation')[0].type);
    if (navigation !== 'reload') throw new Error(`the page started without reloading (navigation: ${navigation})`);
    failFetches = Infinity;
    await eve.page.goto(`${srv.url}/call/${r}-3`);
    await waitFor('the did-not-load notice', () => eve.page.evaluate(() => /did not load/.test(document.getElementById('notice-title').textContent)));
    await eve.page.unroute(lobbyModule);
    log('  a module that failed to load: one reload by itself, then "The page did not load"');
    await eve.page.goto(`${srv.url}/call/${r}-2?nodevices`, { waitUntil: 'domcontentloaded' });
    await waitFor('no devices message', () => eve.page.locator('#media-error').innerText().then((t) => /No camera or microphone/.test(t)));
    log('  invalid room, unsupported browser, no devices: messages shown');
    await srv.stop();
    await eve.page.click('#join');
    await waitFor('server unreachable banner', () => eve.page.evaluate(() => /Cannot reach the server/.test(document.getElementById('banner').textContent)));
    await shot(eve, '9-unreachable.png');
    log(`  unreachable: "${await eve.page.locator('#banner').innerText()}"`);
    await srv.start();
    await waitFor('eve connects once the server is back', () => eve.page.evaluate(() => document.body.dataset.conn === 'connected'), 20_000);
  },

  // The tiles' tools. Alice (640×340: four tiles do not fit) turns pages with the pager
  // and the Page keys; bob (a 390×844 phone) raises a hand with H, which alice sees on his
  // tile, in a toast and at the top of her people list; alice minimises carol's tile (her
  // video unsubscribed, a chip left) and restores it (decoded again); in speaker view the
  // one speaking takes the main area (the others muted: dave); every tile shows its
  // connection quality; the buttons' tooltips name their keys. Screenshots of each view,
  // on the phone too.
  async tiles(s) {
    const srv = await s.server();
    const r = room('tiles');
    const alice = await s.person('alice', { viewport: { width: 640, height: 340 } });
    const bob = await s.person('bob', { viewport: { width: 390, height: 844 }, isMobile: true });
    const carol = await s.person('carol');
    const dave = await s.person('dave');
    for (const p of [alice, bob, carol, dave]) {
      await p.page.goto(`${srv.url}/call/${r}`);
      await join(p);
    }
    await waitDecodes(dave, 'alice');
    // Pages.
    const pager = () => alice.page.evaluate(() => ({
      shown: !document.getElementById('pager').hidden,
      where: document.querySelector('#pager .where').textContent,
      top: document.getElementById('tiles').scrollTop,
      grid: document.getElementById('tiles').className,
    }));
    const first = await waitFor('alice: a pager, on page 1', async () => {
      const p = await pager();
      return (p.shown && /^1 \/ [2-9]$/.test(p.where) && p) || { ok: false, ...p };
    });
    await shot(alice, '11-tiles-page-1.png');
    await alice.page.getByRole('button', { name: 'Next page', exact: true }).click();
    const second = await waitFor('alice: page 2', async () => {
      const p = await pager();
      return p.where.startsWith('2 /') && p.top > first.top && p;
    });
    await shot(alice, '11-tiles-page-2.png');
    await alice.page.keyboard.press('PageUp');
    await waitFor('alice: back on page 1 with Page Up', async () => (await pager()).where.startsWith('1 /'));
    log(`  alice's grid goes by pages: ${first.where}, then ${second.where} (scrolled ${second.top} px), then back`);
    // Tooltips name the keys.
    const titles = await bob.page.evaluate(() => ['btn-mic', 'btn-cam', 'btn-hand', 'view-toggle'].map((id) => document.getElementById(id).title));
    for (const [title, key] of titles.map((t, i) => [t, ['(M)', '(V)', '(H)', '(S)'][i]])) {
      if (!title.endsWith(key)) throw new Error(`a tooltip without its key ${key}: "${title}"`);
    }
    log(`  tooltips: ${titles.join(', ')}`);
    // A raised hand.
    await bob.page.keyboard.press('h');
    await bob.page.getByRole('button', { name: 'Lower hand', exact: true }).waitFor();
    const handOf = (p, name) => p.page.evaluate((n) => {
      const tile = [...document.querySelectorAll('#stage .tile')].find((t) => t.dataset.name === n && !t.classList.contains('screen'));
      return Boolean(tile && !tile.querySelector('.hand').hidden);
    }, name);
    await waitFor("alice sees bob's hand on his tile", () => handOf(alice, 'bob'));
    await waitFor('alice: a toast says so', () => alice.page.evaluate(() => [...document.querySelectorAll('.toast')].some((t) => t.textContent === 'bob raised a hand.')));
    await alice.page.click('#btn-people');
    const people = await alice.page.evaluate(() => [...document.querySelectorAll('#people-list li .person')].map((e) => e.textContent));
    if (people[1] !== 'bob') throw new Error(`bob's raised hand is not first in alice's list: ${people}`);
    await shot(alice, '11-tiles-hand.png');
    await shot(bob, '11-tiles-hand-phone.png');
    await alice.page.click('#side-close');
    await bob.page.getByRole('button', { name: 'Lower hand', exact: true }).click();
    await waitFor("bob's hand lowered at alice", async () => !(await handOf(alice, 'bob')));
    log('  bob raised a hand (H): on his tile, in a toast, first in the list; lowered again');
    // Minimise and restore: the video is dropped and comes back.
    const carolTile = alice.page.locator('#stage .tile[data-name="carol"]');
    await carolTile.getByRole('button', { name: 'Minimise this tile', exact: true }).click({ force: true });
    await waitFor("alice: carol's tile is a chip", () => alice.page.evaluate(() => document.querySelector('#minimised .tile[data-name="carol"]') !== null));
    await waitFor("alice: carol's video unsubscribed", () => alice.page.evaluate(() => {
      const s = window.peerCalls.session;
      const keys = [...s.tracks.entries()].filter(([, i]) => s.peers.get(i.peerId) === 'carol' && i.kind === 'video').map(([k]) => k);
      return keys.length > 0 && keys.every((k) => !s.isSubscribed(k));
    }));
    await shot(alice, '11-tiles-minimised.png');
    await carolTile.getByRole('button', { name: 'Restore this tile', exact: true }).click({ force: true });
    await waitDecodes(alice, 'carol');
    log("  carol's tile minimised (her video unsubscribed) and restored (decoded again)");
    // Connection quality on every tile.
    const qualities = await waitFor('alice: quality bars on the tiles', () => alice.page.evaluate(() => {
      const out = {};
      for (const t of document.querySelectorAll('#stage .tile')) {
        const q = t.querySelector('.quality');
        if (!q.hidden) out[t.dataset.name] = q.title;
      }
      return Object.keys(out).length === 4 && Object.values(out).every((x) => x.startsWith('Connection: good')) && out;
    }));
    log(`  quality: ${JSON.stringify(qualities)}`);
    // Speaker view: with the others muted, dave (whose fake microphone beeps) takes the
    // main area.
    for (const p of [alice, bob, carol]) await p.page.getByRole('button', { name: 'Mute', exact: true }).click();
    for (const p of [alice, bob]) {
      await p.page.keyboard.press('s');
      await p.page.getByRole('button', { name: 'Grid view', exact: true }).waitFor();
      await waitFor(`${p.name}: dave in the main area`, () => p.page.evaluate(() => document.querySelector('#pinned .tile')?.dataset.name === 'dave'), 20_000);
    }
    await shot(alice, '11-tiles-speaker.png');
    await shot(bob, '11-tiles-speaker-phone.png');
    await alice.page.getByRole('button', { name: 'Grid view', exact: true }).click();
    await waitFor('alice: back to the grid', () => alice.page.evaluate(() => document.getElementById('pinned').hidden));
    await shot(bob, '11-tiles-grid-phone.png');
    log('  speaker view (S): dave, the one speaking, in the main area at 640×340 and on the phone; back to the grid');
    // The phone's other views, each reached by a named control: chat, people, devices,
    // the share menu is not offered (no getDisplayMedia on phones), a tile's actions.
    for (const [button, view, file] of [['Chat', '#panel-chat', 'chat'], [/^People/, '#panel-people', 'people']]) {
      await bob.page.getByRole('button', { name: button, exact: true }).click();
      await bob.page.locator(view).waitFor({ state: 'visible' });
      await shot(bob, `11-phone-${file}.png`);
      await bob.page.getByRole('button', { name: 'Close panel', exact: true }).click();
    }
    await bob.page.getByRole('button', { name: 'Devices', exact: true }).click();
    await bob.page.locator('#settings').waitFor({ state: 'visible' });
    await shot(bob, '11-phone-devices.png');
    await bob.page.getByRole('button', { name: 'Done', exact: true }).click();
    const daveTile = bob.page.locator('#stage .tile[data-name="dave"]');
    for (const name of ['Pin this tile', 'Minimise this tile', 'Fullscreen']) {
      if (!(await daveTile.getByRole('button', { name, exact: true }).isVisible())) throw new Error(`bob's phone: no visible "${name}" on a tile`);
    }
    log('  on the phone: chat, people and devices reached by name; pin, minimise and fullscreen on each tile');
  },

  // One slow receiver does not hold the others up: alice's downlink is capped at 300
  // kbit/s (a token bucket on the host side of her veth pair); bob sends a 2 MiB file to
  // the room on his data channel; carol, on the host, has all of it while alice has less
  // than half (the server holds alice's part in her channel's buffer, not in bob's).
  async slowfile(s) {
    const { ns, alice, bob, srv, room: r } = await acrossNamespace(s, 'slowfile');
    const carol = await s.person('carol', { secureOrigin: srv.url });
    await carol.page.goto(`${srv.url}/call/${r}`);
    await join(carol);
    await waitDecodes(carol, 'bob');
    for (const p of [alice, bob, carol]) await waitFor(`${p.name}: the data channel is open`, () => p.page.evaluate(() => window.peerCalls.session.dataPath === 'channel'));
    ns.limitDown('300kbit');
    const name = 'big.bin';
    await bob.page.setInputFiles('#file-input', { name, mimeType: 'application/octet-stream', buffer: randomBytes(2 * 1024 * 1024) });
    const progress = (p) => p.page.evaluate((n) => {
      const t = [...window.peerCalls.chat.incoming.values()].find((x) => x.meta.name === n);
      const done = window.peerCalls.chat.kept.some((k) => k.link.download === n);
      return done ? 1 : t ? t.received / t.meta.chunks : 0;
    }, name);
    await waitFor('carol has the whole file', async () => (await progress(carol)) === 1, 60_000);
    const slow = await progress(alice);
    log(`  carol has all of the 2 MiB file; alice, behind 300 kbit/s, has ${Math.round(slow * 100)}%`);
    if (slow >= 0.5) throw new Error(`alice's slow link was not slow (${Math.round(slow * 100)}%)`);
    await shot(carol, '12-slow-receiver.png');
  },

  // Direct calls (`--mesh-max 2`): alice and bob connect peer to peer and decode each
  // other while the server forwards none of their media; when carol joins, all three go
  // through the server, and alice's picture of bob never stops on the way (the direct
  // connection closes once the server's video plays). Without the flag (every other
  // case), calls always go through the server.
  async mesh(s) {
    const token = 'e2e-mesh';
    const srv = await s.server(['--mesh-max', '2', '--metrics-token', token]);
    const figure = (series) => metricsFigure(srv, token, series);
    const r = room('mesh');
    const alice = await s.person('alice');
    const bob = await s.person('bob');
    for (const p of [alice, bob]) {
      await p.page.goto(`${srv.url}/call/${r}`);
      await join(p);
    }
    const directFrames = (p) => p.page.evaluate(async () => {
      const pc = window.peerCalls.mesh.pc;
      if (!pc) return 0;
      let n = 0;
      (await pc.getStats()).forEach((st) => { if (st.type === 'inbound-rtp' && st.kind === 'video') n += st.framesDecoded ?? 0; });
      return n;
    });
    for (const p of [alice, bob]) {
      await waitFor(`${p.name}: a direct call`, () => p.page.evaluate(() => document.body.dataset.path === 'direct'));
      await waitFor(`${p.name} decodes the other directly`, async () => {
        const a = await directFrames(p);
        await sleep(500);
        return (await directFrames(p)) > a && a > 0;
      });
    }
    const forwarded0 = await figure('peercalls_shard_rtp_forwarded_total');
    await sleep(2000);
    const forwarded = (await figure('peercalls_shard_rtp_forwarded_total')) - forwarded0;
    if (forwarded > 0) throw new Error(`the server forwarded ${forwarded} packets during a direct call`);
    await shot(alice, '13-direct-call.png');
    log('  alice and bob decode each other peer to peer; the server forwarded no packet in 2 s');
    // Carol joins: all go through the server, and alice's picture of bob goes on.
    const played = () => alice.page.evaluate(() => {
      const v = [...document.querySelectorAll('#stage .tile')].find((t) => t.dataset.name === 'bob')?.querySelector('video');
      return v?.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
    });
    const carol = await s.person('carol');
    await carol.page.goto(`${srv.url}/call/${r}`);
    const joining = join(carol);
    let last = await played();
    let since = Date.now();
    let longest = 0;
    const end = Date.now() + 12_000;
    while (Date.now() < end) {
      await sleep(100);
      const n = await played();
      if (n > last) {
        longest = Math.max(longest, Date.now() - since);
        [last, since] = [n, Date.now()];
      }
    }
    longest = Math.max(longest, Date.now() - since);
    await joining;
    for (const p of [alice, bob, carol]) {
      await waitFor(`${p.name}: through the server`, () => p.page.evaluate(() => document.body.dataset.path === 'server' && !window.peerCalls.mesh.pc));
    }
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    await waitDecodes(carol, 'alice');
    await waitDecodes(carol, 'bob');
    log(`  carol joined: all three through the server; alice's picture of bob paused at most ${longest} ms on the way`);
    if (longest >= 2000) throw new Error(`alice's picture of bob froze for ${longest} ms moving to the server`);
    // A direct connection that cannot connect (dave's direct peer connection may use only a
    // relay, and there is none): both go through the server, and decode each other.
    const relayOnlyAfterTheFirst = () => {
      const Native = window.RTCPeerConnection;
      let made = 0;
      window.RTCPeerConnection = function (config = {}) {
        made += 1;
        return new Native(made > 1 ? { ...config, iceTransportPolicy: 'relay' } : config);
      };
      window.RTCPeerConnection.prototype = Native.prototype;
      Object.setPrototypeOf(window.RTCPeerConnection, Native);
    };
    const r2 = room('mesh-fails');
    const dave = await s.person('dave', { initScript: relayOnlyAfterTheFirst });
    const erin = await s.person('erin');
    for (const p of [dave, erin]) {
      await p.page.goto(`${srv.url}/call/${r2}`);
      await join(p);
    }
    for (const p of [dave, erin]) {
      await waitFor(`${p.name}: through the server after the direct connection failed`, () => p.page.evaluate(() => document.body.dataset.path === 'server' && !window.peerCalls.mesh.direct), 30_000);
    }
    await waitDecodes(dave, 'erin');
    await waitDecodes(erin, 'dave');
    log('  a direct connection that cannot connect: both go through the server after its 10 s deadline and decode each other');
  },

  // End-to-end encryption: alice and bob join with one passphrase and decode each other;
  // carol, with another, decodes neither and her tiles say "can't decrypt"; dave, with
  // none, is told that they encrypt. Dave's browser also records the frames of alice's
  // camera exactly as the server forwards them (an encoded-frame tap): each is sealed,
  // keeps its VP8 header in the clear (so the server still switches layers at
  // keyframes), and decodes only once opened with the passphrase.
  async e2ee(s) {
    const srv = await s.server();
    const r = room('e2ee');
    const passphrase = 'correct horse battery';
    const people = {};
    for (const [name, phrase] of [['alice', passphrase], ['bob', passphrase], ['carol', 'wrong horse']]) {
      people[name] = await s.person(name);
      await people[name].page.goto(`${srv.url}/call/${r}`);
      await join(people[name], { passphrase: phrase });
    }
    const { alice, bob, carol } = people;
    const dave = await s.person('dave', { initScript: tapVideoFrames, bypassCSP: true });
    await dave.page.goto(`${srv.url}/call/${r}`);
    await join(dave);
    await waitDecodes(alice, 'bob');
    await waitDecodes(bob, 'alice');
    const badge = (p) => p.page.evaluate(() => !document.getElementById('e2ee-badge').hidden);
    if (!(await badge(alice)) || (await badge(dave))) throw new Error('the encrypted badge is not where it belongs');
    const note = (p, name) => p.page.evaluate((n) => {
      const tile = [...document.querySelectorAll('#stage .tile')].find((t) => t.dataset.name === n && !t.classList.contains('screen'));
      return tile ? { state: tile.dataset.e2ee ?? null, text: tile.querySelector('.tile-note').textContent } : null;
    }, name);
    for (const name of ['alice', 'bob']) {
      const n = await waitFor(`carol's tile of ${name} says she cannot decrypt`, async () => {
        const t = await note(carol, name);
        return t?.state === 'key' && t;
      });
      log(`  carol sees ${name}: "${n.text}"`);
      const d = await waitFor(`dave's tile of ${name} says it is encrypted`, async () => {
        const t = await note(dave, name);
        return t?.state === 'locked' && t;
      });
      log(`  dave sees ${name}: "${d.text}"`);
    }
    if ((await note(bob, 'alice')).state) throw new Error("bob's tile of alice has an encryption note");
    // Carol receives alice's packets but decodes nothing of them (nor garbage).
    const carolOfAlice = async () => (await inbound(carol)).find((x) => x.name === 'alice' && x.kind === 'video');
    await waitFor('carol receives packets of alice', async () => (await carolOfAlice())?.packetsReceived > 50);
    const decoded = (await carolOfAlice()).framesDecoded;
    if (decoded !== 0) throw new Error(`carol decoded ${decoded} frames of alice with the wrong passphrase`);
    await shot(carol, '10-e2ee-wrong-passphrase.png');
    await shot(alice, '10-e2ee.png');
    await shot(dave, '10-e2ee-no-passphrase.png');
    // What the server forwards of alice's camera, as dave's tap recorded it.
    const tap = await waitFor("dave's tap of alice's camera: a keyframe and the frames after it", () => dave.page.evaluate(async ({ phrase, roomName }) => {
      const s = window.peerCalls.session;
      const aliceId = [...s.peers].find(([, n]) => n === 'alice')?.[0];
      const key = [...s.receivers.keys()].find((k) => s.tracks.get(k)?.peerId === aliceId && s.tracks.get(k)?.kind === 'video');
      const mid = key && s.receivers.get(key).mid;
      const frames = window.tappedFrames.filter((f) => f.mid === mid);
      // The longest run of a keyframe and the frames after it, up to the next (dave's
      // decoder, given noise, asks for keyframes: they come every second or so).
      let run = [];
      frames.forEach((f, i) => {
        if (f.type !== 'key') return;
        const next = frames.findIndex((g, j) => j > i && g.type === 'key');
        const candidate = frames.slice(i, next > i ? next : undefined);
        if (candidate.length > run.length) run = candidate;
      });
      run = run.slice(0, 20);
      if (run.length < 8) {
        return { ok: false, mid, tapped: window.tappedFrames.length, ofAlice: frames.length, keyframes: frames.filter((f) => f.type === 'key').length, run: run.length };
      }
      const { open, clearBytes, deriveKey, MARKER } = await import('/static/js/e2ee-frame.js');
      const k = await deriveKey(phrase, roomName);
      const decode = async (list) => {
        const out = [];
        let error = null;
        const dec = new VideoDecoder({ output: (f) => out.push(f), error: (e) => { error = e.message; } });
        dec.configure({ codec: 'vp8' });
        try {
          list.forEach((f, i) => dec.decode(new EncodedVideoChunk({ type: f.type, timestamp: i * 33_333, data: f.data })));
          await dec.flush();
        } catch (e) {
          error ??= e.message;
        }
        let pixels = null;
        if (out[0]) {
          const g = new OffscreenCanvas(64, 36).getContext('2d');
          g.drawImage(out[0], 0, 0, 64, 36);
          pixels = g.getImageData(0, 0, 64, 36).data;
        }
        for (const f of out) f.close();
        return { frames: out.length, error, pixels };
      };
      const opened = [];
      for (const f of run) {
        const o = await open(k, f.data, clearBytes('video', f.type));
        if (o.error) return { openError: o.error };
        opened.push({ type: f.type, data: o.data });
      }
      const plain = await decode(opened);
      const sealed = await decode(run);
      let diff = null;
      if (plain.pixels && sealed.pixels) {
        let sum = 0;
        for (let i = 0; i < plain.pixels.length; i++) sum += Math.abs(plain.pixels[i] - sealed.pixels[i]);
        diff = sum / plain.pixels.length;
      }
      const head = new Uint8Array(run[0].data).subarray(3, 6);
      return {
        frames: run.length,
        allSealed: run.every((f) => new Uint8Array(f.data).at(-1) === MARKER),
        keyframeHeader: head[0] === 0x9d && head[1] === 0x01 && head[2] === 0x2a,
        plain: { frames: plain.frames, error: plain.error },
        sealed: { frames: sealed.frames, error: sealed.error },
        diff,
      };
    }, { phrase: passphrase, roomName: r }));
    log(`  dave's tap of alice: ${JSON.stringify(tap)}`);
    if (tap.openError) throw new Error(`a frame the server forwarded did not open with the passphrase: ${tap.openError}`);
    if (!tap.allSealed || !tap.keyframeHeader) throw new Error('the server forwarded frames that are not sealed, or whose VP8 header is not clear');
    if (tap.plain.frames !== tap.frames || tap.plain.error) throw new Error('the opened frames do not decode');
    // Sealed, they do not decode: an error, or a picture unlike the real one.
    const unlike = tap.sealed.error || tap.sealed.frames === 0 || tap.diff > 20;
    if (!unlike) throw new Error(`the sealed frames decode to a picture like the real one (mean difference ${tap.diff})`);
  },
};

/**
 * Init script: records the first 200 encoded video frames each receiver gets (type,
 * bytes, mid) in `window.tappedFrames`, as the server forwarded them, through an
 * RTCRtpScriptTransform set on every video receiver after each remote description.
 */
function tapVideoFrames() {
  window.tappedFrames = [];
  const src = `self.onrtctransform = ({ transformer: t }) => {
    let n = 0;
    t.readable.pipeThrough(new TransformStream({ transform(f, out) {
      if (n < 200) { n++; self.postMessage({ mid: t.options.mid, type: f.type, data: f.data.slice(0) }); }
      out.enqueue(f);
    } })).pipeTo(t.writable);
  };`;
  const worker = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
  worker.onmessage = ({ data }) => window.tappedFrames.push(data);
  const tapped = new WeakSet();
  const setRemote = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = async function (...args) {
    const done = await setRemote.apply(this, args);
    for (const tr of this.getTransceivers()) {
      if (tr.receiver.track?.kind !== 'video' || tapped.has(tr.receiver)) continue;
      tapped.add(tr.receiver);
      tr.receiver.transform = new RTCRtpScriptTransform(worker, { mid: tr.mid });
    }
    return done;
  };
}

async function main() {
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => !CASES[n]);
  if (unknown.length) {
    console.error(`unknown case(s): ${unknown.join(', ')}; cases: ${Object.keys(CASES).join(', ')}`);
    process.exit(2);
  }
  const names = only.length ? only : Object.keys(CASES);
  if (!only.length) {
    await rm(SHOTS, { recursive: true, force: true });
    await rm(LOGS, { recursive: true, force: true });
  }
  await mkdir(SHOTS, { recursive: true });
  const results = [];
  for (const name of names) {
    const s = new Scope(name);
    const t0 = Date.now();
    log(`case ${name}`);
    try {
      await withTimeout(CASES[name](s), 4 * TIMEOUT_MS + 60_000, name);
      // Uncaught errors, and anything the Content-Security-Policy blocked (the page would be
      // missing a part of itself).
      const bad = (l) => l.startsWith('pageerror') || /Content.Security.Policy|violates the following/i.test(l);
      const errors = s.people.flatMap((p) => p.logs.filter(bad).map((l) => `${p.name}: ${l}`));
      if (errors.length) throw new Error(`errors in the page:\n${errors.join('\n')}`);
      results.push({ name, ok: true, secs: (Date.now() - t0) / 1000 });
      log(`PASS ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    } catch (err) {
      results.push({ name, ok: false, secs: (Date.now() - t0) / 1000 });
      console.error(`FAIL ${name}: ${err.message}`);
      for (const p of s.people) {
        await p.page.screenshot({ path: `${SHOTS}/fail-${name}-${p.name}.png` }).catch(() => {});
        console.error(`--- ${p.name}: ${JSON.stringify(await describe(p))}\n${p.logs.slice(-25).join('\n') || '(no console output)'}`);
      }
    } finally {
      await s.close();
    }
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log('');
  for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(10)} ${r.secs.toFixed(1)}s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

function withTimeout(promise, ms, name) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`case ${name} took longer than ${ms / 1000}s`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

await main();
