// The join screen: name, camera and microphone with a live preview and level meter,
// devices and quality; joining starts the call.

import { $, store, validRoom, validNickname, callUrl } from './util.js';
import { LocalMedia, LevelMeter, mediaSupported } from './media.js';
import { show, showError, notice, homeAction, setToggle, invite, fillQuality, fillDevices } from './ui.js';
import { rememberRoom } from './landing.js';
import { startCall } from './call/call.js';
import { takeAccessToken, readClaims } from './access.js';
import { E2ee, e2eeSupported } from './e2ee.js';

/** What this browser lacks for a call, or '' when it has everything. */
export function missingFeatures() {
  const missing = [];
  if (!window.RTCPeerConnection) missing.push('WebRTC');
  else if (!window.RTCRtpTransceiver || !('addTransceiver' in RTCPeerConnection.prototype)) missing.push('WebRTC transceivers (Unified Plan)');
  else if (!window.RTCRtpSender || !('replaceTrack' in RTCRtpSender.prototype)) missing.push('RTCRtpSender.replaceTrack');
  if (!window.WebSocket) missing.push('WebSocket');
  if (!window.MediaStream) missing.push('MediaStream');
  return missing.join(', ');
}

export async function initLobby(room) {
  document.title = `${room} – Peer Calls`;
  $('room-name').textContent = room;
  $('room-name').hidden = false;
  if (!validRoom(room)) {
    notice('Invalid room name', `“${room}” is not a valid room name. A room name is 1–64 letters, digits, “-”, “_” or “.”.`, [{ ...homeAction, primary: true }], 'error');
    return;
  }
  const missing = missingFeatures();
  if (missing) {
    notice('This browser cannot make calls',
      `It lacks ${missing}. Use a current version of Chrome, Edge, Firefox or Safari, on a computer or a phone.`,
      [homeAction], 'error');
    return;
  }
  show('lobby');
  rememberRoom(room);
  $('lobby-room').textContent = room;
  $('lobby-link').value = callUrl(room);
  const nick = $('nickname');
  nick.value = store.get('nickname', '');
  // An invitation (`?access_token=`) may fix the name and make a receive-only member.
  const accessToken = takeAccessToken(room);
  const claims = readClaims(accessToken);
  if (claims.name) {
    nick.value = claims.name;
    nick.readOnly = true;
    $('nickname-fixed').hidden = false;
  }
  // A password is for rooms without invitations.
  $('password-box').hidden = Boolean(accessToken);
  $('e2ee-box').hidden = !e2eeSupported();
  if (claims.viewer) {
    $('viewer-note').hidden = false;
    for (const e of document.querySelectorAll('#lobby .toggles, #lobby .device-select, #lobby .quality-select, #lobby label[for$="-device"], #lobby label[for="lobby-quality"]')) e.hidden = true;
  }
  const media = new LocalMedia();
  const meter = new LevelMeter();
  const preview = $('preview');
  fillQuality($('lobby-quality'), media);

  const updatePreview = () => {
    const hasVideo = Boolean(media.videoTrack) && media.videoOn;
    $('preview-tile').dataset.video = hasVideo ? 'on' : 'off';
    setToggle($('lobby-mic'), media.audioOn && Boolean(media.audioTrack), 'mic');
    setToggle($('lobby-cam'), hasVideo, 'cam');
    $('preview-initials').textContent = (nick.value.trim()[0] ?? '?').toUpperCase();
    // A video element with an empty stream would wait for data forever (and hold the page's load event).
    const hasTracks = media.stream.getTracks().length > 0;
    if (hasTracks && preview.srcObject !== media.stream) preview.srcObject = media.stream;
    if (!hasTracks) preview.srcObject = null;
    if (hasTracks) preview.play().catch(() => {});
    meter.setTrack(media.audioTrack);
  };
  const errors = () => {
    const msgs = [...new Set([media.errors.video, media.errors.audio].filter(Boolean))];
    showError('media-error', msgs.join(' '));
  };
  media.on('state', updatePreview);
  media.on('track', updatePreview);
  media.on('error', errors);
  nick.addEventListener('input', updatePreview);
  updatePreview();

  $('lobby-mic').onclick = () => { meter.ensureContext(); media.setAudioOn(!media.audioOn).then(errors); };
  $('lobby-cam').onclick = () => media.setVideoOn(!media.videoOn).then(() => { errors(); fillDevices(media); });
  for (const s of document.querySelectorAll('.device-select')) {
    s.addEventListener('change', () => media.switchDevice(s.dataset.kind, s.value).then(() => fillDevices(media)));
  }
  for (const s of document.querySelectorAll('.quality-select')) {
    s.addEventListener('change', () => {
      media.setQuality(s.value);
      for (const o of document.querySelectorAll('.quality-select')) o.value = s.value;
    });
  }
  document.querySelectorAll('.copy-link').forEach((b) => { b.onclick = () => invite(room, false); });
  navigator.mediaDevices?.addEventListener?.('devicechange', () => fillDevices(media));

  if (!mediaSupported() && !claims.viewer) {
    showError('media-error', 'Camera and microphone need a secure page (https:// or localhost). You can still join to watch, listen and chat.');
  }
  // Meter animation on the join screen only (stops when the call starts).
  let lobbyMeter = setInterval(() => {
    $('preview-meter').style.transform = `scaleX(${Math.min(1, meter.level() * 3)})`;
  }, 100);
  let started = false;
  $('join-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (started) return;
    const nickname = nick.value.trim();
    if (!validNickname(nickname)) {
      showError('join-error', 'Enter a name of 1–64 characters.');
      nick.focus();
      return;
    }
    showError('join-error', '');
    started = true;
    $('join').disabled = true;
    if (!claims.name) store.set('nickname', nickname);
    clearInterval(lobbyMeter);
    lobbyMeter = 0;
    meter.ensureContext(); // a user gesture: audio may start now
    const password = $('room-password').value || null;
    // A passphrase keys end-to-end encryption; it stays in this page.
    const passphrase = $('e2ee-passphrase').value;
    let e2ee = null;
    if (passphrase && e2eeSupported()) {
      try {
        e2ee = await E2ee.create(passphrase, room);
      } catch (err) {
        showError('join-error', `End-to-end encryption could not start: ${err.message ?? err}`);
        started = false;
        $('join').disabled = false;
        return;
      }
    }
    startCall(room, nickname, media, meter, { accessToken, password, e2ee });
  });
  if (nick.value) $('join').focus();
  else nick.focus();
  // The level meter's AudioContext may start only after a user gesture.
  document.addEventListener('pointerdown', () => meter.ensureContext(), { once: true });
  // A receive-only member is never asked for a camera or microphone.
  if (claims.viewer) return;
  await media.start();
  errors();
  await fillDevices(media);
  updatePreview();
}
