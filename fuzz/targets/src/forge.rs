//! Tools for a hostile peer: learning a session's SRTP keys, and building the packets a
//! well-behaved peer never sends.
//!
//! - [`tapped_config`]: an `RtcConfig` whose DTLS instances report the SRTP keying
//!   material they export, so that a test or fuzz target holds the keys of its own
//!   session ([`keys_for`]). It uses only str0m's public crypto-provider traits.
//! - [`SrtpForge`]: protects (and unprotects) arbitrary RTP and RTCP bytes with those
//!   keys, the way the peer's own str0m would (RFC 3711, RFC 7714), so malformed RTP
//!   headers and RTCP compounds reach the server's parsers *inside* valid SRTP.
//! - [`stun_binding_request`], [`rtp`], [`crc32`]: packet builders.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
    SrtpProfile,
};
use str0m::crypto::{
    AeadAes128Gcm, AeadAes128GcmCipher, AeadAes256Gcm, AeadAes256GcmCipher, Aes128CmSha1_80,
    Aes128CmSha1_80Cipher, CryptoProvider, Sha1HmacProvider, SrtpProvider,
};
use str0m::{Rtc, RtcConfig};

/// Keying material exported by DTLS instances, by the DER certificate of the instance.
type Exported = HashMap<Vec<u8>, Keys>;

fn exported() -> &'static Mutex<Exported> {
    static EXPORTED: OnceLock<Mutex<Exported>> = OnceLock::new();
    EXPORTED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The SRTP keying material of one DTLS session.
#[derive(Debug, Clone)]
pub struct Keys {
    /// `client key | server key | client salt | server salt` (RFC 5764 §4.2).
    pub material: Vec<u8>,
    /// The negotiated protection profile.
    pub profile: SrtpProfile,
    /// Whether this side was the DTLS client.
    pub active: bool,
}

/// A DTLS provider that wraps the real one and records every exported key.
#[derive(Debug)]
struct TapProvider;

#[derive(Debug)]
struct TapInstance {
    inner: Box<dyn DtlsInstance>,
    cert: Vec<u8>,
}

fn real() -> CryptoProvider {
    str0m::crypto::from_feature_flags()
}

impl DtlsProvider for TapProvider {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        real().dtls_provider.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, str0m::crypto::CryptoError> {
        let inner = real()
            .dtls_provider
            .new_dtls(cert, now, dtls_version, mtu)?;
        Ok(Box::new(TapInstance {
            inner,
            cert: cert.certificate.clone(),
        }))
    }
}

impl DtlsInstance for TapInstance {
    fn set_active(&mut self, active: bool) {
        self.inner.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.inner.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        let out = self.inner.poll_output(buf);
        if let DtlsOutput::KeyingMaterial(material, profile) = &out
            && let Ok(mut map) = exported().lock()
        {
            map.insert(
                self.cert.clone(),
                Keys {
                    material: material.to_vec(),
                    profile: *profile,
                    active: self.inner.is_active(),
                },
            );
        }
        out
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.inner.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.inner.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.inner.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.inner.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.inner.close()
    }
}

impl Drop for TapInstance {
    fn drop(&mut self) {
        if let Ok(mut map) = exported().lock() {
            map.remove(&self.cert);
        }
    }
}

static TAP: TapProvider = TapProvider;

/// A client `RtcConfig` (RTP mode) whose SRTP keys can be read with [`keys_for`] once
/// DTLS is up, and the DER certificate that identifies it.
pub fn tapped_config() -> (RtcConfig, Vec<u8>) {
    let provider = CryptoProvider {
        dtls_provider: &TAP,
        ..real()
    };
    let cert = provider
        .dtls_provider
        .generate_certificate()
        .expect("the crypto backend generates a DTLS certificate");
    let der = cert.certificate.clone();
    let config = Rtc::builder()
        .set_rtp_mode(true)
        .set_crypto_provider(Arc::new(provider))
        .set_dtls_cert(cert);
    (config, der)
}

