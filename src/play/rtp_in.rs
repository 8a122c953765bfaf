//! RTP arriving on a local UDP port (from ffmpeg, GStreamer, …), and its RTCP port.
//!
//! - RTP on `rtp://IP:PORT`; its RTCP on PORT+1 (or `?rtcpport=N`), where senders send
//!   their sender reports and `BYE`.
//! - Keyframe requests go back to the source as RTCP PLI (RFC 4585 §6.3.1), sent from
//!   our RTCP port to, in this order: the address given with `--video-rtcp`/`--audio-rtcp`,
//!   the address the source's RTCP came from, or the source's RTP address with port + 1
//!   (where ffmpeg and GStreamer's `rtpbin` listen).
//! - Packets are renumbered by [`Rewriter`]; their SSRC and payload type are dropped
//!   (the peer sends on its own negotiated stream).

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;

use anyhow::anyhow;
use str0m::format::Codec;

use super::Packet;
use super::packetize::MAX_PAYLOAD;
use super::rewrite::Rewriter;
use super::split::split;

/// Largest RTP payload forwarded as it is. A datagram to the server holds at most 1500
/// bytes; str0m adds 44 (header, its extensions, the SRTP tag), a retransmission 2 more,
/// so 1454 would do: this leaves room for more extensions. Larger video payloads are
/// split (see `split.rs`).
pub(crate) const MAX_RTP_PAYLOAD: usize = 1400;

/// Where to listen: `rtp://IP:PORT[?rtcpport=N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtpUrl {
    /// The RTP address to bind.
    pub(crate) rtp: SocketAddr,
    /// The RTCP address to bind.
    pub(crate) rtcp: SocketAddr,
}

impl RtpUrl {
    /// Parses `rtp://IP:PORT[?rtcpport=N]`; `None` if it is not an `rtp://` URL at all.
    pub(crate) fn parse(s: &str) -> Option<anyhow::Result<Self>> {
        let rest = s.strip_prefix("rtp://")?;
        let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
        let addr = addr.trim_end_matches('/');
        let rtp: SocketAddr = match addr.parse() {
            Ok(a) => a,
            Err(_) => {
                return Some(Err(anyhow!(
                    "{s}: expected rtp://IP:PORT with a numeric IP, for example rtp://127.0.0.1:5004"
                )));
            }
        };
        if rtp.port() == 0 {
            return Some(Err(anyhow!("{s}: the port must not be 0")));
        }
        let mut rtcp_port = rtp.port().checked_add(1);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("rtcpport", v)) => match v.parse::<u16>() {
                    Ok(p) if p != 0 => rtcp_port = Some(p),
                    _ => return Some(Err(anyhow!("{s}: rtcpport must be a port number"))),
                },
                _ => {
                    return Some(Err(anyhow!(
                        "{s}: unknown option {pair:?} (known: rtcpport=N)"
                    )));
                }
            }
        }
        let Some(rtcp_port) = rtcp_port else {
            return Some(Err(anyhow!(
                "{s}: no room for the RTCP port; give ?rtcpport=N"
            )));
        };
        if rtcp_port == rtp.port() {
            return Some(Err(anyhow!(
                "{s}: the RTCP port must differ from the RTP port"
            )));
        }
        Some(Ok(Self {
            rtp,
            rtcp: SocketAddr::new(rtp.ip(), rtcp_port),
        }))
    }
}

/// A parsed RTP packet, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpView<'a> {
    pub(crate) marker: bool,
    pub(crate) payload_type: u8,
    pub(crate) seq: u16,
    pub(crate) time: u32,
    pub(crate) ssrc: u32,
    pub(crate) payload: &'a [u8],
}

/// Parses an RTP packet (RFC 3550 §5.1): CSRCs, header extension and padding are
/// skipped. `None` for anything that is not RTP version 2 or does not add up.
pub(crate) fn parse_rtp(b: &[u8]) -> Option<RtpView<'_>> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let csrcs = usize::from(b[0] & 0x0f);
    let mut at = 12 + 4 * csrcs;
    if b[0] & 0x10 != 0 {
        let ext = b.get(at..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        let pad = usize::from(*b.last()?);
        if pad == 0 {
            return None;
        }
        end = end.checked_sub(pad)?;
    }
    let payload = b.get(at..end)?;
    Some(RtpView {
        marker: b[1] & 0x80 != 0,
        payload_type: b[1] & 0x7f,
        seq: u16::from_be_bytes([b[2], b[3]]),
        time: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload,
    })
}

