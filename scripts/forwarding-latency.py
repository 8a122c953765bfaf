#!/usr/bin/env python3
"""The server's own forwarding latency, from a loopback capture.

SRTP leaves the RTP header in the clear, and the server keeps a forwarded packet's RTP
timestamp (it rewrites the SSRC and the sequence number). So in a capture of a shard's
UDP port, each packet a subscriber gets can be matched with the publisher's packet it
came from: the i-th packet with RTP timestamp T on a subscriber's stream is the i-th
packet with timestamp T that its publisher sent to the shard. (Which publisher a
subscriber's stream comes from is decided by a vote: for each of its packets, the
publisher whose packet with the same timestamp reached the shard last before it.) The
difference of their capture times
is the time the packet spent in the server, from the publisher's send (on loopback the
capture point is the sender's transmit) to the server's send: the kernel's receive
path, the shard's wake-up, its work, and its send. The generator's own delays are not
in it.

UDP GSO messages (the server's and the generator's runs to one destination) appear in
the capture as one large datagram; they are cut into their segments by finding the
second segment's RTP header.

    tcpdump -i lo -n -B 200000 --time-stamp-precision=nano -w /tmp/shard.pcap \\
        udp port 50000 &          # the shard's port, while a benchmark runs
    python3 scripts/forwarding-latency.py /tmp/shard.pcap 50000
"""

import collections
import struct
import sys


def records(path):
    """(time in seconds, IPv4 packet bytes) of every record of a pcap file."""
    with open(path, "rb") as f:
        header = f.read(24)
        magic = struct.unpack("<I", header[:4])[0]
        if magic not in (0xA1B2C3D4, 0xA1B23C4D):
            sys.exit(f"{path}: not a little-endian pcap file")
        scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
        link = struct.unpack("<I", header[20:24])[0]
        offset = {1: 14, 0: 4, 113: 16, 276: 20}.get(link)
        if offset is None:
            sys.exit(f"{path}: link type {link} is not supported")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", h)
            data = f.read(incl)
            yield sec + frac * scale, data[offset:]


def rtp_header(p):
    """(ssrc, seq, timestamp) of an RTP (not RTCP) packet at the start of p, or None."""
    if len(p) < 12 or p[0] >> 6 != 2 or 72 <= (p[1] & 0x7F) <= 76:
        return None
    seq, ts, ssrc = struct.unpack(">HII", p[2:12])
    return ssrc, seq, ts


def segments(p):
    """The RTP packets in one captured UDP payload, cut at GSO segment boundaries."""
    first = rtp_header(p)
    if first is None:
        return []
    ssrc, seq, _ = first
    if len(p) <= 1500:
        return [first]
    # The second segment starts where the same SSRC with the next sequence number does.
    want = struct.pack(">H", (seq + 1) & 0xFFFF)
    for size in range(100, min(len(p), 1500) + 1):
        q = p[size:]
        if q[2:4] == want and rtp_header(q) and rtp_header(q)[0] == ssrc:
            return [h for h in (rtp_header(p[i:]) for i in range(0, len(p), size)) if h]
    return [first]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, port = sys.argv[1], int(sys.argv[2])
    incoming = collections.defaultdict(list)  # (publisher ssrc, RTP timestamp) -> times
    publishers = collections.defaultdict(set)  # RTP timestamp -> publisher ssrcs
    outgoing = []  # (time, subscriber port, ssrc, RTP timestamp)
    for t, ip in records(path):
        if not ip or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport = struct.unpack(">HH", ip[ihl : ihl + 4])
        for ssrc, _, ts in segments(ip[ihl + 8 :]):
            if dport == port:
                incoming[(ssrc, ts)].append(t)
                publishers[ts].add(ssrc)
            elif sport == port:
                outgoing.append((t, dport, ssrc, ts))
    votes = collections.defaultdict(collections.Counter)
    for t, dport, ssrc, ts in outgoing:
        before = [
            (max(x for x in incoming[(p, ts)] if x <= t), p)
            for p in publishers.get(ts, ())
            if any(x <= t for x in incoming[(p, ts)])
        ]
        if before:
            votes[(dport, ssrc)][max(before)[1]] += 1
    source = {stream: v.most_common(1)[0][0] for stream, v in votes.items()}
    seen = collections.Counter()
    latency, first_out = [], {}
    for t, dport, ssrc, ts in outgoing:
        publisher = source.get((dport, ssrc))
        key = (dport, ssrc, ts)
        i = seen[key]
        seen[key] += 1
        sent = incoming.get((publisher, ts))
        if not sent or i >= len(sent) or t < sent[i]:
            continue
        latency.append((t - sent[i]) * 1e6)
        first_out.setdefault((publisher, ts), (t - sent[0]) * 1e6)
    if not latency:
        sys.exit("no forwarded packet matched: is the port the shard's, and media flowing?")
    latency.sort()
    wake = sorted(first_out.values())

    def q(v, f):
        return v[min(len(v) - 1, int(f * len(v)))]

    print(f"{len(latency)} of {len(outgoing)} forwarded packets matched")
    print(
        "in the server (µs)        p50 %.0f  p90 %.0f  p99 %.0f  max %.0f"
        % (q(latency, 0.5), q(latency, 0.9), q(latency, 0.99), latency[-1])
    )
    print(
        "to the first copy (µs)    p10 %.0f  p50 %.0f  p99 %.0f"
        % (q(wake, 0.1), q(wake, 0.5), q(wake, 0.99))
    )


if __name__ == "__main__":
    main()
