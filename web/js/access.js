// Who the member is, as the link says: an access token in `…/call/ROOM?access_token=…`
// (removed from the address bar at once, so it is not shared by a copied link or kept in
// the history, and kept for this tab only), what a JWT's claims say before joining (a
// fixed name; a receive-only member needs no camera), and the page a refusal gets.
// The server checks everything; the page only avoids offering what would be refused.

const KEY = 'peercalls.access.';

/**
 * The access token for `room`: from the link (then removed from the address bar and kept
 * for this tab, so that "Rejoin" and a reload still have it), or the one kept earlier.
 */
export function takeAccessToken(room, loc = location, hist = history, storage = sessionStorageOrNull()) {
  const url = new URL(loc.href);
  const fromLink = url.searchParams.get('access_token');
  if (fromLink) {
    url.searchParams.delete('access_token');
    hist.replaceState(hist.state, '', `${url.pathname}${url.search}${url.hash}`);
    try {
      storage?.setItem(KEY + room, fromLink);
    } catch {
      // no storage: the token lives as long as the page
    }
    return fromLink;
  }
  try {
    return storage?.getItem(KEY + room) ?? null;
  } catch {
    return null;
  }
}

function sessionStorageOrNull() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/**
 * What a JWT access token says of its holder, read without checking its signature (the
 * server does that): `{name, viewer}`; an opaque token (the webhook provider's) says
 * nothing.
 */
export function readClaims(token) {
  const none = { name: null, viewer: false };
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) return none;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json);
    const video = claims?.video ?? {};
    const sources = Array.isArray(video.canPublishSources) ? video.canPublishSources : null;
    return {
      name: typeof claims?.name === 'string' && claims.name ? claims.name : null,
      viewer: video.canPublish === false || (sources !== null && !sources.some((s) => s === 'camera' || s === 'microphone')),
    };
  } catch {
    return none;
  }
}

/** The title of the page a refused join gets, from the server's reason. */
export function denialTitle(reason = '') {
  if (/expired/.test(reason)) return 'This invitation has expired';
  if (/not valid for another/.test(reason)) return 'This invitation is not valid yet';
  if (/is for room .*, not /.test(reason) || /not for room/.test(reason)) return 'This link is for another room';
  if (/is locked/.test(reason)) return 'This room is locked';
  if (/removed you/.test(reason)) return 'You were removed from this room';
  if (/access token only|no valid invitation/.test(reason)) return 'This room needs an invitation';
  if (/permissions service/.test(reason)) return 'The server cannot check your invitation';
  return 'You cannot join this room';
}

/** What the page shows for a source a member may publish, and what a moderator mutes. */
export const SOURCE_NAMES = {
  microphone: 'microphone',
  camera: 'camera',
  screen_share: 'screen share',
  screen_share_audio: 'screen share sound',
};