/// The keys the DTLS instance with this certificate exported, once it has.
pub fn keys_for(cert: &[u8]) -> Option<Keys> {
    exported().lock().ok()?.get(cert).cloned()
}

// ---- SRTP ----

const LABEL_RTP_AES: u8 = 0;
const LABEL_RTP_AUTH: u8 = 1;
const LABEL_RTP_SALT: u8 = 2;
const LABEL_RTCP_AES: u8 = 3;
const LABEL_RTCP_AUTH: u8 = 4;
const LABEL_RTCP_SALT: u8 = 5;
/// aws-lc's CTR mode wants room for one more block in its output.
const CTR_SLACK: usize = 15;

enum Ctx {
    Cm {
        auth: [u8; 20],
        salt: [u8; 14],
        enc: Box<dyn Aes128CmSha1_80Cipher>,
        dec: Box<dyn Aes128CmSha1_80Cipher>,
    },
    Gcm128 {
        salt: [u8; 12],
        enc: Box<dyn AeadAes128GcmCipher>,
        dec: Box<dyn AeadAes128GcmCipher>,
    },
    Gcm256 {
        salt: [u8; 12],
        enc: Box<dyn AeadAes256GcmCipher>,
        dec: Box<dyn AeadAes256GcmCipher>,
    },
}

/// SRTP and SRTCP with one direction's keys of a session: what its sender's str0m does.
pub struct SrtpForge {
    rtp: Ctx,
    rtcp: Ctx,
    srtcp_index: u32,
    hmac: &'static dyn Sha1HmacProvider,
}

impl std::fmt::Debug for SrtpForge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpForge")
    }
}

/// RFC 3711 §4.3.3: the AES-CM key derivation (the same for the GCM profiles, RFC 7714 §11).
fn derive(crypto: &dyn SrtpProvider, master: &[u8], salt: &[u8], label: u8, out: &mut [u8]) {
    let mut input = [0u8; 16];
    input[..salt.len()].copy_from_slice(salt);
    input[7] ^= label;
    let mut block = [0u8; 32];
    let mut round: u16 = 0;
    let mut i = 0;
    while i < out.len() {
        input[14..].copy_from_slice(&round.to_be_bytes());
        if master.len() == 16 {
            crypto.srtp_aes_128_ecb_round(master, &input, &mut block);
        } else {
            crypto.srtp_aes_256_ecb_round(master, &input, &mut block);
        }
        for b in block.iter().take(16) {
            if i == out.len() {
                break;
            }
            out[i] = *b;
            i += 1;
        }
        round += 1;
    }
}

