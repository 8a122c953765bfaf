// The connection's state as the member sees it: a label in the header and, while the
// call is interrupted, a banner that says what is happening and when the next try is;
// coming back online or to the tab tries at once.

import { $, el } from '../util.js';

const LABELS = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', blocked: 'No media', closed: 'Disconnected' };

/** The header's label for a connection state. */
export function connLabel(state) {
  return LABELS[state] ?? state;
}

/**
 * The banner's sentence, or null when no banner shows. `secs`: seconds to the next try;
 * `everJoined`: the call worked before (else a failure to connect means unreachable).
 */
export function bannerText({ state, detail, secs, everJoined, host }) {
  if (state === 'connected' || state === 'closed') return null;
  if (state === 'blocked') {
    // The signalling works but audio and video cannot reach the media server (ICE).
    const tried = detail === 'relayed' ? ', not even through the relay server (TURN)' : '';
    const ask = detail === 'relayed' ? 'ask whoever runs this server to check its TURN server'
      : 'ask whoever runs this server to add a TURN server';
    return `Audio and video cannot reach the server${tried}. The network may block them: `
      + `try another network (mobile data, say), turn off a VPN or firewall, or ${ask}.`;
  }
  const unreachable = state === 'connecting' && detail && !everJoined;
  let text = state === 'connecting' ? 'Connecting to the call…' : 'Connection lost. Reconnecting…';
  if (unreachable) text = `Cannot reach the server at ${host}.`;
  else if (detail && state === 'reconnecting') text = `Reconnecting: ${detail}.`;
  if (secs > 0) text += ` Next try in ${secs} s.`;
  return text;
}

/** Shows `session`'s connection state; returns what stops it. */
export function wireConnection(session) {
  let bannerTimer = 0;
  function renderConn(state, detail, retryAt) {
    const conn = $('conn');
    conn.hidden = false;
    conn.dataset.state = state;
    document.body.dataset.conn = state;
    $('conn-text').textContent = connLabel(state);
    clearInterval(bannerTimer);
    const banner = $('banner');
    const render = () => {
      const secs = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : 0;
      const text = bannerText({ state, detail, secs, everJoined: session.everJoined, host: location.host });
      if (text === null) {
        banner.hidden = true;
        return;
      }
      banner.replaceChildren(el('span', { text }), secs > 0 ? el('button', { type: 'button', class: 'link-btn', text: 'Retry now', onclick: () => session.retryNow() }) : '');
      banner.hidden = false;
    };
    render();
    if (retryAt) bannerTimer = setInterval(render, 1000);
  }
  session.on('conn', ({ state, detail, retryAt }) => renderConn(state, detail, retryAt));
  window.addEventListener('online', () => session.retryNow());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') session.retryNow();
  });
  return { stop: () => clearInterval(bannerTimer) };
}
