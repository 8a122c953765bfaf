//! SRTP and SRTCP (RFC 3711, RFC 7714) with one direction's keys of a session, through
//! str0m's crypto provider (the same ciphers str0m uses). The engine protects forwarded
//! media with it, straight into its send buffers; the tests' hostile peer forges and
//! reads packets with it.
//!
//! The keys come from the session's DTLS handshake ([`crate::dtls_tap`]): the exported
//! keying material is `client key | server key | client salt | server salt` (RFC 5764
//! §4.2), and each side sends with its own half.

use std::fmt;

use str0m::crypto::dtls::SrtpProfile;
use str0m::crypto::{
    AeadAes128Gcm, AeadAes128GcmCipher, AeadAes256Gcm, AeadAes256GcmCipher, Aes128CmSha1_80,
    Aes128CmSha1_80Cipher, CryptoProvider, Sha1HmacProvider, SrtpProvider,
};

/// The SRTP keying material one DTLS session exported.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// `client key | server key | client salt | server salt` (RFC 5764 §4.2).
    pub material: Vec<u8>,
    /// The negotiated protection profile.
    pub profile: SrtpProfile,
    /// Whether this side was the DTLS client.
    pub active: bool,
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys themselves: they end up in logs.
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Bytes an SRTP packet is longer than its RTP packet, at most (a GCM tag).
pub const MAX_RTP_OVERHEAD: usize = 16;
/// Room the output of [`Srtp::protect_rtp_into`] needs beyond the protected packet:
/// aws-lc's AES-CTR writes whole blocks.
pub const OUTPUT_SLACK: usize = 15;

const LABEL_RTP_AES: u8 = 0;
const LABEL_RTP_AUTH: u8 = 1;
const LABEL_RTP_SALT: u8 = 2;
const LABEL_RTCP_AES: u8 = 3;
const LABEL_RTCP_AUTH: u8 = 4;
const LABEL_RTCP_SALT: u8 = 5;
const GCM_TAG: usize = 16;
/// The E flag of an SRTCP index: the compound is encrypted.
const SRTCP_ENCRYPTED: u32 = 0x8000_0000;

/// Why a packet could not be protected or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    /// The keying material does not fit the profile.
    BadKeys,
    /// Too short for a header, or the output buffer too small.
    Length,
    /// The cipher refused (for a packet: it does not authenticate).
    Cipher,
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SrtpError::BadKeys => "SRTP keying material does not fit its profile",
            SrtpError::Length => "SRTP packet or buffer too short",
            SrtpError::Cipher => "SRTP cipher refused the packet",
        })
    }
}

impl std::error::Error for SrtpError {}

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

/// SRTP and SRTCP with one direction's keys of a session.
pub struct Srtp {
    rtp: Ctx,
    rtcp: Ctx,
    hmac: &'static dyn Sha1HmacProvider,
}

impl fmt::Debug for Srtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Srtp")
    }
}