/// Whether a datagram on the RTP port is RTCP (multiplexed, RFC 5761 §4).
fn is_rtcp(b: &[u8]) -> bool {
    b.len() >= 8 && b[0] >> 6 == 2 && (192..=223).contains(&b[1])
}

/// What an RTCP compound packet from the source says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RtcpNews {
    /// SSRCs that sent a sender report.
    pub(crate) senders: Vec<u32>,
    /// SSRCs that said `BYE`.
    pub(crate) byes: Vec<u32>,
}

/// Reads the sender reports and `BYE`s of an RTCP compound packet; stops at the first
/// packet that does not add up.
pub(crate) fn parse_rtcp(mut b: &[u8]) -> RtcpNews {
    let mut news = RtcpNews::default();
    while b.len() >= 4 && b[0] >> 6 == 2 {
        let len = 4 * (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1);
        let Some(packet) = b.get(..len) else {
            break;
        };
        let count = usize::from(packet[0] & 0x1f);
        match packet[1] {
            200 if packet.len() >= 8 => {
                news.senders.push(u32::from_be_bytes([
                    packet[4], packet[5], packet[6], packet[7],
                ]));
            }
            203 => {
                for i in 0..count {
                    let Some(s) = packet.get(4 + 4 * i..8 + 4 * i) else {
                        break;
                    };
                    news.byes.push(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
                }
            }
            _ => {}
        }
        b = &b[len..];
    }
    news
}

/// An RTCP PLI (RFC 4585 §6.3.1): V=2, FMT=1, PT=206, length 2.
pub(crate) fn pli(sender_ssrc: u32, media_ssrc: u32) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0] = 0x81;
    p[1] = 206;
    p[3] = 2;
    p[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    p[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    p
}

/// Binds a UDP socket for an input, with a message that says what went wrong.
pub(crate) fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr).map_err(|e| match e.kind() {
        ErrorKind::AddrInUse => anyhow!(
            "UDP port {} is taken ({what}): another program is using it; choose another port",
            addr.port()
        ),
        ErrorKind::AddrNotAvailable => anyhow!(
            "cannot listen on {} ({what}): {} is not an address of this machine",
            addr,
            addr.ip()
        ),
        ErrorKind::PermissionDenied => anyhow!(
            "cannot listen on UDP port {} ({what}): permission denied (ports below 1024 need privileges)",
            addr.port()
        ),
        _ => anyhow!("cannot listen on {addr} ({what}): {e}"),
    })?;
    socket
        .set_nonblocking(true)
        .map_err(|e| anyhow!("cannot listen on {addr}: {e}"))?;
    Ok(socket)
}

/// What happened on an input during one poll, for the messages the user sees.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RtpNews {
    /// RTP packets taken.
    pub(crate) packets: usize,
    /// The source said `BYE`.
    pub(crate) bye: bool,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct RtpInput {
    /// The URL, for messages.
    pub(crate) name: String,
    url: RtpUrl,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// Where PLI goes when given on the command line.
    pli_to: Option<SocketAddr>,
    /// The last address RTP came from.
    source: Option<SocketAddr>,
    /// The address the source's RTCP came from.
    source_rtcp: Option<SocketAddr>,
    /// The payload type the source sends (the first one seen).
    payload_type: Option<u8>,
    rewriter: Rewriter,
    /// The codec payloads are split as, when too large.
    codec: Codec,
    sender_ssrc: u32,
    warned_pt: bool,
    warned_size: bool,
    buf: Vec<u8>,
}

impl RtpInput {
    /// Binds the RTP and RTCP ports of `url`.
    pub(crate) fn open(
        name: String,
        url: RtpUrl,
        pli_to: Option<SocketAddr>,
        codec: Codec,
        clock_rate: u32,
        sender_ssrc: u32,
    ) -> anyhow::Result<Self> {
        let rtp = bind(url.rtp, &format!("RTP of {name}"))?;
        let rtcp = bind(
            url.rtcp,
            &format!("RTCP of {name}; set another with ?rtcpport=N"),
        )?;
        Ok(Self {
            name,
            url,
            rtp,
            rtcp,
            pli_to,
            source: None,
            source_rtcp: None,
            payload_type: None,
            rewriter: Rewriter::new(clock_rate),
            codec,
            sender_ssrc,
            warned_pt: false,
            warned_size: false,
            buf: vec![0; 65_536],
        })
    }

    /// The address RTP is received on.
    pub(crate) fn rtp_addr(&self) -> SocketAddr {
        self.url.rtp
    }

