//! `peer-calls play`: joins a room as a publisher and sends media into it, from RTP
//! arriving on local UDP ports (ffmpeg, GStreamer, …) or from files (IVF with VP8/VP9,
//! Ogg Opus) played in real time.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the command line and the run loop |
//! | `room.rs` | the room URL, joining and publishing, codec check, keepalive, reconnects, leaving |
//! | `codec.rs` | which codec is offered and sent, and whether the server took it |
//! | `rtp_in.rs` | RTP/RTCP on local ports, keyframe requests back to the source as PLI |
//! | `rewrite.rs` | continuous sequence numbers and timestamps across source restarts |
//! | `file_in.rs` | real-time pacing and looping of a file's frames |
//! | `ivf.rs`, `ogg.rs` | the file readers |
//! | `packetize.rs` | VP8/VP9/Opus RTP payloads, keyframe and Opus duration parsing |
//! | `split.rs` | splitting RTP payloads too large for a datagram to the server |
//!
//! The run loop: poll the inputs (each yields renumbered RTP payloads), hand them to the
//! str0m peer, poll the connection (signalling, media, timers), pass keyframe requests
//! back to the inputs, report inputs that stopped, and sleep about a millisecond (less
//! when a file's next frame is due sooner). SIGINT/SIGTERM: `leave`, then exit 0; a
//! second signal exits at once.

use anyhow::anyhow;
mod codec;
mod file_in;
mod ivf;
mod ogg;
mod packetize;
mod rewrite;
mod room;
mod rtp_in;
mod split;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use client::LocalTrack;
use str0m::media::MediaKind;

use codec::{AudioCodec, CodecPlan, VideoCodec};
use file_in::FileInput;
use ivf::{IvfCodec, IvfReader};
use ogg::OggReader;
use packetize::Payloader;
use room::{Publish, Room, RoomEvent, RoomUrl, route_to};
use rtp_in::{RtpInput, RtpUrl};

/// Options of `peer-calls play`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PlayArgs {
    /// The room, as its link is opened in a browser: http://HOST:PORT/call/ROOM
    #[arg(long, value_name = "URL")]
    room: String,

    /// The name other members see.
    #[arg(long, default_value = "play")]
    nickname: String,

    /// Video to send: rtp://IP:PORT to receive RTP there (RTCP on PORT+1, or
    /// ?rtcpport=N), or an IVF file (VP8 or VP9).
    #[arg(long, value_name = "rtp://IP:PORT | FILE.ivf")]
    video: Option<String>,

    /// Audio to send: rtp://IP:PORT to receive RTP there (RTCP on PORT+1, or
    /// ?rtcpport=N), or an Ogg Opus file (.ogg, .opus).
    #[arg(long, value_name = "rtp://IP:PORT | FILE.ogg")]
    audio: Option<String>,

    /// The codec of the video: what arrives over RTP is sent as this codec. For files
    /// it is read from the file. [default: vp8]
    #[arg(long, value_enum)]
    video_codec: Option<VideoCodec>,

    /// fmtp parameters that pick the video codec's variant, for example
    /// "profile-level-id=42e01f;packetization-mode=1" for H264 (the default for H264)
    /// or "profile-id=2" for VP9.
    #[arg(long, value_name = "FMTP")]
    video_fmtp: Option<String>,

    /// The codec of the audio.
    #[arg(long, value_enum, default_value = "opus")]
    audio_codec: AudioCodec,

    /// fmtp parameters of the audio codec.
    #[arg(long, value_name = "FMTP")]
    audio_fmtp: Option<String>,

    /// Where keyframe requests (RTCP PLI) for the video source go. By default: the
    /// address the source's RTCP comes from, else its RTP address with port + 1.
    #[arg(long, value_name = "IP:PORT")]
    video_rtcp: Option<SocketAddr>,

    /// Where RTCP for the audio source goes (as --video-rtcp).
    #[arg(long, value_name = "IP:PORT")]
    audio_rtcp: Option<SocketAddr>,

    /// Play files again from the start when they end (timestamps carry on).
    #[arg(long = "loop")]
    looped: bool,

    /// Seconds without RTP after which play says the input stopped (it stays in the
    /// room and goes on when the input comes back).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    input_timeout: u64,

    /// Local IP for media to the server. Defaults to the address that routes to it.
    #[arg(long)]
    media_ip: Option<IpAddr>,
}

/// A packet of an input, numbered for the room's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packet {
    /// Extended sequence number, continuous for the input.
    pub(crate) seq: u64,
    /// RTP timestamp, continuous for the input.
    pub(crate) time: u32,
    /// The wallclock of `time` (for sender reports, so receivers can sync audio and video).
    pub(crate) wallclock: Instant,
    /// The marker bit.
    pub(crate) marker: bool,
    /// The payload.
    pub(crate) payload: Vec<u8>,
}

