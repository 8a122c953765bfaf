//! What one shard's own code and str0m cost per forwarded packet, without the kernel:
//! a meeting of real str0m peers (the project's client) on one `ShardCore`, joined by
//! the tests' in-memory network, in virtual time. Only the time inside the shard's
//! handlers counts; the clients' encryption and checks are outside it.
//!
//! The system benchmark (`peer-calls bench`) measures the whole server with sockets
//! on a shared VM, where one run differs from the next by ±15%. This one leaves out
//! the kernel and the scheduler, so an engine change shows here first, and under
//! callgrind it gives instruction counts that repeat exactly (docs/benchmarks.md):
//!
//! ```sh
//! cargo bench -p engine --bench forwarding -- --rooms 4 --people 5
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*metered_shard_call*' \
//!     target/release/deps/forwarding-<hash> --rooms 1 --people 5 --seconds 2 --rounds 1
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use str0m::format::Codec;
use str0m::media::MediaKind;
use testkit::{Net, TestClient, audio, video};

type Harness = Net<TestClient>;

/// The generator's traffic (bench/src/traffic.rs defaults): 1500 kbit/s of VP8 at
/// 30 fps as frames of 6 packets, a keyframe of 6 frames' worth every 2.5 s, Opus at
/// 50 packets a second.
const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);
const PACKETS_PER_FRAME: usize = 6;
const VIDEO_PACKET: usize = 1042;
const KEYFRAME_FACTOR: usize = 6;
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(2500);
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const AUDIO_PACKET: usize = 110;

/// The system allocator, counting allocations (and reallocations) so the benchmark can
/// report them per forwarded packet.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

struct Options {
    rooms: usize,
    people: usize,
    seconds: u64,
    rounds: usize,
}

fn options() -> Options {
    let mut o = Options {
        rooms: 4,
        people: 5,
        seconds: 2,
        rounds: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--rooms" => o.rooms = value("--rooms") as usize,
            "--people" => o.people = value("--people") as usize,
            "--seconds" => o.seconds = value("--seconds"),
            "--rounds" => o.rounds = value("--rounds") as usize,
            // `cargo bench` passes --bench; filters and the like mean nothing here.
            _ => {}
        }
    }
    assert!(o.rooms > 0 && o.people > 1 && o.seconds > 0 && o.rounds > 0);
    o
}

struct Publisher {
    client: usize,
    name: String,
    video_track: String,
    audio_track: String,
    next_frame: Duration,
    next_audio: Duration,
    next_keyframe: Duration,
    requests_answered: usize,
    frames: u32,
    audio: u32,
    sent: u64,
}

/// Where a video packet stands in its frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The first packet of a keyframe.
    Key,
    /// The first packet of another frame.
    Delta,
    /// Any later packet of a frame (and audio).
    Continues,
}

impl Publisher {
    /// Sends one packet on its video or audio track, stamped with its running count
    /// after two bytes of VP8 header: the payload descriptor (S=1 on a frame's first
    /// packet) and the frame tag (P=0 on a keyframe's), as a browser's packetizer
    /// writes them, so subscribers start at a keyframe as they would in a call.
    fn send(&mut self, h: &mut Harness, video: bool, frame: Frame, payload: &mut [u8]) {
        payload[0] = if frame == Frame::Continues {
            0x00
        } else {
            0x10
        };
        payload[1] = if frame == Frame::Key { 0x00 } else { 0x01 };
        payload[2..10].copy_from_slice(&self.sent.to_be_bytes());
        let (track, codec, time) = if video {
            (&self.video_track, Codec::Vp8, self.frames)
        } else {
            (&self.audio_track, Codec::Opus, self.audio)
        };
        h.send(self.client, &self.name, track, codec, time, payload);
        self.sent += 1;
    }
}

