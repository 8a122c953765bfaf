// Just enough SDP reading for the client: which m-line (mid) carries which track (a=msid).

/**
 * The m-sections of an SDP: [{mid, kind, port, direction, streamId, trackId}].
 * `direction` is the one the SDP's author states (e.g. the server's `sendonly`).
 */
export function sections(sdp) {
  const out = [];
  let cur = null;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      const [kind, port] = line.slice(2).split(' ');
      cur = { mid: null, kind, port: Number(port), direction: 'sendrecv', streamId: null, trackId: null };
      out.push(cur);
    } else if (!cur) {
      continue;
    } else if (line.startsWith('a=mid:')) {
      cur.mid = line.slice(6).trim();
    } else if (line.startsWith('a=msid:')) {
      const [streamId, trackId] = line.slice(7).trim().split(' ');
      cur.streamId = streamId;
      cur.trackId = trackId ?? null;
    } else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) {
      cur.direction = line.slice(2);
    }
  }
  return out;
}