#[derive(Debug)]
enum Source {
    Rtp(RtpInput),
    File(FileInput),
}

/// An input and what the user has been told about it.
#[derive(Debug)]
struct Input {
    kind: MediaKind,
    source: Source,
    /// Media last came at (or waiting began at).
    last_media: Instant,
    /// The user was told it stopped.
    told_stopped: bool,
}

impl Input {
    /// Takes what the input has for the room into `out` (only when `live`), and tells
    /// the user when it stops and comes back.
    fn poll(
        &mut self,
        now: Instant,
        live: bool,
        timeout: Duration,
        out: &mut Vec<Packet>,
    ) -> anyhow::Result<()> {
        match &mut self.source {
            Source::Rtp(r) => {
                let news = r.poll(now, live, out);
                if news.bye {
                    if !self.told_stopped {
                        tracing::info!(
                            "{}: the source said BYE (it stopped); still in the room, waiting for it to come back…",
                            r.name
                        );
                        self.told_stopped = true;
                    }
                } else if news.packets > 0 {
                    if self.told_stopped {
                        tracing::info!("RTP on {} again", r.rtp_addr());
                        self.told_stopped = false;
                    }
                    self.last_media = now;
                } else if !self.told_stopped && now.duration_since(self.last_media) >= timeout {
                    tracing::warn!(
                        "no RTP on {} for {} s; still in the room, waiting…",
                        r.rtp_addr(),
                        timeout.as_secs()
                    );
                    self.told_stopped = true;
                }
            }
            Source::File(f) => {
                if live {
                    f.poll(now, out)?;
                }
                if f.ended() && !self.told_stopped {
                    tracing::info!("{} ended; still in the room (Ctrl-C to leave)", f.name);
                    self.told_stopped = true;
                }
            }
        }
        Ok(())
    }

    /// Someone in the room needs a keyframe.
    fn request_keyframe(&mut self) {
        match &mut self.source {
            Source::Rtp(r) => match r.request_keyframe() {
                Some(to) => tracing::debug!("keyframe requested: PLI to {to}"),
                None => tracing::debug!("keyframe requested, but no source yet"),
            },
            Source::File(f) => {
                tracing::debug!("keyframe requested: {} sends its next one in time", f.name)
            }
        }
    }
}

/// Runs `play` until SIGINT/SIGTERM.
pub(crate) fn run(args: PlayArgs) -> anyhow::Result<()> {
    if args.video.is_none() && args.audio.is_none() {
        return Err(anyhow!(
            "nothing to play: give --video and/or --audio (rtp://IP:PORT or a file)"
        ));
    }
    let url = RoomUrl::parse(&args.room)?;
    let ssrc = random_u32();
    // Inputs first: a taken port or a bad file fails before the room sees anything.
    check_port_clash(&args)?;
    let mut inputs = Vec::new();
    let mut video_codec = None;
    if let Some(spec) = &args.video {
        let (input, codec) = open_video(spec, &args, ssrc)?;
        inputs.push(input);
        video_codec = Some(codec);
    }
    if let Some(spec) = &args.audio {
        inputs.push(open_audio(spec, &args, ssrc)?);
    }
    let plan = CodecPlan::new(
        video_codec.map(|c| (c, args.video_fmtp.as_deref())),
        args.audio
            .as_ref()
            .map(|_| (args.audio_codec, args.audio_fmtp.as_deref())),
    )?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal, once the first has set the flag, exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| anyhow!("cannot install signal handlers: {e}"))?;
    }

    let server = url.resolve()?;
    let media_ip = match args.media_ip {
        Some(ip) => ip,
        None => route_to(server)?,
    };
    let stream = format!("play-{:08x}", random_u32());
    let tracks: Vec<LocalTrack> = inputs
        .iter()
        .map(|i| LocalTrack {
            stream_id: stream.clone(),
            track_id: format!("{stream}-{}", kind_name(i.kind)),
            kind: i.kind,
        })
        .collect();
    let publish = Publish {
        url,
        server,
        nickname: args.nickname.clone(),
        media_ip,
        plan,
        tracks,
    };
    let Some(mut room) = Room::join(publish, &stop)? else {
        tracing::info!("stopped before joining; left the room");
        return Ok(());
    };
    let start = Instant::now();
    for input in &mut inputs {
        input.last_media = start;
        match &mut input.source {
            Source::Rtp(r) => {
                tracing::info!(
                    "live: waiting for {} RTP on {}",
                    kind_name(input.kind),
                    r.rtp_addr()
                )
            }
            Source::File(f) => {
                f.begin(start);
                tracing::info!(
                    "live: playing {}{}",
                    f.name,
                    if args.looped { " in a loop" } else { "" }
                );
            }
        }
    }

    let input_timeout = Duration::from_secs(args.input_timeout.max(1));
    let mut packets = Vec::new();
    let mut events = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            tracing::info!("leaving the room");
            room.leave();
            tracing::info!("left the room");
            return Ok(());
        }
        let now = Instant::now();
        let live = room.live();
        for input in &mut inputs {
            input.poll(now, live, input_timeout, &mut packets)?;
            for p in packets.drain(..) {
                room.send(input.kind, p);
            }
        }
        room.poll(&stop, &mut events)?;
        for e in events.drain(..) {
            let RoomEvent::KeyframeRequest(kind) = e;
            for input in inputs.iter_mut().filter(|i| i.kind == kind) {
                input.request_keyframe();
            }
        }
        let mut wake = Instant::now() + Duration::from_millis(1);
        for input in &inputs {
            if let Source::File(f) = &input.source
                && let Some(due) = f.next_due()
            {
                wake = wake.min(due);
            }
        }
        let pause = wake.saturating_duration_since(Instant::now());
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// Two RTP inputs where one's RTCP port is the other's RTP port cannot both listen.
fn check_port_clash(args: &PlayArgs) -> anyhow::Result<()> {
    let parse = |s: &Option<String>| s.as_deref().and_then(RtpUrl::parse).and_then(Result::ok);
    let (Some(v), Some(a)) = (parse(&args.video), parse(&args.audio)) else {
        return Ok(());
    };
    let clash =
        |x: &RtpUrl, y: &RtpUrl| [x.rtp, x.rtcp].iter().any(|p| *p == y.rtp || *p == y.rtcp);
    if clash(&v, &a) {
        return Err(anyhow!(
            "the video input ({} and RTCP {}) and the audio input ({} and RTCP {}) share a port: \
             each RTP input also takes its port + 1 for RTCP; use ports 2 apart, for example \
             5004 for video and 5006 for audio",
            v.rtp,
            v.rtcp,
            a.rtp,
            a.rtcp
        ));
    }
    Ok(())
}