    /// Reads everything that has arrived; RTP goes to `out` (renumbered) when `live`,
    /// and is dropped otherwise.
    pub(crate) fn poll(&mut self, now: Instant, live: bool, out: &mut Vec<Packet>) -> RtpNews {
        let mut news = RtpNews::default();
        loop {
            let (n, from) = match self.rtp.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors and the like: nothing to do but go on.
                    tracing::debug!(input = %self.name, "RTP socket: {e}");
                    break;
                }
            };
            let data = &self.buf[..n];
            if is_rtcp(data) {
                let rtcp = parse_rtcp(data);
                Self::on_rtcp(
                    &mut self.source_rtcp,
                    &self.rewriter,
                    &rtcp,
                    from,
                    &mut news,
                );
                continue;
            }
            let Some(rtp) = parse_rtp(data) else {
                continue;
            };
            match self.payload_type {
                None => {
                    tracing::info!(
                        "{}: RTP from {from}: payload type {}, SSRC {:#010x}",
                        self.name,
                        rtp.payload_type,
                        rtp.ssrc
                    );
                    self.payload_type = Some(rtp.payload_type);
                }
                Some(pt) if pt != rtp.payload_type => {
                    if !self.warned_pt {
                        tracing::warn!(
                            "{}: ignoring payload type {} (the source sends {pt}: one codec per input)",
                            self.name,
                            rtp.payload_type
                        );
                        self.warned_pt = true;
                    }
                    continue;
                }
                Some(_) => {}
            }
            self.source = Some(from);
            news.packets += 1;
            let parts = if rtp.payload.len() > MAX_RTP_PAYLOAD {
                let parts = split(self.codec, rtp.payload, rtp.marker, MAX_PAYLOAD);
                if !self.warned_size {
                    match parts {
                        Some(_) => tracing::info!(
                            "{}: splitting RTP payloads of {} bytes to fit datagrams to the \
                             server (ffmpeg's -pkt_size 1200 avoids this)",
                            self.name,
                            rtp.payload.len()
                        ),
                        None => tracing::warn!(
                            "{}: dropping RTP payloads of {} bytes (at most {MAX_RTP_PAYLOAD} fit \
                             a datagram to the server); make the sender use smaller packets, for \
                             example ffmpeg's -pkt_size 1200",
                            self.name,
                            rtp.payload.len()
                        ),
                    }
                    self.warned_size = true;
                }
                match parts {
                    Some(p) => Some(p),
                    None => continue,
                }
            } else {
                None
            };
            if !live {
                continue;
            }
            let Some(w) = self.rewriter.rewrite(rtp.ssrc, rtp.seq, rtp.time, now) else {
                continue;
            };
            if w.restarted {
                tracing::info!(
                    "{}: the source started over (SSRC {:#010x}); the room's stream carries on",
                    self.name,
                    rtp.ssrc
                );
            }
            let Some(parts) = parts else {
                out.push(Packet {
                    seq: w.seq,
                    time: w.time,
                    wallclock: w.wallclock,
                    marker: rtp.marker,
                    payload: rtp.payload.to_vec(),
                });
                continue;
            };
            // The parts need consecutive numbers: only the newest packet can be split.
            let mut seqs = vec![w.seq];
            for _ in 1..parts.len() {
                let Some(next) = self.rewriter.insert_after(*seqs.last().expect("one")) else {
                    break;
                };
                seqs.push(next);
            }
            if seqs.len() < parts.len() {
                tracing::debug!(input = %self.name, "a late oversized packet dropped");
                continue;
            }
            for (part, seq) in parts.into_iter().zip(seqs) {
                out.push(Packet {
                    seq,
                    time: w.time,
                    wallclock: w.wallclock,
                    marker: part.marker,
                    payload: part.data,
                });
            }
        }
        loop {
            let (n, from) = match self.rtcp.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(input = %self.name, "RTCP socket: {e}");
                    break;
                }
            };
            let rtcp = parse_rtcp(&self.buf[..n]);
            Self::on_rtcp(
                &mut self.source_rtcp,
                &self.rewriter,
                &rtcp,
                from,
                &mut news,
            );
        }
        news
    }

    fn on_rtcp(
        source_rtcp: &mut Option<SocketAddr>,
        rewriter: &Rewriter,
        rtcp: &RtcpNews,
        from: SocketAddr,
        news: &mut RtpNews,
    ) {
        let ours = |ssrc: &u32| rewriter.source_ssrc().is_none_or(|s| s == *ssrc);
        if rtcp.senders.iter().any(ours) {
            *source_rtcp = Some(from);
        }
        if rtcp.byes.iter().any(ours) {
            news.bye = true;
        }
    }

    /// Asks the source for a keyframe: a PLI to its RTCP address. Returns where it went,
    /// or `None` when no source has been heard yet.
    pub(crate) fn request_keyframe(&mut self) -> Option<SocketAddr> {
        let media_ssrc = self.rewriter.source_ssrc()?;
        let to = self.pli_to.or(self.source_rtcp).or_else(|| {
            self.source
                .and_then(|s| Some(SocketAddr::new(s.ip(), s.port().checked_add(1)?)))
        })?;
        let to = unspecified_to_loopback(to);
        match self.rtcp.send_to(&pli(self.sender_ssrc, media_ssrc), to) {
            Ok(_) => Some(to),
            Err(e) => {
                tracing::debug!(input = %self.name, "PLI to {to}: {e}");
                None
            }
        }
    }
}

