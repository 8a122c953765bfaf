//! What relaying one chat or file message costs the signalling thread in a full room:
//! the app's handling of a member's `message` and the serialisation of what it sends, as
//! the signalling loop does it (once for the room: `Output::SendMany`), next to what it
//! cost when every recipient's copy was serialised on its own.
//!
//! ```sh
//! cargo bench -p signaling --bench relay -- --members 100 --chunk 49152 --rounds 200
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::factory::PeerFactory;
use signaling::app::{App, AppConfig, Output};
use signaling::transport::ConnId;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let members = arg("--members", 100);
    let chunk = arg("--chunk", 48 * 1024);
    let rounds = arg("--rounds", 200);
    let shards: Vec<SocketAddr> = vec!["127.0.0.1:40000".parse().unwrap()];
    let mut app = App::new(AppConfig::default(), PeerFactory::new(), shards);
    let now = Instant::now();
    for i in 0..members {
        let conn = ConnId(i as u64 + 2);
        app.on_open(now, conn);
        let join = format!(r#"{{"type":"join","room":"full","nickname":"m{i}"}}"#);
        app.on_text(now, conn, &join);
    }
    drop(app.take_output());
    // A file chunk as the page sends it: 48 KiB of bytes, base64.
    let data = "QUJD".repeat(chunk / 3);
    let message = format!(
        r#"{{"type":"message","data":{{"fileChunk":{{"id":"f","index":0,"data":"{data}"}}}}}}"#
    );
    let sender = ConnId(2);

    let mut once = Duration::ZERO;
    let mut each = Duration::ZERO;
    let mut bytes = 0usize;
    for _ in 0..rounds {
        // As the signalling loop does it now: one serialisation for the room.
        let t = Instant::now();
        app.on_text(now, sender, &message);
        for out in app.take_output() {
            if let Output::SendMany(conns, msg) = out {
                let text = serde_json::to_string(&msg).unwrap();
                bytes += text.len() * conns.len();
                std::hint::black_box((&conns, text));
            }
        }
        once += t.elapsed();
        // As it was: one serialisation per recipient.
        let t = Instant::now();
        app.on_text(now, sender, &message);
        for out in app.take_output() {
            if let Output::SendMany(conns, msg) = out {
                for c in &conns {
                    std::hint::black_box((c, serde_json::to_string(&msg).unwrap()));
                }
            }
        }
        each += t.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / rounds as f64;
    println!(
        "relay of a {} KiB file chunk to {} members: {:.3} ms serialised once, {:.3} ms once per \
         recipient ({:.1}x); {:.1} MB queued per message",
        chunk / 1024,
        members - 1,
        per(once),
        per(each),
        each.as_secs_f64() / once.as_secs_f64(),
        bytes as f64 / rounds as f64 / 1e6,
    );
}
