#!/usr/bin/env python3
"""Kernel oracle for endpoint TCP (src/sim/net/tcp_endpoint.ts): what a real Linux endpoint answers.

Root only; never in CI. Creates two namespaces joined by a veth pair:
  ctse-srv  192.0.2.2/24  a python3 listening socket on port 80; port 81 closed
  ctse-cli  (no address)  this script speaks raw Ethernet frames on its end (AF_PACKET) as 192.0.2.1, so no
                          kernel stack answers for the client; the server has a permanent neighbour entry for it.
Each case sends hand-built segments and records every frame the server sends back within 300 ms, as hex and
decoded fields. Output: recordings.json next to this file (kernel from uname -r). Namespaces are deleted at exit.

Usage: sudo python3 test/oracle/endpoint/record.py
"""
import ctypes, json, os, socket, struct, subprocess, sys, time, random

_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if _libc.setns(fd, 0) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")

SRV, CLI = "ctse-srv", "ctse-cli"
SRV_IP, CLI_IP = "192.0.2.2", "192.0.2.1"
SRV_MAC, CLI_MAC = "02:00:00:00:00:02", "02:00:00:00:00:01"
HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


def setup():
    teardown()
    sh("ip", "netns", "add", SRV)
    sh("ip", "netns", "add", CLI)
    sh("ip", "link", "add", "veth-s", "netns", SRV, "address", SRV_MAC, "type", "veth", "peer", "name", "veth-c",
       "netns", CLI, "address", CLI_MAC)
    for ns, dev in ((SRV, "veth-s"), (CLI, "veth-c")):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", check=False)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    sh("ip", "netns", "exec", SRV, "ip", "addr", "add", SRV_IP + "/24", "dev", "veth-s")
    sh("ip", "netns", "exec", SRV, "ip", "neigh", "replace", CLI_IP, "lladdr", CLI_MAC, "dev", "veth-s", "nud",
       "permanent")


def teardown():
    for ns in (SRV, CLI):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip2b(a):
    return socket.inet_aton(a)


def tcp_opts(opts):
    out = b""
    for o in opts:
        if o[0] == "mss":
            out += struct.pack("!BBH", 2, 4, o[1])
        elif o[0] == "sackOK":
            out += b"\x04\x02"
        elif o[0] == "ts":
            out += struct.pack("!BBII", 8, 10, o[1], o[2])
        elif o[0] == "nop":
            out += b"\x01"
        elif o[0] == "wscale":
            out += struct.pack("!BBB", 3, 3, o[1])
    while len(out) % 4:
        out += b"\x00"
    return out


FLAGS = {"F": 1, "S": 2, "R": 4, "P": 8, ".": 16}


def frame(sport, dport, seq, ack, flags, win, opts=(), payload=b""):
    fl = sum(FLAGS[c] for c in flags)
    o = tcp_opts(opts)
    th = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (20 + len(o)) // 4 << 4, fl,
                     win, 0, 0) + o
    seg = th + payload
    ph = ip2b(CLI_IP) + ip2b(SRV_IP) + struct.pack("!BBH", 0, 6, len(seg))
    c = csum(ph + seg)
    seg = seg[:16] + struct.pack("!H", c) + seg[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), random.randint(0, 65535), 0x4000, 64, 6, 0,
                     ip2b(CLI_IP), ip2b(SRV_IP))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = bytes.fromhex(SRV_MAC.replace(":", "")) + bytes.fromhex(CLI_MAC.replace(":", "")) + b"\x08\x00"
    return eth + ip + seg


def decode(fr):
    ip = fr[14:]
    ihl = (ip[0] & 15) * 4
    tot, ident, frag, ttl, proto = struct.unpack("!HHHBB", ip[2:10])
    t = ip[ihl:tot]
    sport, dport, seq, ack, off, fl, win = struct.unpack("!HHIIBBH", t[:16])
    doff = (off >> 4) * 4
    opts, i, ob = [], 20, t
    while i < doff:
        k = ob[i]
        if k == 0:
            opts.append("eol")
            break
        if k == 1:
            opts.append("nop")
            i += 1
            continue
        ln = ob[i + 1]
        v = ob[i + 2:i + ln]
        if k == 2:
            opts.append("mss %d" % struct.unpack("!H", v)[0])
        elif k == 3:
            opts.append("wscale %d" % v[0])
        elif k == 4:
            opts.append("sackOK")
        elif k == 8:
            opts.append("TS val %d ecr %d" % struct.unpack("!II", v))
        else:
            opts.append("opt%d" % k)
        i += ln
    flags = "".join(c for c, b in (("F", 1), ("S", 2), ("R", 4), ("P", 8), (".", 16)) if fl & b)
    return {"tos": ip[1], "ttl": ttl, "id": ident, "df": bool(frag & 0x4000), "sport": sport, "dport": dport,
            "seq": seq, "ack": ack, "flags": flags, "window": win, "options": opts, "payload": tot - ihl - doff}


