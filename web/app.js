// Peer Calls in the browser: routing to the landing page or a call's join screen.
// Plain ES modules, no build step; the server embeds web/ into its binary.
// Protocol: docs/protocol.md. This client's own message schema: docs/web-client.md.
//
//   js/landing.js   the landing page        js/lobby.js       the join screen
//   js/call/        the call: call.js (its life), tiles.js (members and tiles),
//                   controls.js (buttons, share, devices, side panel),
//                   connection.js (the connection state and banner)
//   js/ui.js        screens, toasts, notices and pickers the others share

import { BASE } from './js/util.js';
import { toast, notice, homeAction, reloadAction } from './js/ui.js';
import { initLanding } from './js/landing.js';
import { initLobby } from './js/lobby.js';

window.__peerCallsBooted = true;

// Never a blank page: uncaught errors are shown.
window.addEventListener('error', (e) => {
  if (e.message) toast(`Unexpected error: ${e.message}`, { error: true, ms: 6000 });
});
window.addEventListener('unhandledrejection', (e) => {
  toast(`Unexpected error: ${e.reason?.message ?? e.reason}`, { error: true, ms: 6000 });
});

function route() {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'call' && parts.length >= 2) {
    let room = parts[parts.length - 1];
    try {
      room = decodeURIComponent(room);
    } catch {
      // left encoded: the name check reports it
    }
    initLobby(room).catch((err) => {
      console.error(err);
      notice('The call page failed to start', String(err?.message ?? err), [reloadAction(), homeAction], 'error');
    });
  } else {
    initLanding();
  }
}

route();