impl SrtpForge {
    /// The context that protects what the side with `keys` *sends* (`sending`) or what it
    /// receives (`!sending`).
    pub fn new(keys: &Keys, sending: bool) -> Self {
        let provider = real();
        let crypto = provider.srtp_provider;
        // Our half of the material is the client's when we are the DTLS client.
        let left = keys.active == sending;
        let (ml, sl) = match keys.profile {
            SrtpProfile::AES128_CM_SHA1_80 => (16, 14),
            SrtpProfile::AEAD_AES_128_GCM => (16, 12),
            _ => (32, 12),
        };
        let m = &keys.material;
        assert_eq!(m.len(), 2 * ml + 2 * sl, "keying material length");
        let (ko, so) = if left { (0, 0) } else { (ml, sl) };
        let master = &m[ko..ko + ml];
        let salt = &m[2 * ml + so..2 * ml + so + sl];
        let ctx = |aes_label: u8, auth_label: u8, salt_label: u8| -> Ctx {
            match keys.profile {
                SrtpProfile::AES128_CM_SHA1_80 => {
                    let mut key = [0u8; 16];
                    let mut auth = [0u8; 20];
                    let mut s = [0u8; 14];
                    derive(crypto, master, salt, aes_label, &mut key);
                    derive(crypto, master, salt, auth_label, &mut auth);
                    derive(crypto, master, salt, salt_label, &mut s);
                    Ctx::Cm {
                        auth,
                        salt: s,
                        enc: crypto.aes_128_cm_sha1_80().create_cipher(key, true),
                        dec: crypto.aes_128_cm_sha1_80().create_cipher(key, false),
                    }
                }
                SrtpProfile::AEAD_AES_128_GCM => {
                    let mut key = [0u8; 16];
                    let mut s = [0u8; 12];
                    derive(crypto, master, salt, aes_label, &mut key);
                    derive(crypto, master, salt, salt_label, &mut s);
                    Ctx::Gcm128 {
                        salt: s,
                        enc: crypto.aead_aes_128_gcm().create_cipher(key, true),
                        dec: crypto.aead_aes_128_gcm().create_cipher(key, false),
                    }
                }
                _ => {
                    let mut key = [0u8; 32];
                    let mut s = [0u8; 12];
                    derive(crypto, master, salt, aes_label, &mut key);
                    derive(crypto, master, salt, salt_label, &mut s);
                    Ctx::Gcm256 {
                        salt: s,
                        enc: crypto.aead_aes_256_gcm().create_cipher(key, true),
                        dec: crypto.aead_aes_256_gcm().create_cipher(key, false),
                    }
                }
            }
        };
        Self {
            rtp: ctx(LABEL_RTP_AES, LABEL_RTP_AUTH, LABEL_RTP_SALT),
            rtcp: ctx(LABEL_RTCP_AES, LABEL_RTCP_AUTH, LABEL_RTCP_SALT),
            srtcp_index: 0,
            hmac: provider.sha1_hmac_provider,
        }
    }

