// The page never stays blank. (A classic script: it must run where app.js cannot.)
//
// Two things stop app.js from starting, and they need different words:
// - a script that could not be fetched (the network dropped or changed mid-load): the page
//   reloads itself once, which is what the person would do; if that fails too, it says so;
// - a browser that runs modules but not this client's JavaScript (too old): it says which
//   browsers work.
(function () {
  var RETRY_KEY = 'peercalls.bootRetry';
  var RETRY_WITHIN_MS = 60000;
  var fetchFailed = false;

  // A script element that fails to load fires a non-bubbling `error`, seen here in capture.
  // For the module script that includes any module it imports.
  window.addEventListener('error', function (e) {
    if (e.target && e.target.tagName === 'SCRIPT') fetchFailed = true;
  }, true);

  // One automatic reload per minute at most, so a server that keeps failing is not hammered
  // (and with no session storage, none).
  function mayRetry() {
    try {
      var last = Number(sessionStorage.getItem(RETRY_KEY) || 0);
      if (Date.now() - last < RETRY_WITHIN_MS) return false;
      sessionStorage.setItem(RETRY_KEY, String(Date.now()));
      return true;
    } catch (err) {
      return false;
    }
  }

  function show(title, text) {
    var screens = document.querySelectorAll('main.screen');
    for (var i = 0; i < screens.length; i++) screens[i].hidden = true;
    document.getElementById('notice').hidden = false;
    document.getElementById('notice-title').textContent = title;
    document.getElementById('notice-text').textContent = text;
  }

  window.addEventListener('load', function () {
    // Module scripts run before `load`; the grace covers a browser that is merely slow.
    setTimeout(function () {
      if (window.__peerCallsBooted) return;
      if (fetchFailed) {
        if (mayRetry()) {
          location.reload();
          return;
        }
        show('The page did not load',
          'Part of the page could not be fetched from the server. Check your connection, then reload.');
        return;
      }
      show('This browser is not supported',
        'The page could not start. Use a current Chrome, Edge, Firefox or Safari (desktop or mobile), or reload.');
    }, fetchFailed ? 0 : 4000);
  });
})();