/// `0.0.0.0:p` (a sender bound to any address) is reached on loopback.
fn unspecified_to_loopback(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        let ip: IpAddr = if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, a.port())
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rtp_urls() {
        let u = RtpUrl::parse("rtp://127.0.0.1:5004").unwrap().unwrap();
        assert_eq!(u.rtp, "127.0.0.1:5004".parse().unwrap());
        assert_eq!(u.rtcp, "127.0.0.1:5005".parse().unwrap());
        let u = RtpUrl::parse("rtp://0.0.0.0:6000?rtcpport=7000")
            .unwrap()
            .unwrap();
        assert_eq!(u.rtcp, "0.0.0.0:7000".parse().unwrap());
        let u = RtpUrl::parse("rtp://[::1]:5004/").unwrap().unwrap();
        assert_eq!(u.rtcp, "[::1]:5005".parse().unwrap());
        assert!(RtpUrl::parse("video.ivf").is_none());
        for bad in [
            "rtp://localhost:5004",
            "rtp://127.0.0.1",
            "rtp://127.0.0.1:0",
            "rtp://127.0.0.1:5004?pkt_size=1200",
            "rtp://127.0.0.1:65535",
            "rtp://127.0.0.1:5004?rtcpport=5004",
        ] {
            assert!(RtpUrl::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_rtp_with_csrcs_extension_and_padding() {
        let mut p = vec![
            0xb1, 0xe0, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef,
        ];
        p.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one-byte extension
        p.extend_from_slice(&[9, 8, 7]);
        p.extend_from_slice(&[0, 0, 3]); // padding
        let v = parse_rtp(&p).unwrap();
        assert!(v.marker);
        assert_eq!(v.payload_type, 96);
        assert_eq!(v.seq, 0x1234);
        assert_eq!(v.time, 0x1000);
        assert_eq!(v.ssrc, 0xdeadbeef);
        assert_eq!(v.payload, [9, 8, 7]);
        assert!(parse_rtp(&p[..11]).is_none());
        assert!(parse_rtp(&p[..18]).is_none(), "extension past the end");
        let mut bad_pad = p.clone();
        *bad_pad.last_mut().unwrap() = 200;
        assert!(parse_rtp(&bad_pad).is_none());
        assert!(parse_rtp(&[0x40; 20]).is_none(), "version 1");
    }

    #[test]
    fn reads_sender_reports_and_byes_and_writes_pli() {
        let mut sr = vec![0x80, 200, 0, 6];
        sr.extend_from_slice(&0x44c8cb71u32.to_be_bytes());
        sr.extend_from_slice(&[0; 20]);
        let bye = [0x81, 203, 0, 1, 0x44, 0xc8, 0xcb, 0x71];
        let compound = [sr.as_slice(), &bye].concat();
        let news = parse_rtcp(&compound);
        assert_eq!(news.senders, [0x44c8cb71]);
        assert_eq!(news.byes, [0x44c8cb71]);
        // A length running past the end stops the walk.
        assert_eq!(
            parse_rtcp(&[0x80, 200, 0, 60, 1, 2, 3, 4]),
            RtcpNews::default()
        );
        assert!(is_rtcp(&compound));
        assert_eq!(
            pli(1, 0x01020304),
            [0x81, 206, 0, 2, 0, 0, 0, 1, 1, 2, 3, 4]
        );
    }

    #[test]
    fn a_taken_port_is_named() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = bind(taken.local_addr().unwrap(), "RTP of x").unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "UDP port {} is taken",
                taken.local_addr().unwrap().port()
            )),
            "{err}"
        );
    }
}