    /// Protects an RTP packet whose first `header_len` bytes are the header, with the
    /// SSRC and sequence number given (whatever the header says) and rollover counter 0.
    /// `header_len` is clamped to 12 bytes and the packet's length; a packet shorter than
    /// an RTP header cannot be protected and is returned as it is.
    pub fn protect_rtp(
        &mut self,
        packet: &[u8],
        header_len: usize,
        ssrc: u32,
        seq: u16,
    ) -> Vec<u8> {
        // The GCM ciphers refuse associated data shorter than 12 bytes.
        if packet.len() < 12 {
            return packet.to_vec();
        }
        let hlen = header_len.clamp(12, packet.len());
        let (head, body) = packet.split_at(hlen);
        let index = u64::from(seq);
        match &mut self.rtp {
            Ctx::Cm {
                auth, salt, enc, ..
            } => {
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, index);
                let mut out = vec![0u8; packet.len() + CTR_SLACK];
                out[..hlen].copy_from_slice(head);
                enc.encrypt(&iv, body, &mut out[hlen..])
                    .expect("AES-CM encrypts");
                out.truncate(packet.len());
                let tag = self.hmac.sha1_hmac(auth, &[&out, &0u32.to_be_bytes()]);
                out.extend_from_slice(&tag[..Aes128CmSha1_80::HMAC_TAG_LEN]);
                out
            }
            Ctx::Gcm128 { salt, enc, .. } => {
                let iv = AeadAes128Gcm::rtp_iv(*salt, ssrc, 0, seq);
                let mut out = vec![0u8; packet.len() + AeadAes128Gcm::TAG_LEN];
                out[..hlen].copy_from_slice(head);
                enc.encrypt(&iv, head, body, &mut out[hlen..])
                    .expect("AES-GCM encrypts");
                out
            }
            Ctx::Gcm256 { salt, enc, .. } => {
                let iv = AeadAes256Gcm::rtp_iv(*salt, ssrc, 0, seq);
                let mut out = vec![0u8; packet.len() + AeadAes256Gcm::TAG_LEN];
                out[..hlen].copy_from_slice(head);
                enc.encrypt(&iv, head, body, &mut out[hlen..])
                    .expect("AES-GCM encrypts");
                out
            }
        }
    }

    /// Protects an RTCP compound (at least 8 bytes: the first header and sender SSRC).
    pub fn protect_rtcp(&mut self, compound: &[u8]) -> Option<Vec<u8>> {
        if compound.len() < 8 {
            return None;
        }
        let index = self.srtcp_index;
        self.srtcp_index = (self.srtcp_index + 1) & 0x7fff_ffff;
        let e_index = (0x8000_0000 | index).to_be_bytes();
        let ssrc = u32::from_be_bytes([compound[4], compound[5], compound[6], compound[7]]);
        let (head, body) = compound.split_at(8);
        let mut aad = [0u8; 12];
        aad[..8].copy_from_slice(head);
        aad[8..].copy_from_slice(&e_index);
        Some(match &mut self.rtcp {
            Ctx::Cm {
                auth, salt, enc, ..
            } => {
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, u64::from(index));
                let mut out = vec![0u8; compound.len() + CTR_SLACK];
                out[..8].copy_from_slice(head);
                enc.encrypt(&iv, body, &mut out[8..])
                    .expect("AES-CM encrypts");
                out.truncate(compound.len());
                out.extend_from_slice(&e_index);
                let tag = self.hmac.sha1_hmac(auth, &[&out]);
                out.extend_from_slice(&tag[..Aes128CmSha1_80::HMAC_TAG_LEN]);
                out
            }
            Ctx::Gcm128 { salt, enc, .. } => {
                let iv = AeadAes128Gcm::rtcp_iv(*salt, ssrc, index);
                let mut out = vec![0u8; compound.len() + AeadAes128Gcm::TAG_LEN];
                out[..8].copy_from_slice(head);
                enc.encrypt(&iv, &aad, body, &mut out[8..])
                    .expect("AES-GCM encrypts");
                out.extend_from_slice(&e_index);
                out
            }
            Ctx::Gcm256 { salt, enc, .. } => {
                let iv = AeadAes256Gcm::rtcp_iv(*salt, ssrc, index);
                let mut out = vec![0u8; compound.len() + AeadAes256Gcm::TAG_LEN];
                out[..8].copy_from_slice(head);
                enc.encrypt(&iv, &aad, body, &mut out[8..])
                    .expect("AES-GCM encrypts");
                out.extend_from_slice(&e_index);
                out
            }
        })
    }

    /// The plaintext of an SRTP packet protected with these keys (rollover counter 0),
    /// whose header is `header_len` bytes long. `None` if it does not authenticate.
    pub fn unprotect_rtp(&mut self, srtp: &[u8], header_len: usize) -> Option<Vec<u8>> {
        if srtp.len() < 12 || header_len > srtp.len() {
            return None;
        }
        let seq = u16::from_be_bytes([srtp[2], srtp[3]]);
        let ssrc = u32::from_be_bytes([srtp[8], srtp[9], srtp[10], srtp[11]]);
        match &mut self.rtp {
            Ctx::Cm {
                auth, salt, dec, ..
            } => {
                let end = srtp.len().checked_sub(Aes128CmSha1_80::HMAC_TAG_LEN)?;
                if end < header_len {
                    return None;
                }
                let tag = self
                    .hmac
                    .sha1_hmac(auth, &[&srtp[..end], &0u32.to_be_bytes()]);
                if tag[..Aes128CmSha1_80::HMAC_TAG_LEN] != srtp[end..] {
                    return None;
                }
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, u64::from(seq));
                let mut out = vec![0u8; end + CTR_SLACK];
                out[..header_len].copy_from_slice(&srtp[..header_len]);
                dec.decrypt(&iv, &srtp[header_len..end], &mut out[header_len..])
                    .ok()?;
                out.truncate(end);
                Some(out)
            }
            Ctx::Gcm128 { salt, dec, .. } => {
                let iv = AeadAes128Gcm::rtp_iv(*salt, ssrc, 0, seq);
                gcm_open(srtp, header_len, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
            Ctx::Gcm256 { salt, dec, .. } => {
                let iv = AeadAes256Gcm::rtp_iv(*salt, ssrc, 0, seq);
                gcm_open(srtp, header_len, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
        }
    }

    /// The plaintext compound of an (encrypted) SRTCP packet protected with these keys.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Option<Vec<u8>> {
        let ssrc = u32::from_be_bytes(srtcp.get(4..8)?.try_into().ok()?);
        match &mut self.rtcp {
            Ctx::Cm {
                auth, salt, dec, ..
            } => {
                let tag_at = srtcp.len().checked_sub(Aes128CmSha1_80::HMAC_TAG_LEN)?;
                let idx_at = tag_at.checked_sub(4)?;
                if idx_at < 8 {
                    return None;
                }
                let tag = self.hmac.sha1_hmac(auth, &[&srtcp[..tag_at]]);
                if tag[..Aes128CmSha1_80::HMAC_TAG_LEN] != srtcp[tag_at..] {
                    return None;
                }
                let e_index = u32::from_be_bytes(srtcp[idx_at..tag_at].try_into().ok()?);
                if e_index & 0x8000_0000 == 0 {
                    return Some(srtcp[..idx_at].to_vec());
                }
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, u64::from(e_index & 0x7fff_ffff));
                let mut out = vec![0u8; idx_at + CTR_SLACK];
                out[..8].copy_from_slice(&srtcp[..8]);
                dec.decrypt(&iv, &srtcp[8..idx_at], &mut out[8..]).ok()?;
                out.truncate(idx_at);
                Some(out)
            }
            Ctx::Gcm128 { salt, dec, .. } => {
                let idx_at = srtcp.len().checked_sub(4)?;
                let e_index = u32::from_be_bytes(srtcp[idx_at..].try_into().ok()?);
                let iv = AeadAes128Gcm::rtcp_iv(*salt, ssrc, e_index & 0x7fff_ffff);
                gcm_open_rtcp(srtcp, e_index, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
            Ctx::Gcm256 { salt, dec, .. } => {
                let idx_at = srtcp.len().checked_sub(4)?;
                let e_index = u32::from_be_bytes(srtcp[idx_at..].try_into().ok()?);
                let iv = AeadAes256Gcm::rtcp_iv(*salt, ssrc, e_index & 0x7fff_ffff);
                gcm_open_rtcp(srtcp, e_index, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
        }
    }
}

const GCM_TAG: usize = 16;

fn gcm_open(
    srtp: &[u8],
    header_len: usize,
    open: impl FnOnce(&[&[u8]], &[u8], &mut [u8]) -> Option<usize>,
) -> Option<Vec<u8>> {
    let body = srtp.len().checked_sub(header_len)?.checked_sub(GCM_TAG)?;
    let mut out = vec![0u8; header_len + body];
    out[..header_len].copy_from_slice(&srtp[..header_len]);
    let n = open(
        &[&srtp[..header_len]],
        &srtp[header_len..],
        &mut out[header_len..],
    )?;
    out.truncate(header_len + n);
    Some(out)
}

fn gcm_open_rtcp(
    srtcp: &[u8],
    e_index: u32,
    open: impl FnOnce(&[&[u8]], &[u8], &mut [u8]) -> Option<usize>,
) -> Option<Vec<u8>> {
    if e_index & 0x8000_0000 == 0 {
        return None; // unencrypted SRTCP: not what str0m sends
    }
    let idx_at = srtcp.len().checked_sub(4)?;
    let body = idx_at.checked_sub(8)?.checked_sub(GCM_TAG)?;
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(&srtcp[..8]);
    aad[8..].copy_from_slice(&e_index.to_be_bytes());
    let mut out = vec![0u8; 8 + body];
    out[..8].copy_from_slice(&srtcp[..8]);
    let n = open(&[&aad], &srtcp[8..idx_at], &mut out[8..])?;
    out.truncate(8 + n);
    Some(out)
}

// ---- packet builders ----

/// The length of an RTP header as RFC 3550 defines it (fixed part, CSRCs, extension
/// block), or `None` when the packet is too short to hold it.
pub fn rtp_header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let cc = usize::from(first & 0x0f);
    let mut len = 12 + 4 * cc;
    if first & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (len <= packet.len()).then_some(len)
}

/// A plain RTP packet: version 2, no padding, no extension.
pub fn rtp(pt: u8, seq: u16, time: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push((pt & 0x7f) | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&time.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// CRC-32 (IEEE 802.3), as STUN's FINGERPRINT uses it (before its XOR).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// How to spoil a STUN binding request.
#[derive(Debug, Clone, Copy, Default)]
pub struct StunFlaws {
    /// Make the USERNAME attribute's length run past the message.
    pub attr_past_end: bool,
    /// A MESSAGE-INTEGRITY of this many bytes instead of 20.
    pub integrity_len: Option<usize>,
    /// Flip a bit of the FINGERPRINT.
    pub bad_fingerprint: bool,
    /// Flip a bit of the MESSAGE-INTEGRITY.
    pub bad_integrity: bool,
}

/// A STUN binding request as an ICE agent sends it: USERNAME `local:remote`,
/// PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY keyed with `password`,
/// FINGERPRINT — spoilt as `flaws` says.
pub fn stun_binding_request(
    username: &str,
    password: &str,
    transaction: [u8; 12],
    flaws: StunFlaws,
) -> Vec<u8> {
    fn attr(m: &mut Vec<u8>, kind: u16, value: &[u8]) {
        m.extend_from_slice(&kind.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
    }
    fn set_len(m: &mut [u8], len: usize) {
        m[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    }
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&transaction);
    let user_at = m.len();
    attr(&mut m, 0x0006, username.as_bytes());
    attr(&mut m, 0x0024, &0x6e7f_1effu32.to_be_bytes()); // PRIORITY
    attr(&mut m, 0x802a, &[7; 8]); // ICE-CONTROLLING
    attr(&mut m, 0x0025, &[]); // USE-CANDIDATE
    // MESSAGE-INTEGRITY covers the message with the length field counting it.
    let mi_len = flaws.integrity_len.unwrap_or(20);
    let body = m.len() - 20;
    set_len(&mut m, body + 4 + mi_len);
    let mut mac = real()
        .sha1_hmac_provider
        .sha1_hmac(password.as_bytes(), &[&m])
        .to_vec();
    mac.resize(mi_len, 0);
    if flaws.bad_integrity && !mac.is_empty() {
        mac[0] ^= 1;
    }
    attr(&mut m, 0x0008, &mac);
    let body = m.len() - 20;
    set_len(&mut m, body + 8);
    let mut fp = crc32(&m) ^ 0x5354_554e;
    if flaws.bad_fingerprint {
        fp ^= 1;
    }
    attr(&mut m, 0x8028, &fp.to_be_bytes());
    if flaws.attr_past_end {
        m[user_at + 2..user_at + 4].copy_from_slice(&0x0400u16.to_be_bytes());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn rtp_header_len_counts_csrcs_and_extension() {
        let mut p = rtp(96, 1, 2, 3, false, &[0; 8]);
        assert_eq!(rtp_header_len(&p), Some(12));
        p[0] |= 0x12; // X, two CSRCs
        assert_eq!(rtp_header_len(&p), None);
        p.extend_from_slice(&[0; 16]);
        p[20..24].copy_from_slice(&[0xbe, 0xde, 0, 1]);
        assert_eq!(rtp_header_len(&p), Some(12 + 8 + 4 + 4));
    }
}