fn main() {
    let o = options();
    let mut h = Harness::new(1);
    h.meter.allocation_counter = Some(allocations);
    let mut rooms: Vec<Vec<usize>> = Vec::new();
    for r in 0..o.rooms {
        let room = (0..o.people)
            .map(|p| {
                let name = format!("r{r}p{p}");
                h.join(0, &[video(&name), audio(&name)])
            })
            .collect();
        rooms.push(room);
    }
    let peers = o.rooms * o.people;
    assert!(
        h.run_until(Duration::from_secs(10), |h| h.all_connected()
            && h.published.len() == 2 * peers),
        "every peer connects and publishes"
    );
    for room in &rooms {
        for &me in room {
            let tracks: Vec<_> = room
                .iter()
                .filter(|&&other| other != me)
                .flat_map(|&other| {
                    [
                        h.track(other, MediaKind::Video),
                        h.track(other, MediaKind::Audio),
                    ]
                })
                .collect();
            h.subscribe(me, &tracks);
        }
    }
    let want = 2 * (o.people - 1);
    assert!(
        h.run_until(Duration::from_secs(10), |h| h
            .clients
            .iter()
            .all(|c| c.subscribed.len() == want)),
        "every peer subscribes to the rest of its room"
    );

    // Publishers start at phases spread over one frame, as independent senders do.
    let start = h.now;
    let mut publishers: Vec<Publisher> = (0..peers)
        .map(|i| {
            let phase = FRAME_INTERVAL * i as u32 / peers as u32;
            let name = format!("r{}p{}", i / o.people, i % o.people);
            Publisher {
                client: i,
                video_track: format!("{name}-video"),
                audio_track: format!("{name}-audio"),
                name,
                next_frame: phase,
                next_audio: phase,
                // The first frame is a keyframe, and so is the next one after a request.
                next_keyframe: phase,
                requests_answered: 0,
                frames: 0,
                audio: 0,
                sent: 0,
            }
        })
        .collect();
    let mut payload = vec![0u8; VIDEO_PACKET];
    let mut drive = |h: &mut Harness, publishers: &mut [Publisher], until: Duration| loop {
        let Some(due) = publishers
            .iter()
            .map(|p| p.next_frame.min(p.next_audio))
            .min()
            .filter(|d| *d < until)
        else {
            while h.now < start + until {
                let left = start + until - h.now;
                h.step(left);
            }
            return;
        };
        while h.now < start + due {
            let left = start + due - h.now;
            h.step(left);
        }
        let elapsed = h.now - start;
        for p in publishers.iter_mut() {
            if p.next_frame <= elapsed {
                let requests = h.clients[p.client].keyframe_requests;
                let keyframe = p.next_keyframe <= elapsed || requests > p.requests_answered;
                if keyframe {
                    p.next_keyframe = elapsed + KEYFRAME_INTERVAL;
                    p.requests_answered = requests;
                }
                let n = PACKETS_PER_FRAME * if keyframe { KEYFRAME_FACTOR } else { 1 };
                for i in 0..n {
                    let frame = match (i, keyframe) {
                        (0, true) => Frame::Key,
                        (0, false) => Frame::Delta,
                        _ => Frame::Continues,
                    };
                    p.send(h, true, frame, &mut payload);
                }
                p.frames += 1;
                p.next_frame += FRAME_INTERVAL;
            }
            if p.next_audio <= elapsed {
                p.send(h, false, Frame::Continues, &mut payload[..AUDIO_PACKET]);
                p.audio += 1;
                p.next_audio += AUDIO_INTERVAL;
            }
        }
    };

    // Warm-up: one second, so every session is past its start-up (first reports,
    // keyframe requests) before anything is measured.
    let mut until = Duration::from_secs(1);
    drive(&mut h, &mut publishers, until);
    let mut results = Vec::new();
    let mut delivered_total = 0;
    let mut allocations_per_packet = Vec::new();
    for round in 0..o.rounds {
        for c in &mut h.clients {
            delivered_total += c.received.len();
            c.received.clear();
        }
        let sent_before: u64 = publishers.iter().map(|p| p.sent).sum();
        h.meter.busy = Duration::ZERO;
        h.meter.allocations = 0;
        h.meter.on = true;
        until += Duration::from_secs(o.seconds);
        drive(&mut h, &mut publishers, until);
        h.meter.on = false;
        let sent = publishers.iter().map(|p| p.sent).sum::<u64>() - sent_before;
        let delivered: usize = h.clients.iter().map(|c| c.received.len()).sum();
        let per_packet = h.meter.busy.as_secs_f64() * 1e6 / delivered as f64;
        let allocations = h.meter.allocations as f64 / delivered as f64;
        println!(
            "round {round}: {sent} packets in, {delivered} delivered, shard {:.1} ms busy = {per_packet:.2} µs and {allocations:.2} allocations per delivered packet",
            h.meter.busy.as_secs_f64() * 1e3
        );
        results.push(per_packet);
        allocations_per_packet.push(allocations);
    }
    // Correctness before speed: on the lossless in-memory network, once the last
    // packets in flight have landed, every packet sent reached the rest of its room.
    h.run_for(Duration::from_millis(200));
    delivered_total += h.clients.iter().map(|c| c.received.len()).sum::<usize>();
    let sent_total: u64 = publishers.iter().map(|p| p.sent).sum();
    assert_eq!(
        delivered_total,
        sent_total as usize * (o.people - 1),
        "every packet reaches every subscriber"
    );
    results.sort_by(f64::total_cmp);
    allocations_per_packet.sort_by(f64::total_cmp);
    println!(
        "forwarding, meeting {}x{} on one shard, {} s rounds: median {:.2} µs per delivered packet (min {:.2}, max {:.2}), {:.2} allocations",
        o.rooms,
        o.people,
        o.seconds,
        results[results.len() / 2],
        results[0],
        results[results.len() - 1],
        allocations_per_packet[allocations_per_packet.len() / 2]
    );
}
