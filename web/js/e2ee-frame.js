// End-to-end encryption of media frames (docs/web-client.md, "End-to-end encryption"):
// the key from the passphrase, and how one encoded frame is sealed and opened. Pure
// WebCrypto, so the page, its worker and the unit tests (node) share it.
//
// A sealed frame: the frame's first bytes in the clear (its codec header, which the
// server reads to find keyframes and switch simulcast layers, and the receiving browser
// to size its decoder), the rest encrypted with AES-GCM (the clear bytes authenticated
// with it), then the 12-byte IV and a marker byte:
//
//   | clear header | ciphertext + 16-byte tag | IV (12) | 0xE2 |

/** The last byte of a sealed frame. */
export const MARKER = 0xe2;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** PBKDF2 rounds: a passphrase guessed offline costs this many hashes a try. */
export const ROUNDS = 210_000;

/**
 * The bytes of a frame left in the clear: VP8's payload header (10 bytes in a keyframe:
 * the frame tag, start code and size; 3 in a delta frame), Opus's TOC byte (1).
 * `type` is the encoded video frame's ('key' or 'delta'); audio frames have none.
 */
export function clearBytes(kind, type) {
  if (kind === 'audio') return 1;
  return type === 'key' ? 10 : 3;
}

/** The AES-GCM key for a room from its passphrase (PBKDF2 with SHA-256, salted by the room). */
export async function deriveKey(passphrase, room, subtle = crypto.subtle) {
  const utf8 = new TextEncoder();
  const base = await subtle.importKey('raw', utf8.encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return subtle.deriveKey(
    { name: 'PBKDF2', salt: utf8.encode(`peer-calls e2ee ${room}`), iterations: ROUNDS, hash: 'SHA-256' },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** Seals `data` (an encoded frame's bytes) with `key`, `clear` bytes left in the clear. */
export async function seal(key, data, clear, subtle = crypto.subtle) {
  const bytes = new Uint8Array(data);
  const head = bytes.subarray(0, Math.min(clear, bytes.length));
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: head },
    key,
    bytes.subarray(head.length),
  ));
  const out = new Uint8Array(head.length + sealed.length + IV_BYTES + 1);
  out.set(head, 0);
  out.set(sealed, head.length);
  out.set(iv, head.length + sealed.length);
  out[out.length - 1] = MARKER;
  return out.buffer;
}

/**
 * Opens a sealed frame: `{data}` with the frame as encoded, or `{error}`: 'plain' (not
 * sealed: its sender does not encrypt) or 'key' (sealed with another key, or damaged).
 */
export async function open(key, data, clear, subtle = crypto.subtle) {
  const bytes = new Uint8Array(data);
  if (bytes.length < 1 + TAG_BYTES + IV_BYTES + 1 || bytes[bytes.length - 1] !== MARKER) {
    return { error: 'plain' };
  }
  const head = Math.min(clear, bytes.length - TAG_BYTES - IV_BYTES - 1);
  const ivAt = bytes.length - 1 - IV_BYTES;
  try {
    const plain = new Uint8Array(await subtle.decrypt(
      { name: 'AES-GCM', iv: bytes.subarray(ivAt, ivAt + IV_BYTES), additionalData: bytes.subarray(0, head) },
      key,
      bytes.subarray(head, ivAt),
    ));
    const out = new Uint8Array(head + plain.length);
    out.set(bytes.subarray(0, head), 0);
    out.set(plain, head);
    return { data: out.buffer };
  } catch {
    return { error: 'key' };
  }
}