fn open_video(spec: &str, args: &PlayArgs, ssrc: u32) -> anyhow::Result<(Input, VideoCodec)> {
    if let Some(url) = RtpUrl::parse(spec) {
        let url = url?;
        let codec = args.video_codec.unwrap_or(VideoCodec::Vp8);
        let input = RtpInput::open(
            format!("video {spec}"),
            url,
            args.video_rtcp,
            codec.codec(),
            90_000,
            ssrc,
        )?;
        return Ok((new_input(MediaKind::Video, Source::Rtp(input)), codec));
    }
    let path = file_path(spec);
    let reader = IvfReader::open(&path)?;
    let (codec, payloader) = match reader.codec {
        IvfCodec::Vp8 => (VideoCodec::Vp8, Payloader::vp8(random_u32() as u16)),
        IvfCodec::Vp9 => (VideoCodec::Vp9, Payloader::vp9(random_u32() as u16)),
    };
    if let Some(asked) = args.video_codec
        && asked != codec
    {
        return Err(anyhow!(
            "{} holds {codec:?} video, not {asked:?}: leave out --video-codec for files",
            path.display()
        ));
    }
    let file = FileInput::new(
        path.display().to_string(),
        Box::new(reader),
        payloader,
        args.looped,
        random_u32(),
    );
    Ok((new_input(MediaKind::Video, Source::File(file)), codec))
}

fn open_audio(spec: &str, args: &PlayArgs, ssrc: u32) -> anyhow::Result<Input> {
    if let Some(url) = RtpUrl::parse(spec) {
        let url = url?;
        let clock_rate = match args.audio_codec {
            AudioCodec::Opus => 48_000,
            AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
        };
        let input = RtpInput::open(
            format!("audio {spec}"),
            url,
            args.audio_rtcp,
            args.audio_codec.codec(),
            clock_rate,
            ssrc,
        )?;
        return Ok(new_input(MediaKind::Audio, Source::Rtp(input)));
    }
    let path = file_path(spec);
    if args.audio_codec != AudioCodec::Opus {
        return Err(anyhow!(
            "{}: files are played as Opus (Ogg Opus); --audio-codec {:?} is for RTP input",
            path.display(),
            args.audio_codec
        ));
    }
    let reader = OggReader::open(&path)?;
    tracing::debug!(channels = reader.channels, "{}", path.display());
    let file = FileInput::new(
        path.display().to_string(),
        Box::new(reader),
        Payloader::opus(),
        args.looped,
        random_u32(),
    );
    Ok(new_input(MediaKind::Audio, Source::File(file)))
}

fn new_input(kind: MediaKind, source: Source) -> Input {
    Input {
        kind,
        source,
        last_media: Instant::now(),
        told_stopped: false,
    }
}

/// A file argument: a path, or a `file://` URL.
fn file_path(spec: &str) -> PathBuf {
    PathBuf::from(spec.strip_prefix("file://").unwrap_or(spec))
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// A random number (not for cryptography): SSRCs, ids, first timestamps.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}
