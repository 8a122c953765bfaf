// The page's screens and small pieces of UI shared by the landing page, the join screen
// and the call: which screen shows, toasts, inline errors, full-page notices, the
// microphone/camera toggles, the invite link, and the device and quality pickers.

import { $, el, icon, store, callUrl, copyText, BASE } from './util.js';
import { QUALITIES } from './media.js';

const SCREENS = ['landing', 'lobby', 'in-call', 'notice'];

export function show(screen) {
  for (const s of SCREENS) $(s).hidden = s !== screen;
  document.body.dataset.screen = screen;
}

export function toast(text, { error = false, ms = 3500 } = {}) {
  const t = el('div', { class: `toast${error ? ' error' : ''}`, role: error ? 'alert' : 'status', text });
  $('toasts').append(t);
  setTimeout(() => t.remove(), ms);
}

export function showError(id, text) {
  const e = $(id);
  e.textContent = text ?? '';
  e.hidden = !text;
}

/** A full-page message with buttons: [{label, primary, onclick | href}]. */
export function notice(title, text, actions = [], kind = 'info') {
  $('notice-title').textContent = title;
  $('notice-text').textContent = text;
  $('notice').dataset.kind = kind;
  $('notice-actions').replaceChildren(...actions.map((a) => (a.href
    ? el('a', { class: `button${a.primary ? ' primary' : ''}`, href: a.href, text: a.label })
    : el('button', { type: 'button', class: a.primary ? 'primary' : '', text: a.label, onclick: a.onclick }))));
  show('notice');
}

export const homeAction = { label: 'Start page', href: `${BASE}/` };
export const reloadAction = (label = 'Try again') => ({ label, primary: true, onclick: () => location.reload() });

/** A microphone or camera toggle shows its state: its icon, and a name that says what it does. */
export function setToggle(button, on, what) {
  button.classList.toggle('off', !on);
  button.replaceChildren(icon(on ? what : `${what}-off`));
  button.title = what === 'mic' ? (on ? 'Turn microphone off' : 'Turn microphone on') : (on ? 'Turn camera off' : 'Turn camera on');
  button.setAttribute('aria-label', button.title);
}

/** Shares the room's link (on touch devices) or copies it. */
export async function invite(room, share = true) {
  const url = callUrl(room);
  if (share && navigator.share && matchMedia('(pointer: coarse)').matches) {
    try {
      await navigator.share({ title: 'Join my call', text: `Join the call “${room}”`, url });
      return;
    } catch (err) {
      if (err?.name === 'AbortError') return;
    }
  }
  if (await copyText(url)) toast('Invite link copied. Send it to the people you want to call.');
  else toast(`Copy this link: ${url}`, { ms: 10000 });
}

export function fillQuality(select, media) {
  select.replaceChildren(...Object.entries(QUALITIES).map(([k, q]) => el('option', { value: k, text: q.label })));
  select.value = media.quality;
}

export async function fillDevices(media) {
  const devs = await media.devices();
  for (const select of document.querySelectorAll('.device-select')) {
    const kind = select.dataset.kind;
    const list = devs[kind];
    const current = kind === 'audio' ? media.audioDeviceId : media.videoDeviceId;
    select.replaceChildren(...(list.length
      ? list.map((d) => el('option', { value: d.deviceId, text: d.label }))
      : [el('option', { value: '', text: kind === 'audio' ? 'No microphone found' : 'No camera found' })]));
    select.disabled = list.length === 0;
    if (list.some((d) => d.deviceId === current)) select.value = current;
  }
  const out = $('call-output-device');
  const canPick = 'setSinkId' in HTMLMediaElement.prototype && devs.output.length > 0;
  for (const e of document.querySelectorAll('.output-only')) e.hidden = !canPick;
  if (canPick) {
    out.replaceChildren(...devs.output.map((d) => el('option', { value: d.deviceId, text: d.label })));
    out.value = store.get('outputDevice', '') || devs.output[0].deviceId;
  }
}