class Wire:
    """AF_PACKET on the client end (inside ctse-cli)."""

    def __init__(self):
        fd = os.open("/var/run/netns/" + CLI, os.O_RDONLY)
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        setns(fd)
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.s.bind(("veth-c", 0))
        self.s.setblocking(False)
        setns(self.home)

    def send(self, fr):
        self.s.send(fr)

    def recv(self, wait=0.3):
        out, end = [], time.time() + wait
        while time.time() < end:
            try:
                fr = self.s.recv(65535)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            if fr[23] == 6 and fr[26:30] == ip2b(SRV_IP):
                out.append({"hex": fr[14:].hex(), **decode(fr)})
        return out


def main():
    if os.geteuid() != 0:
        sys.exit("record.py: needs root")
    setup()
    server = subprocess.Popen(["ip", "netns", "exec", SRV, "python3", "-c",
                               "import socket,time\n"
                               "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                               "s.bind(('0.0.0.0',80));s.listen(16)\n"
                               "conns=[]\n"
                               "while True:\n  c,_=s.accept();conns.append(c)\n"])
    try:
        time.sleep(0.5)
        w = Wire()
        cases = []
        linux_syn = [("mss", 1460), ("sackOK",), ("ts", 1000, 0), ("nop",), ("wscale", 7)]

        def case(name, note, sent):
            for fr, desc in sent:
                w.send(fr)
            got = w.recv()
            cases.append({"name": name, "note": note, "sent": [{"hex": fr[14:].hex(), **decode(fr)} for fr, _ in sent],
                          "received": got})
            print(name, [(g["flags"], g["seq"], g["ack"], g["window"], g["options"]) for g in got])
            return got

        # 1. SYN to a listening port, Linux-like options.
        c1 = case("syn-listen", "SYN with Linux options to a LISTEN socket -> SYN-ACK",
                  [(frame(40001, 80, 1000, 0, "S", 64240, linux_syn),
                    {"sport": 40001, "dport": 80, "seq": 1000, "flags": "S", "window": 64240,
                     "options": "mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7"})])
        # reset the half-open connection so it does not linger
        if c1:
            w.send(frame(40001, 80, 1001, 0, "R", 0))
            w.recv(0.1)
        # 2. SYN without options (hping-like, as in seed 001).
        c2 = case("syn-listen-noopts", "SYN without options (window 512) to a LISTEN socket -> SYN-ACK",
                  [(frame(40002, 80, 5000, 0, "S", 512), {"sport": 40002, "dport": 80, "seq": 5000, "flags": "S",
                                                          "window": 512, "options": ""})])
        if c2:
            w.send(frame(40002, 80, 5001, 0, "R", 0))
            w.recv(0.1)
        # 3. SYN to a closed port.
        case("syn-closed", "SYN to a closed port -> RST (tcp_v4_send_reset)",
             [(frame(40003, 81, 7000, 0, "S", 64240, linux_syn),
               {"sport": 40003, "dport": 81, "seq": 7000, "flags": "S", "window": 64240})])
        # 3b. ACK to a closed port.
        case("ack-closed", "ACK to a closed port -> RST with seq = ack",
             [(frame(40004, 81, 7000, 123456, ".", 502), {"sport": 40004, "dport": 81, "seq": 7000,
                                                          "ack": 123456, "flags": "."})])
        # 4. Establish, then SYN on the established 4-tuple, then in-window RST, then exact RST.
        sa = case("handshake", "SYN -> SYN-ACK; ACK completes the handshake (accept)",
                  [(frame(40005, 80, 20000, 0, "S", 64240, linux_syn),
                    {"sport": 40005, "dport": 80, "seq": 20000, "flags": "S"})])
        if not sa:
            raise SystemExit("no SYN-ACK")
        srv_isn = sa[0]["seq"]
        tsv = int(sa[0]["options"][2].split()[2]) if len(sa[0]["options"]) > 2 else 0
        case("ack-established", "ACK of the SYN-ACK: nothing is sent back",
             [(frame(40005, 80, 20001, srv_isn + 1, ".", 502, [("nop",), ("nop",), ("ts", 1001, tsv)]),
               {"sport": 40005, "dport": 80, "seq": 20001, "ack": "isn+1", "flags": "."})])
        time.sleep(0.6)
        case("syn-established", "SYN on an ESTABLISHED 4-tuple (new ISN) -> challenge ACK (RFC 5961 4.2)",
             [(frame(40005, 80, 90000, 0, "S", 64240, [("mss", 1460), ("sackOK",), ("ts", 1100, 0), ("nop",),
                                                     ("wscale", 7)]),
               {"sport": 40005, "dport": 80, "seq": 90000, "flags": "S"})])
        case("syn-established-ratelimited", "a second SYN within 500 ms -> nothing (tcp_invalid_ratelimit)",
             [(frame(40005, 80, 90000, 0, "S", 64240, [("mss", 1460), ("sackOK",), ("ts", 1101, 0), ("nop",),
                                                     ("wscale", 7)]),
               {"sport": 40005, "dport": 80, "seq": 90000, "flags": "S"})])
        time.sleep(0.6)
        case("rst-inwindow", "RST in window but not at rcv_nxt -> challenge ACK (RFC 5961 3.2)",
             [(frame(40005, 80, 20001 + 1000, 0, "R", 0),
               {"sport": 40005, "dport": 80, "seq": "rcv_nxt+1000", "flags": "R"})])
        case("rst-outofwindow", "RST far outside the window -> nothing",
             [(frame(40005, 80, 20001 + 0x40000000, 0, "R", 0),
               {"sport": 40005, "dport": 80, "seq": "rcv_nxt+2^30", "flags": "R"})])
        case("rst-exact", "RST at rcv_nxt -> the connection is reset, nothing sent",
             [(frame(40005, 80, 20001, 0, "R", 0), {"sport": 40005, "dport": 80, "seq": "rcv_nxt", "flags": "R"})])
        case("ack-after-reset", "ACK on the reset 4-tuple -> RST (no socket any more)",
             [(frame(40005, 80, 20001, srv_isn + 1, ".", 502),
               {"sport": 40005, "dport": 80, "seq": 20001, "ack": "isn+1", "flags": "."})])
        # 5. data and FIN exchange on a fresh connection (server never closes: python keeps the socket).
        sa = case("handshake2", "SYN -> SYN-ACK",
                  [(frame(40006, 80, 30000, 0, "S", 64240, linux_syn), {"sport": 40006, "dport": 80, "seq": 30000,
                                                                       "flags": "S"})])
        isn2 = sa[0]["seq"]
        case("data", "ACK then 100 bytes of data -> ACK of the data",
             [(frame(40006, 80, 30001, isn2 + 1, ".", 502, [("nop",), ("nop",), ("ts", 1001, 0)]),
               {"flags": "."}),
              (frame(40006, 80, 30001, isn2 + 1, "P.", 502, [("nop",), ("nop",), ("ts", 1002, 0)], b"x" * 100),
               {"flags": "P.", "payload": 100})])
        case("fin", "FIN -> ACK of the FIN (the application has not closed: CLOSE_WAIT)",
             [(frame(40006, 80, 30101, isn2 + 1, "F.", 502, [("nop",), ("nop",), ("ts", 1003, 0)]),
               {"flags": "F.", "seq": "rcv_nxt"})])
        kernel = os.uname().release
        out = {"provenance": {"kernel": kernel, "date": time.strftime("%Y-%m-%d"),
                              "command": "sudo python3 test/oracle/endpoint/record.py",
                              "server": "python3 socket.listen on 0.0.0.0:80 in netns ctse-srv (192.0.2.2)",
                              "client": "raw frames from 192.0.2.1 (AF_PACKET, no kernel stack)"},
               "cases": cases}
        with open(os.path.join(HERE, "recordings.json"), "w") as f:
            json.dump(out, f, indent=1)
        print("wrote recordings.json")
    finally:
        server.kill()
        teardown()


if __name__ == "__main__":
    main()
