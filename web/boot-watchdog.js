// A browser that runs modules but not this client's JavaScript (too old) would show nothing:
// say so instead. (A classic script: it must run where app.js cannot.)
window.addEventListener('load', function () {
  setTimeout(function () {
    if (window.__peerCallsBooted) return;
    var n = document.getElementById('notice');
    var screens = document.querySelectorAll('main.screen');
    for (var i = 0; i < screens.length; i++) screens[i].hidden = true;
    n.hidden = false;
    document.getElementById('notice-title').textContent = 'This browser is not supported';
    document.getElementById('notice-text').textContent =
      'The page could not start. Use a current Chrome, Edge, Firefox or Safari (desktop or mobile), or reload.';
  }, 4000);
});