/// RFC 3711 §4.3.3: the AES-CM key derivation (the same for the GCM profiles, RFC 7714 §11).
fn derive(crypto: &dyn SrtpProvider, master: &[u8], salt: &[u8], label: u8, out: &mut [u8]) {
    let mut input = [0u8; 16];
    input[..salt.len()].copy_from_slice(salt);
    input[7] ^= label;
    let mut block = [0u8; 32];
    for (round, chunk) in out.chunks_mut(16).enumerate() {
        input[14..].copy_from_slice(&(round as u16).to_be_bytes());
        if master.len() == 16 {
            crypto.srtp_aes_128_ecb_round(master, &input, &mut block);
        } else {
            crypto.srtp_aes_256_ecb_round(master, &input, &mut block);
        }
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

impl Srtp {
    /// The context for what the side holding `keys` sends (`sending`) or receives.
    pub fn new(
        provider: &CryptoProvider,
        keys: &SrtpKeys,
        sending: bool,
    ) -> Result<Self, SrtpError> {
        let crypto = provider.srtp_provider;
        // Our half of the material is the client's when we are the DTLS client.
        let left = keys.active == sending;
        let (ml, sl) = match keys.profile {
            SrtpProfile::AES128_CM_SHA1_80 => (16, 14),
            SrtpProfile::AEAD_AES_128_GCM => (16, 12),
            SrtpProfile::AEAD_AES_256_GCM => (32, 12),
            #[allow(unreachable_patterns)]
            _ => return Err(SrtpError::BadKeys),
        };
        let m = &keys.material;
        if m.len() != 2 * ml + 2 * sl {
            return Err(SrtpError::BadKeys);
        }
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
        Ok(Self {
            rtp: ctx(LABEL_RTP_AES, LABEL_RTP_AUTH, LABEL_RTP_SALT),
            rtcp: ctx(LABEL_RTCP_AES, LABEL_RTCP_AUTH, LABEL_RTCP_SALT),
            hmac: provider.sha1_hmac_provider,
        })
    }

    /// Bytes a protected RTP packet is longer than the packet.
    pub fn rtp_overhead(&self) -> usize {
        match self.rtp {
            Ctx::Cm { .. } => Aes128CmSha1_80::HMAC_TAG_LEN,
            Ctx::Gcm128 { .. } | Ctx::Gcm256 { .. } => GCM_TAG,
        }
    }

    /// Protects the RTP packet `header` + `payload` as packet `index` (rollover counter
    /// × 2^16 + sequence number) of `ssrc`, into `out`; returns its length. `out` must
    /// hold the packet, [`Srtp::rtp_overhead`] and [`OUTPUT_SLACK`]. No allocation.
    pub fn protect_rtp_into(
        &mut self,
        header: &[u8],
        payload: &[u8],
        ssrc: u32,
        index: u64,
        out: &mut [u8],
    ) -> Result<usize, SrtpError> {
        let hlen = header.len();
        let end = hlen + payload.len();
        // The GCM ciphers refuse associated data shorter than an RTP header.
        if hlen < 12 || out.len() < end + self.rtp_overhead() + OUTPUT_SLACK {
            return Err(SrtpError::Length);
        }
        out[..hlen].copy_from_slice(header);
        let roc = (index >> 16) as u32;
        let seq = index as u16;
        match &mut self.rtp {
            Ctx::Cm {
                auth, salt, enc, ..
            } => {
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, index);
                enc.encrypt(&iv, payload, &mut out[hlen..])
                    .map_err(|_| SrtpError::Cipher)?;
                let tag = self
                    .hmac
                    .sha1_hmac(auth, &[&out[..end], &roc.to_be_bytes()]);
                let n = Aes128CmSha1_80::HMAC_TAG_LEN;
                out[end..end + n].copy_from_slice(&tag[..n]);
                Ok(end + n)
            }
            Ctx::Gcm128 { salt, enc, .. } => {
                let iv = AeadAes128Gcm::rtp_iv(*salt, ssrc, roc, seq);
                enc.encrypt(&iv, header, payload, &mut out[hlen..end + GCM_TAG])
                    .map_err(|_| SrtpError::Cipher)?;
                Ok(end + GCM_TAG)
            }
            Ctx::Gcm256 { salt, enc, .. } => {
                let iv = AeadAes256Gcm::rtp_iv(*salt, ssrc, roc, seq);
                enc.encrypt(&iv, header, payload, &mut out[hlen..end + GCM_TAG])
                    .map_err(|_| SrtpError::Cipher)?;
                Ok(end + GCM_TAG)
            }
        }
    }

    /// [`Srtp::protect_rtp_into`] into a new buffer, for a packet whose first
    /// `header_len` bytes are its header.
    pub fn protect_rtp(
        &mut self,
        packet: &[u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<Vec<u8>, SrtpError> {
        if header_len > packet.len() {
            return Err(SrtpError::Length);
        }
        let (header, payload) = packet.split_at(header_len);
        let mut out = vec![0u8; packet.len() + MAX_RTP_OVERHEAD + OUTPUT_SLACK];
        let n = self.protect_rtp_into(header, payload, ssrc, index, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// The RTP packet in `srtp`, protected with these keys as packet `index` of its
    /// SSRC (the index's low 16 bits are the header's sequence number), whose header is
    /// `header_len` bytes long.
    pub fn unprotect_rtp(
        &mut self,
        srtp: &[u8],
        header_len: usize,
        index: u64,
    ) -> Result<Vec<u8>, SrtpError> {
        if srtp.len() < 12 || header_len < 12 || header_len > srtp.len() {
            return Err(SrtpError::Length);
        }
        let ssrc = u32::from_be_bytes([srtp[8], srtp[9], srtp[10], srtp[11]]);
        let roc = (index >> 16) as u32;
        let seq = index as u16;
        match &mut self.rtp {
            Ctx::Cm {
                auth, salt, dec, ..
            } => {
                let end = srtp
                    .len()
                    .checked_sub(Aes128CmSha1_80::HMAC_TAG_LEN)
                    .filter(|e| *e >= header_len)
                    .ok_or(SrtpError::Length)?;
                let tag = self
                    .hmac
                    .sha1_hmac(auth, &[&srtp[..end], &roc.to_be_bytes()]);
                if tag[..Aes128CmSha1_80::HMAC_TAG_LEN] != srtp[end..] {
                    return Err(SrtpError::Cipher);
                }
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, index);
                let mut out = vec![0u8; end + OUTPUT_SLACK];
                out[..header_len].copy_from_slice(&srtp[..header_len]);
                dec.decrypt(&iv, &srtp[header_len..end], &mut out[header_len..])
                    .map_err(|_| SrtpError::Cipher)?;
                out.truncate(end);
                Ok(out)
            }
            Ctx::Gcm128 { salt, dec, .. } => {
                let iv = AeadAes128Gcm::rtp_iv(*salt, ssrc, roc, seq);
                gcm_open(srtp, header_len, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
            Ctx::Gcm256 { salt, dec, .. } => {
                let iv = AeadAes256Gcm::rtp_iv(*salt, ssrc, roc, seq);
                gcm_open(srtp, header_len, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
        }
    }

    /// Protects an RTCP compound (at least its first header and sender SSRC) as SRTCP
    /// packet `index` of that SSRC, encrypted.
    pub fn protect_rtcp(&mut self, compound: &[u8], index: u32) -> Result<Vec<u8>, SrtpError> {
        if compound.len() < 8 {
            return Err(SrtpError::Length);
        }
        let index = index & !SRTCP_ENCRYPTED;
        let e_index = (SRTCP_ENCRYPTED | index).to_be_bytes();
        let ssrc = u32::from_be_bytes([compound[4], compound[5], compound[6], compound[7]]);
        let (head, body) = compound.split_at(8);
        match &mut self.rtcp {
            Ctx::Cm {
                auth, salt, enc, ..
            } => {
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, u64::from(index));
                let mut out = vec![0u8; compound.len() + OUTPUT_SLACK];
                out[..8].copy_from_slice(head);
                enc.encrypt(&iv, body, &mut out[8..])
                    .map_err(|_| SrtpError::Cipher)?;
                out.truncate(compound.len());
                out.extend_from_slice(&e_index);
                let tag = self.hmac.sha1_hmac(auth, &[&out]);
                out.extend_from_slice(&tag[..Aes128CmSha1_80::HMAC_TAG_LEN]);
                Ok(out)
            }
            Ctx::Gcm128 { salt, enc, .. } => {
                let iv = AeadAes128Gcm::rtcp_iv(*salt, ssrc, index);
                gcm_seal_rtcp(head, body, e_index, |aad, input, out| {
                    enc.encrypt(&iv, aad, input, out).is_ok()
                })
            }
            Ctx::Gcm256 { salt, enc, .. } => {
                let iv = AeadAes256Gcm::rtcp_iv(*salt, ssrc, index);
                gcm_seal_rtcp(head, body, e_index, |aad, input, out| {
                    enc.encrypt(&iv, aad, input, out).is_ok()
                })
            }
        }
    }

    /// The RTCP compound in an encrypted SRTCP packet protected with these keys, and
    /// its SRTCP index.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<(Vec<u8>, u32), SrtpError> {
        let ssrc = srtcp
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(SrtpError::Length)?;
        let index_at = |tag: usize| {
            srtcp
                .len()
                .checked_sub(tag + 4)
                .filter(|at| *at >= 8)
                .ok_or(SrtpError::Length)
        };
        match &mut self.rtcp {
            Ctx::Cm {
                auth, salt, dec, ..
            } => {
                let idx_at = index_at(Aes128CmSha1_80::HMAC_TAG_LEN)?;
                let tag_at = idx_at + 4;
                let tag = self.hmac.sha1_hmac(auth, &[&srtcp[..tag_at]]);
                if tag[..Aes128CmSha1_80::HMAC_TAG_LEN] != srtcp[tag_at..] {
                    return Err(SrtpError::Cipher);
                }
                let e_index = read_u32(&srtcp[idx_at..tag_at]);
                let index = e_index & !SRTCP_ENCRYPTED;
                if e_index & SRTCP_ENCRYPTED == 0 {
                    return Ok((srtcp[..idx_at].to_vec(), index));
                }
                let iv = Aes128CmSha1_80::rtp_iv(*salt, ssrc, u64::from(index));
                let mut out = vec![0u8; idx_at + OUTPUT_SLACK];
                out[..8].copy_from_slice(&srtcp[..8]);
                dec.decrypt(&iv, &srtcp[8..idx_at], &mut out[8..])
                    .map_err(|_| SrtpError::Cipher)?;
                out.truncate(idx_at);
                Ok((out, index))
            }
            Ctx::Gcm128 { salt, dec, .. } => {
                let idx_at = index_at(0)?;
                let e_index = read_u32(&srtcp[idx_at..]);
                let iv = AeadAes128Gcm::rtcp_iv(*salt, ssrc, e_index & !SRTCP_ENCRYPTED);
                gcm_open_rtcp(srtcp, e_index, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
            Ctx::Gcm256 { salt, dec, .. } => {
                let idx_at = index_at(0)?;
                let e_index = read_u32(&srtcp[idx_at..]);
                let iv = AeadAes256Gcm::rtcp_iv(*salt, ssrc, e_index & !SRTCP_ENCRYPTED);
                gcm_open_rtcp(srtcp, e_index, |aads, input, out| {
                    dec.decrypt(&iv, aads, input, out).ok()
                })
            }
        }
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn gcm_open(
    srtp: &[u8],
    header_len: usize,
    open: impl FnOnce(&[&[u8]], &[u8], &mut [u8]) -> Option<usize>,
) -> Result<Vec<u8>, SrtpError> {
    let body = srtp
        .len()
        .checked_sub(header_len + GCM_TAG)
        .ok_or(SrtpError::Length)?;
    let mut out = vec![0u8; header_len + body];
    out[..header_len].copy_from_slice(&srtp[..header_len]);
    let n = open(
        &[&srtp[..header_len]],
        &srtp[header_len..],
        &mut out[header_len..],
    )
    .ok_or(SrtpError::Cipher)?;
    out.truncate(header_len + n);
    Ok(out)
}

/// SRTCP with an AEAD (RFC 7714 §9): the first 8 bytes and the E flag with the index
/// are authenticated, the rest encrypted, then the index appended.
fn gcm_seal_rtcp(
    head: &[u8],
    body: &[u8],
    e_index: [u8; 4],
    seal: impl FnOnce(&[u8], &[u8], &mut [u8]) -> bool,
) -> Result<Vec<u8>, SrtpError> {
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(head);
    aad[8..].copy_from_slice(&e_index);
    let mut out = vec![0u8; 8 + body.len() + GCM_TAG];
    out[..8].copy_from_slice(head);
    if !seal(&aad, body, &mut out[8..]) {
        return Err(SrtpError::Cipher);
    }
    out.extend_from_slice(&e_index);
    Ok(out)
}

fn gcm_open_rtcp(
    srtcp: &[u8],
    e_index: u32,
    open: impl FnOnce(&[&[u8]], &[u8], &mut [u8]) -> Option<usize>,
) -> Result<(Vec<u8>, u32), SrtpError> {
    // Unencrypted SRTCP is not what browsers or str0m send.
    if e_index & SRTCP_ENCRYPTED == 0 {
        return Err(SrtpError::Cipher);
    }
    let idx_at = srtcp.len() - 4;
    let body = idx_at.checked_sub(8 + GCM_TAG).ok_or(SrtpError::Length)?;
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(&srtcp[..8]);
    aad[8..].copy_from_slice(&e_index.to_be_bytes());
    let mut out = vec![0u8; 8 + body];
    out[..8].copy_from_slice(&srtcp[..8]);
    let n = open(&[&aad], &srtcp[8..idx_at], &mut out[8..]).ok_or(SrtpError::Cipher)?;
    out.truncate(8 + n);
    Ok((out, e_index & !SRTCP_ENCRYPTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        str0m::crypto::from_feature_flags()
    }

    #[test]
    fn the_key_derivation_matches_rfc_3711_appendix_b3() {
        // RFC 3711 B.3: master key and salt, and the session keys they give.
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let master = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
        let p = provider();
        let mut key = [0u8; 16];
        derive(p.srtp_provider, &master, &salt, LABEL_RTP_AES, &mut key);
        assert_eq!(key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut s = [0u8; 14];
        derive(p.srtp_provider, &master, &salt, LABEL_RTP_SALT, &mut s);
        assert_eq!(s.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 20];
        derive(p.srtp_provider, &master, &salt, LABEL_RTP_AUTH, &mut auth);
        assert_eq!(
            auth.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    fn keys(profile: SrtpProfile) -> SrtpKeys {
        let len = match profile {
            SrtpProfile::AES128_CM_SHA1_80 => 2 * 16 + 2 * 14,
            SrtpProfile::AEAD_AES_128_GCM => 2 * 16 + 2 * 12,
            _ => 2 * 32 + 2 * 12,
        };
        SrtpKeys {
            material: (0..len).map(|i| (i * 7 + 3) as u8).collect(),
            profile,
            active: false,
        }
    }

    const PROFILES: [SrtpProfile; 3] = [
        SrtpProfile::AES128_CM_SHA1_80,
        SrtpProfile::AEAD_AES_128_GCM,
        SrtpProfile::AEAD_AES_256_GCM,
    ];

    fn header(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut h = vec![0x80, 96];
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&1234u32.to_be_bytes());
        h.extend_from_slice(&ssrc.to_be_bytes());
        h
    }

    #[test]
    fn what_one_side_protects_the_other_reads_with_its_rollover_counter() {
        let p = provider();
        for profile in PROFILES {
            let server = keys(profile);
            let client = SrtpKeys {
                active: true,
                ..server.clone()
            };
            let mut send = Srtp::new(&p, &server, true).unwrap();
            let mut recv = Srtp::new(&p, &client, false).unwrap();
            let payload = b"a forwarded frame";
            // Packet 2^16 + 5: rollover counter 1, sequence number 5.
            let index = (1u64 << 16) | 5;
            let h = header(5, 0xabcd);
            let mut out = [0u8; 128];
            let n = send
                .protect_rtp_into(&h, payload, 0xabcd, index, &mut out)
                .unwrap();
            assert_eq!(n, h.len() + payload.len() + send.rtp_overhead());
            assert_ne!(&out[h.len()..h.len() + payload.len()], payload);
            let plain = recv.unprotect_rtp(&out[..n], h.len(), index).unwrap();
            assert_eq!(&plain[h.len()..], payload, "{profile:?}");
            // The wrong rollover counter does not authenticate.
            assert_eq!(
                recv.unprotect_rtp(&out[..n], h.len(), 5),
                Err(SrtpError::Cipher)
            );
            // Nor does the sender's own receive context (the other half of the keys).
            let mut own = Srtp::new(&p, &server, false).unwrap();
            assert!(own.unprotect_rtp(&out[..n], h.len(), index).is_err());
            // RTCP, with its index.
            let compound = [0x80, 201, 0, 1, 0, 0, 0xab, 0xcd];
            let srtcp = send.protect_rtcp(&compound, 77).unwrap();
            assert_eq!(
                recv.unprotect_rtcp(&srtcp).unwrap(),
                (compound.to_vec(), 77)
            );
        }
    }

    #[test]
    fn short_buffers_short_packets_and_bad_keys_are_errors_not_panics() {
        let p = provider();
        for profile in PROFILES {
            let mut s = Srtp::new(&p, &keys(profile), true).unwrap();
            let h = header(1, 1);
            let mut small = [0u8; 20];
            assert_eq!(
                s.protect_rtp_into(&h, &[0; 30], 1, 1, &mut small),
                Err(SrtpError::Length)
            );
            let mut out = [0u8; 64];
            assert_eq!(
                s.protect_rtp_into(&h[..8], &[0; 4], 1, 1, &mut out),
                Err(SrtpError::Length)
            );
            for junk in [&[][..], &[0x80; 7][..], &[0x80; 12][..], &[0x80; 40][..]] {
                assert!(s.unprotect_rtp(junk, 12, 0).is_err());
                assert!(s.unprotect_rtcp(junk).is_err());
            }
            assert!(s.protect_rtcp(&[0x80; 4], 0).is_err());
        }
        let mut bad = keys(SrtpProfile::AEAD_AES_128_GCM);
        bad.material.pop();
        assert_eq!(Srtp::new(&p, &bad, true).err(), Some(SrtpError::BadKeys));
    }
}
