// Browsers too old for JavaScript modules cannot run the call either (loaded with `nomodule`,
// so only they run it).
document.addEventListener('DOMContentLoaded', function () {
  var n = document.getElementById('notice');
  document.getElementById('landing').hidden = true;
  n.hidden = false;
  document.getElementById('notice-title').textContent = 'This browser is not supported';
  document.getElementById('notice-text').textContent =
    'Peer Calls needs a current browser: Chrome, Edge, Firefox or Safari (desktop or mobile).';
});
