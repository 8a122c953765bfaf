// Connection quality per tile, from the peer connection's statistics: what share of a
// track's packets were lost over the last interval, its jitter, and the round trip to the
// server. A remote tile's figures are of what reaches this page from that member (through
// the server); our own tile's are of what the server reports it receives from us.

/** Thresholds, as video calls tolerate them: under 2% loss is unnoticed, over 10% is not. */
export function qualityOf({ received, lostPct = 0, jitterMs = 0, rttMs = 0 }) {
  if (received === 0) return 'none';
  if (lostPct > 10 || rttMs > 600 || jitterMs > 100) return 'poor';
  if (lostPct > 2 || rttMs > 300 || jitterMs > 40) return 'fair';
  return 'good';
}

/**
 * Packets received and lost between two inbound-rtp statistics of one track: `{received,
 * lostPct}` (null for the first).
 */
export function inboundInterval(prev, cur) {
  if (!prev) return null;
  const received = Math.max(0, (cur.packetsReceived ?? 0) - (prev.packetsReceived ?? 0));
  const lost = Math.max(0, (cur.packetsLost ?? 0) - (prev.packetsLost ?? 0));
  return { received, lostPct: received + lost > 0 ? (100 * lost) / (received + lost) : 0 };
}

/** The figures in words, for the bars' tooltip. */
export function qualityDetail({ lostPct, jitterMs, rttMs }) {
  const parts = [];
  if (typeof lostPct === 'number') parts.push(`loss ${lostPct.toFixed(1)}%`);
  if (typeof jitterMs === 'number') parts.push(`jitter ${Math.round(jitterMs)} ms`);
  if (typeof rttMs === 'number') parts.push(`round trip ${Math.round(rttMs)} ms`);
  return parts.join(', ');
}

/**
 * Every tile's quality from one getStats `report`: `prev` (a Map kept between calls)
 * holds the last inbound statistics of each track. Returns [tileKey, level, detail].
 */
export function tileQualities(report, session, stage, prev) {
  let rttMs;
  const inbound = new Map(); // trackIdentifier or mid -> stats
  const remoteInbound = [];
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && typeof s.currentRoundTripTime === 'number') rttMs = s.currentRoundTripTime * 1000;
    if (s.type === 'inbound-rtp') inbound.set(s.trackIdentifier ?? s.mid, s);
    if (s.type === 'remote-inbound-rtp') remoteInbound.push(s);
  });
  const out = [];
  // Each remote tile: its video when it is subscribed, else its audio.
  const byTile = new Map();
  for (const [key, r] of session.receivers) {
    const info = session.tracks.get(key);
    if (!info) continue;
    const tileKey = stage.keyFor(info.peerId, info.streamId);
    const s = inbound.get(r.track.id) ?? inbound.get(r.mid);
    if (!s) continue;
    const seen = prev.get(key);
    prev.set(key, s);
    const interval = inboundInterval(seen, s);
    if (!interval) continue;
    const figures = { ...interval, jitterMs: (s.jitter ?? 0) * 1000, rttMs };
    const had = byTile.get(tileKey);
    if (!had || r.track.kind === 'video') byTile.set(tileKey, figures);
  }
  for (const key of prev.keys()) if (!session.receivers.has(key)) prev.delete(key);
  for (const [tileKey, f] of byTile) out.push([tileKey, qualityOf(f), qualityDetail(f)]);
  // Our own tile: what the server's receiver reports of our media.
  if (remoteInbound.length) {
    const worst = remoteInbound.reduce((a, b) => ((b.fractionLost ?? 0) > (a.fractionLost ?? 0) ? b : a));
    const f = {
      received: 1,
      lostPct: (worst.fractionLost ?? 0) * 100,
      jitterMs: (worst.jitter ?? 0) * 1000,
      rttMs: typeof worst.roundTripTime === 'number' ? worst.roundTripTime * 1000 : rttMs,
    };
    out.push(['local', qualityOf(f), qualityDetail(f)]);
  }
  return out;
}
