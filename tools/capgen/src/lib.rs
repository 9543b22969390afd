//! Deterministic packet-capture generator for bpfkit's tests.
//!
//! [`generate`] turns a seed and a count into a list of Ethernet frames with pcap timestamps;
//! [`write_pcap`] writes them as a classic little-endian, microsecond pcap (`LINKTYPE_ETHERNET`,
//! snaplen 65535). Nothing depends on the clock, the host or iteration order of a hash map: the
//! same seed and count give a byte-identical file.
//!
//! The mix ([`Kind`]): IPv4 and IPv6 TCP (SYN, SYN-ACK, ACK, PSH-ACK, FIN-ACK, RST, RST-ACK,
//! well-known ports 22, 53, 80, 443, 8080 and ephemeral ones), UDP (DNS queries and answers on
//! port 53 and other ports), ICMP and ICMPv6 echo, ICMPv6 neighbour solicitations, ARP requests and
//! replies, IPv4 fragments and IPv4 with options, one or two VLAN tags on some frames, LLDP, and a
//! few malformed frames (shorter than an Ethernet header, truncated VLAN tag, IPv4 with IHL < 5,
//! IPv4 whose IHL runs past the frame, truncated IPv4/IPv6/TCP headers, IPv4 total length larger
//! than the frame). Frames of well-formed packets are 42..=1514 bytes with valid IPv4 header,
//! TCP, UDP, ICMP and ICMPv6 checksums; IPv4 and IPv6 frames shorter than 60 bytes get Ethernet
//! padding (zero bytes after the IP packet), ARP frames keep their 42 bytes.

#![forbid(unsafe_code)]

use std::io::Write;
use std::time::Duration;

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, IpNumber, Ipv4Header, PacketBuilder, PacketBuilderStep,
    TcpOptionElement, VlanId,
};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// First timestamp of every capture (2024-01-01T00:00:00Z), plus a seed-derived offset.
const BASE_TIME_SECS: u64 = 1_704_067_200;

/// Longest frame (Ethernet header + 1500-byte MTU), without VLAN tags.
pub const MAX_FRAME: usize = 1514;

/// What a generated frame is, for the summary and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Ipv4Tcp,
    Ipv4Udp,
    Ipv4Dns,
    Ipv4Icmp,
    Ipv4Fragment,
    Ipv4Options,
    Ipv6Tcp,
    Ipv6Udp,
    Ipv6Dns,
    Icmpv6,
    Arp,
    Lldp,
    /// Frame shorter than an Ethernet header (6..=13 bytes).
    ShortEthernet,
    /// 802.1Q TPID and no complete tag (14..=17 bytes).
    TruncatedVlan,
    /// IPv4 with IHL 0..=4.
    Ipv4BadIhl,
    /// IPv4 whose IHL says more header bytes than the frame holds.
    Ipv4IhlPastEnd,
    /// Frame ends inside the IPv4 header.
    Ipv4Truncated,
    /// IPv4 total length larger than the frame.
    Ipv4BadTotalLen,
    /// Frame ends inside the TCP header (IPv4).
    TcpTruncated,
    /// Frame ends inside the IPv6 header.
    Ipv6Truncated,
}

impl Kind {
    /// Whether the frame is deliberately malformed.
    pub fn is_malformed(self) -> bool {
        matches!(
            self,
            Kind::ShortEthernet
                | Kind::TruncatedVlan
                | Kind::Ipv4BadIhl
                | Kind::Ipv4IhlPastEnd
                | Kind::Ipv4Truncated
                | Kind::Ipv4BadTotalLen
                | Kind::TcpTruncated
                | Kind::Ipv6Truncated
        )
    }
}

/// One generated frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    /// Number of 802.1Q/802.1ad tags in front of the payload's EtherType.
    pub vlan_tags: u8,
    pub timestamp: Duration,
    pub data: Vec<u8>,
}

/// SplitMix64: small, fast, and fully specified, so captures never change with a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x6a09_e667_f3bc_c909)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

const MACS: [[u8; 6]; 6] = [
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x02],
    [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
    [0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc],
    [0x3c, 0xfd, 0xfe, 0x01, 0x02, 0x03],
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
];
const BROADCAST: [u8; 6] = [0xff; 6];

const V4_ADDRS: [[u8; 4]; 8] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 0, 0, 3],
    [192, 168, 1, 10],
    [192, 168, 1, 20],
    [172, 16, 5, 4],
    [8, 8, 8, 8],
    [1, 1, 1, 1],
];

fn v6_addr(rng: &mut Rng) -> [u8; 16] {
    let mut a = [0u8; 16];
    match rng.below(4) {
        0 => {
            // fe80::xxxx
            a[0] = 0xfe;
            a[1] = 0x80;
        }
        _ => {
            // 2001:db8:N::xxxx
            a[0] = 0x20;
            a[1] = 0x01;
            a[2] = 0x0d;
            a[3] = 0xb8;
            a[5] = rng.below(4) as u8;
        }
    }
    a[15] = 1 + rng.below(8) as u8;
    a
}

const WELL_KNOWN_TCP: [u16; 5] = [22, 53, 80, 443, 8080];
const UDP_PORTS: [u16; 6] = [123, 161, 514, 4789, 5353, 8080];
const DNS_NAMES: [&str; 5] = ["example.com", "bpfkit.example", "a.b.c.example.org", "localhost", "x.invalid"];

fn ephemeral(rng: &mut Rng) -> u16 {
    32768 + rng.below(28232) as u16
}

/// A TCP flag combination, as the builder calls for it.
#[derive(Debug, Clone, Copy)]
enum TcpFlags {
    Syn,
    SynAck,
    Ack,
    PshAck,
    FinAck,
    Rst,
    RstAck,
}

impl TcpFlags {
    fn carries_payload(self) -> bool {
        matches!(self, TcpFlags::Ack | TcpFlags::PshAck | TcpFlags::FinAck)
    }
}

fn pick_flags(rng: &mut Rng) -> TcpFlags {
    match rng.below(20) {
        0..=3 => TcpFlags::Syn,
        4..=5 => TcpFlags::SynAck,
        6..=10 => TcpFlags::Ack,
        11..=15 => TcpFlags::PshAck,
        16..=17 => TcpFlags::FinAck,
        18 => TcpFlags::Rst,
        _ => TcpFlags::RstAck,
    }
}

/// Pick a payload length so that the whole frame is spread over 42..=1514 bytes.
fn payload_len(rng: &mut Rng, max: usize) -> usize {
    match rng.below(10) {
        0..=2 => 0,
        3..=5 => rng.range(1, 64.min(max)),
        6..=7 => rng.range(1, 600.min(max)),
        8 => rng.range(1, max),
        _ => max,
    }
}

fn text_or_random(rng: &mut Rng, port: u16, len: usize) -> Vec<u8> {
    if port == 80 || port == 8080 {
        let text = b"GET /index.html HTTP/1.1\r\nHost: bpfkit.example\r\nUser-Agent: capgen\r\nAccept: */*\r\n\r\n";
        (0..len).map(|i| text[i % text.len()]).collect()
    } else {
        rng.bytes(len)
    }
}

fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A DNS query or answer (A or AAAA, class IN).
fn dns_message(rng: &mut Rng, answer: bool) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    m.extend_from_slice(if answer { &[0x81, 0x80] } else { &[0x01, 0x00] });
    m.extend_from_slice(&[0, 1, 0, u8::from(answer), 0, 0, 0, 0]);
    dns_name(&mut m, rng.pick(&DNS_NAMES));
    let aaaa = rng.chance(30);
    m.extend_from_slice(if aaaa { &[0, 28, 0, 1] } else { &[0, 1, 0, 1] });
    if answer {
        m.extend_from_slice(&[0xc0, 0x0c]);
        m.extend_from_slice(if aaaa { &[0, 28, 0, 1] } else { &[0, 1, 0, 1] });
        m.extend_from_slice(&300u32.to_be_bytes());
        let rdata = rng.bytes(if aaaa { 16 } else { 4 });
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

/// Link layer of a frame: MACs and VLAN tags.
struct Link {
    src: [u8; 6],
    dst: [u8; 6],
    vlans: Vec<u16>,
}

impl Link {
    fn random(rng: &mut Rng, vlan_percent: u64) -> Link {
        let src = MACS[rng.below(MACS.len() as u64 - 1) as usize];
        let dst = MACS[rng.below(MACS.len() as u64) as usize];
        let mut vlans = Vec::new();
        if rng.chance(vlan_percent) {
            vlans.push(1 + rng.below(4094) as u16);
            if rng.chance(20) {
                vlans.push(1 + rng.below(4094) as u16);
            }
        }
        Link { src, dst, vlans }
    }

    fn header_len(&self) -> usize {
        14 + 4 * self.vlans.len()
    }

    /// Start a builder over this link layer and continue with `ip`.
    fn ip(&self, ip: etherparse::IpHeaders) -> PacketBuilderStep<etherparse::IpHeaders> {
        let eth = PacketBuilder::ethernet2(self.src, self.dst);
        match self.vlans.as_slice() {
            [] => eth.ip(ip),
            [a] => eth.single_vlan(VlanId::try_new(*a).expect("vlan id")).ip(ip),
            [a, b, ..] => {
                eth.double_vlan(VlanId::try_new(*a).expect("vlan id"), VlanId::try_new(*b).expect("vlan id")).ip(ip)
            }
        }
    }

    /// Raw Ethernet + VLAN header bytes ending with `ethertype`.
    fn raw(&self, ethertype: u16) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len());
        out.extend_from_slice(&self.dst);
        out.extend_from_slice(&self.src);
        for (i, vid) in self.vlans.iter().enumerate() {
            let tpid: u16 = if self.vlans.len() > 1 && i == 0 { 0x88a8 } else { 0x8100 };
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&vid.to_be_bytes());
        }
        out.extend_from_slice(&ethertype.to_be_bytes());
        out
    }
}

fn ipv4_headers(rng: &mut Rng, proto: IpNumber) -> etherparse::IpHeaders {
    let src = rng.pick(&V4_ADDRS);
    let mut dst = rng.pick(&V4_ADDRS);
    if dst == src {
        dst[3] = dst[3].wrapping_add(100);
    }
    let mut h = Ipv4Header::new(0, 64, proto, src, dst).expect("ipv4 header");
    h.identification = rng.next_u64() as u16;
    h.dont_fragment = rng.chance(70);
    h.time_to_live = rng.pick(&[1, 32, 63, 64, 128, 255]);
    h.dscp = etherparse::IpDscp::try_new(rng.pick(&[0, 0, 0, 10, 46])).expect("dscp");
    etherparse::IpHeaders::Ipv4(h, Default::default())
}

fn ipv6_headers(rng: &mut Rng, proto: IpNumber) -> etherparse::IpHeaders {
    let src = v6_addr(rng);
    let mut dst = v6_addr(rng);
    if dst == src {
        dst[15] ^= 0x10;
    }
    let h = etherparse::Ipv6Header {
        traffic_class: rng.pick(&[0, 0, 0x28, 0xb8]),
        flow_label: etherparse::Ipv6FlowLabel::try_new(rng.below(1 << 20) as u32).expect("flow label"),
        payload_length: 0,
        next_header: proto,
        hop_limit: rng.pick(&[1, 64, 255]),
        source: src,
        destination: dst,
    };
    etherparse::IpHeaders::Ipv6(h, Default::default())
}

/// Pad to the 60-byte Ethernet minimum (frames without FCS).
fn pad_min(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

fn build_tcp(rng: &mut Rng, link: &Link, v6: bool) -> Vec<u8> {
    let ip = if v6 { ipv6_headers(rng, IpNumber::TCP) } else { ipv4_headers(rng, IpNumber::TCP) };
    let ip_len = if v6 { 40 } else { 20 };
    let well_known = rng.pick(&WELL_KNOWN_TCP);
    let client = ephemeral(rng);
    let to_server = rng.chance(60);
    let (sport, dport) = if to_server { (client, well_known) } else { (well_known, client) };
    let (sport, dport) = if rng.chance(10) { (ephemeral(rng), ephemeral(rng)) } else { (sport, dport) };
    let flags = pick_flags(rng);
    let seq = rng.next_u64() as u32;
    let window = rng.pick(&[0u16, 512, 29200, 64240, 65535]);
    let ack = rng.next_u64() as u32;
    let step = link.ip(ip).tcp(sport, dport, seq, window);
    let mut with_options = false;
    let step = match flags {
        TcpFlags::Syn => {
            with_options = true;
            step.syn()
        }
        TcpFlags::SynAck => {
            with_options = true;
            step.syn().ack(ack)
        }
        TcpFlags::Ack => step.ack(ack),
        TcpFlags::PshAck => step.psh().ack(ack),
        TcpFlags::FinAck => step.fin().ack(ack),
        TcpFlags::Rst => step.rst(),
        TcpFlags::RstAck => step.rst().ack(ack),
    };
    let step = if with_options {
        step.options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::WindowScale(7),
            TcpOptionElement::Noop,
        ])
        .expect("tcp options")
    } else {
        step
    };
    let tcp_len = if with_options { 32 } else { 20 };
    let max_payload = 1500 - ip_len - tcp_len - 4 * link.vlans.len();
    let len = if flags.carries_payload() { payload_len(rng, max_payload) } else { 0 };
    let payload = text_or_random(rng, well_known, len);
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, &payload).expect("tcp frame");
    pad_min(out)
}

fn build_udp(rng: &mut Rng, link: &Link, v6: bool, dns: bool) -> Vec<u8> {
    let ip = if v6 { ipv6_headers(rng, IpNumber::UDP) } else { ipv4_headers(rng, IpNumber::UDP) };
    let ip_len = if v6 { 40 } else { 20 };
    let (sport, dport, payload) = if dns {
        let answer = rng.chance(40);
        let client = ephemeral(rng);
        let msg = dns_message(rng, answer);
        if answer { (53, client, msg) } else { (client, 53, msg) }
    } else {
        let port = rng.pick(&UDP_PORTS);
        let max = 1500 - ip_len - 8 - 4 * link.vlans.len();
        let len = payload_len(rng, max);
        (ephemeral(rng), port, rng.bytes(len))
    };
    let step = link.ip(ip).udp(sport, dport);
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, &payload).expect("udp frame");
    pad_min(out)
}

fn build_icmp4(rng: &mut Rng, link: &Link) -> Vec<u8> {
    let ip = ipv4_headers(rng, IpNumber::ICMP);
    let id = rng.next_u64() as u16;
    let seq = rng.below(100) as u16;
    let len = rng.pick(&[0usize, 8, 56, 56, 1000, 1472 - 4 * link.vlans.len()]);
    let payload = rng.bytes(len);
    let step = link.ip(ip);
    let step = if rng.chance(60) { step.icmpv4_echo_request(id, seq) } else { step.icmpv4_echo_reply(id, seq) };
    let mut out = Vec::with_capacity(step.size(payload.len()));
    step.write(&mut out, &payload).expect("icmp frame");
    pad_min(out)
}

fn build_icmp6(rng: &mut Rng, link: &Link) -> Vec<u8> {
    let ip = ipv6_headers(rng, IpNumber::IPV6_ICMP);
    let step = link.ip(ip);
    let mut out = Vec::new();
    match rng.below(3) {
        0 => {
            let len = rng.pick(&[0usize, 8, 56, 1000]);
            let payload = rng.bytes(len);
            let s = step.icmpv6_echo_request(rng.next_u64() as u16, rng.below(100) as u16);
            s.write(&mut out, &payload).expect("icmpv6 frame");
        }
        1 => {
            let len = rng.pick(&[0usize, 8, 56]);
            let payload = rng.bytes(len);
            let s = step.icmpv6_echo_reply(rng.next_u64() as u16, rng.below(100) as u16);
            s.write(&mut out, &payload).expect("icmpv6 frame");
        }
        _ => {
            // Neighbour solicitation: type 135, reserved, target address, source link-layer option.
            let mut body = v6_addr(rng).to_vec();
            body.extend_from_slice(&[1, 1]);
            body.extend_from_slice(&link.src);
            let s = step.icmpv6_raw(135, 0, [0; 4]);
            s.write(&mut out, &body).expect("icmpv6 frame");
        }
    }
    pad_min(out)
}

fn build_arp(rng: &mut Rng, link: &Link) -> Vec<u8> {
    let request = rng.chance(60);
    let sender_ip = rng.pick(&V4_ADDRS);
    let target_ip = rng.pick(&V4_ADDRS);
    let target_mac = if request { [0u8; 6] } else { link.dst };
    let arp = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        if request { ArpOperation::REQUEST } else { ArpOperation::REPLY },
        &link.src,
        &sender_ip,
        &target_mac,
        &target_ip,
    )
    .expect("arp packet");
    let dst = if request { BROADCAST } else { link.dst };
    let eth = PacketBuilder::ethernet2(link.src, dst);
    let step = match link.vlans.as_slice() {
        [] => eth.arp(arp),
        [a, ..] => eth.single_vlan(VlanId::try_new(*a).expect("vlan id")).arp(arp),
    };
    let mut out = Vec::with_capacity(step.size());
    step.write(&mut out).expect("arp frame");
    // Most senders pad ARP to the Ethernet minimum; some captures show the bare 42 bytes.
    if rng.chance(50) { pad_min(out) } else { out }
}

fn build_lldp(rng: &mut Rng, link: &Link) -> Vec<u8> {
    let mut out = Link { src: link.src, dst: [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e], vlans: Vec::new() }.raw(0x88cc);
    // Chassis ID (MAC), port ID, TTL, end.
    out.extend_from_slice(&[0x02, 0x07, 0x04]);
    out.extend_from_slice(&link.src);
    out.extend_from_slice(&[0x04, 0x03, 0x07, b'p', b'0' + rng.below(10) as u8]);
    out.extend_from_slice(&[0x06, 0x02, 0x00, 0x78, 0x00, 0x00]);
    pad_min(out)
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum = 0u32;
    for (i, pair) in header.chunks(2).enumerate() {
        if i == 5 {
            continue; // the checksum field itself
        }
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Raw IPv4 header bytes (with options when `ihl > 5`), valid checksum.
fn raw_ipv4(rng: &mut Rng, ihl: u8, total_len: u16, proto: u8, frag: u16) -> Vec<u8> {
    let src = rng.pick(&V4_ADDRS);
    let dst = rng.pick(&V4_ADDRS);
    let mut h = vec![0x40 | ihl, 0];
    h.extend_from_slice(&total_len.to_be_bytes());
    h.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let header_len = usize::from(ihl.max(5)) * 4;
    // Options: record route (type 7), then end-of-list padding.
    if header_len > 20 {
        let opt_len = header_len - 20;
        let mut opts = vec![0u8; opt_len];
        if opt_len >= 7 {
            opts[0] = 7;
            opts[1] = (3 + 4 * ((opt_len - 3) / 4)) as u8;
            opts[2] = 4;
        } else {
            opts.fill(1); // no-ops
        }
        h.extend_from_slice(&opts);
    }
    let checksum = ipv4_checksum(&h[..header_len]);
    h[10..12].copy_from_slice(&checksum.to_be_bytes());
    h
}

/// IPv4 non-first fragment (no L4 header in it) or first fragment with MF set.
fn build_fragment(rng: &mut Rng, link: &Link) -> Vec<u8> {
    let first = rng.chance(50);
    let payload_len = 8 * rng.range(1, 150);
    let frag = if first { 0x2000 } else { (0x2000 * u16::from(rng.chance(50))) | (1 + rng.below(180) as u16) };
    let proto = rng.pick(&[6u8, 17]);
    let mut payload = rng.bytes(payload_len);
    if first {
        // Plausible L4 ports at the start of a first fragment.
        payload[0..2].copy_from_slice(&ephemeral(rng).to_be_bytes());
        payload[2..4].copy_from_slice(&rng.pick(&[53u16, 80, 443, 8080]).to_be_bytes());
    }
    let mut out = link.raw(0x0800);
    out.extend_from_slice(&raw_ipv4(rng, 5, (20 + payload_len) as u16, proto, frag));
    out.extend_from_slice(&payload);
    pad_min(out)
}

/// IPv4 with options (IHL 6..=15) carrying UDP; valid IP header checksum and UDP checksum 0
/// ("no checksum", valid for UDP over IPv4).
fn build_ipv4_options(rng: &mut Rng, link: &Link) -> Vec<u8> {
    let ihl = rng.range(6, 15) as u8;
    let len = rng.range(0, 200);
    let payload = rng.bytes(len);
    let udp_len = 8 + payload.len();
    let total = usize::from(ihl) * 4 + udp_len;
    let mut out = link.raw(0x0800);
    out.extend_from_slice(&raw_ipv4(rng, ihl, total as u16, 17, 0x4000));
    out.extend_from_slice(&ephemeral(rng).to_be_bytes());
    out.extend_from_slice(&rng.pick(&[53u16, 8080, 123]).to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&payload);
    pad_min(out)
}

fn build_malformed(rng: &mut Rng, kind: Kind, link: &Link) -> Vec<u8> {
    match kind {
        Kind::ShortEthernet => {
            let full = link.raw(0x0800);
            full[..rng.range(6, 13)].to_vec()
        }
        Kind::TruncatedVlan => {
            let mut f = Link { src: link.src, dst: link.dst, vlans: Vec::new() }.raw(0x8100);
            let extra = rng.range(0, 3);
            f.extend_from_slice(&rng.bytes(extra));
            f
        }
        Kind::Ipv4BadIhl => {
            let ihl = rng.range(0, 4) as u8;
            let mut f = link.raw(0x0800);
            f.extend_from_slice(&raw_ipv4(rng, ihl, 40, 6, 0));
            f.extend_from_slice(&rng.bytes(20));
            pad_min(f)
        }
        Kind::Ipv4IhlPastEnd => {
            // IHL 15 (60 bytes) but the frame ends after 20..=40 bytes of IP header.
            let mut f = link.raw(0x0800);
            let hdr = raw_ipv4(rng, 15, 60, 17, 0);
            f.extend_from_slice(&hdr[..rng.range(20, 40)]);
            f
        }
        Kind::Ipv4Truncated => {
            let mut f = link.raw(0x0800);
            let hdr = raw_ipv4(rng, 5, 40, 6, 0);
            f.extend_from_slice(&hdr[..rng.range(1, 19)]);
            f
        }
        Kind::Ipv4BadTotalLen => {
            // A valid TCP frame whose IPv4 total length claims more than the frame holds.
            let mut f = build_tcp(rng, &Link { src: link.src, dst: link.dst, vlans: Vec::new() }, false);
            f.truncate(f.len().min(200));
            let claimed = (f.len() - 14 + rng.range(1, 400)) as u16;
            f[16..18].copy_from_slice(&claimed.to_be_bytes());
            let checksum = ipv4_checksum(&f[14..34]);
            f[24..26].copy_from_slice(&checksum.to_be_bytes());
            f
        }
        Kind::TcpTruncated => {
            // IPv4 header is complete and consistent, the TCP header is cut short.
            let tcp_bytes = rng.range(0, 19);
            let mut f = link.raw(0x0800);
            f.extend_from_slice(&raw_ipv4(rng, 5, (20 + tcp_bytes) as u16, 6, 0x4000));
            let mut tcp = ephemeral(rng).to_be_bytes().to_vec();
            tcp.extend_from_slice(&rng.pick(&WELL_KNOWN_TCP).to_be_bytes());
            tcp.extend_from_slice(&rng.bytes(16));
            f.extend_from_slice(&tcp[..tcp_bytes]);
            f
        }
        Kind::Ipv6Truncated => {
            let mut f = link.raw(0x86dd);
            let mut hdr = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
            hdr.extend_from_slice(&v6_addr(rng));
            hdr.extend_from_slice(&v6_addr(rng));
            f.extend_from_slice(&hdr[..rng.range(1, 39)]);
            f
        }
        _ => unreachable!("not a malformed kind: {kind:?}"),
    }
}

fn pick_kind(rng: &mut Rng) -> Kind {
    match rng.below(1000) {
        0..=279 => Kind::Ipv4Tcp,
        280..=369 => Kind::Ipv4Udp,
        370..=459 => Kind::Ipv4Dns,
        460..=509 => Kind::Ipv4Icmp,
        510..=534 => Kind::Ipv4Fragment,
        535..=554 => Kind::Ipv4Options,
        555..=679 => Kind::Ipv6Tcp,
        680..=729 => Kind::Ipv6Udp,
        730..=779 => Kind::Ipv6Dns,
        780..=839 => Kind::Icmpv6,
        840..=899 => Kind::Arp,
        900..=914 => Kind::Lldp,
        915..=924 => Kind::ShortEthernet,
        925..=934 => Kind::TruncatedVlan,
        935..=944 => Kind::Ipv4BadIhl,
        945..=954 => Kind::Ipv4IhlPastEnd,
        955..=964 => Kind::Ipv4Truncated,
        965..=979 => Kind::Ipv4BadTotalLen,
        980..=989 => Kind::TcpTruncated,
        _ => Kind::Ipv6Truncated,
    }
}

/// Generate `count` frames from `seed`.
pub fn generate(seed: u64, count: usize) -> Vec<Frame> {
    let mut rng = Rng::new(seed);
    let mut micros = BASE_TIME_SECS * 1_000_000 + rng.below(86_400) * 1_000_000;
    let mut frames = Vec::with_capacity(count);
    for _ in 0..count {
        let gap = if rng.chance(5) { 2_000_000 } else { 5_000 };
        micros += 1 + rng.below(gap);
        let kind = pick_kind(&mut rng);
        let link = Link::random(&mut rng, 10);
        let data = match kind {
            Kind::Ipv4Tcp => build_tcp(&mut rng, &link, false),
            Kind::Ipv4Udp => build_udp(&mut rng, &link, false, false),
            Kind::Ipv4Dns => build_udp(&mut rng, &link, false, true),
            Kind::Ipv4Icmp => build_icmp4(&mut rng, &link),
            Kind::Ipv4Fragment => build_fragment(&mut rng, &link),
            Kind::Ipv4Options => build_ipv4_options(&mut rng, &link),
            Kind::Ipv6Tcp => build_tcp(&mut rng, &link, true),
            Kind::Ipv6Udp => build_udp(&mut rng, &link, true, false),
            Kind::Ipv6Dns => build_udp(&mut rng, &link, true, true),
            Kind::Icmpv6 => build_icmp6(&mut rng, &link),
            Kind::Arp => build_arp(&mut rng, &link),
            Kind::Lldp => build_lldp(&mut rng, &link),
            malformed => build_malformed(&mut rng, malformed, &link),
        };
        let vlan_tags = match kind {
            Kind::Lldp | Kind::TruncatedVlan | Kind::Ipv4BadTotalLen => 0,
            Kind::Arp => link.vlans.len().min(1) as u8,
            _ => link.vlans.len() as u8,
        };
        frames.push(Frame { kind, vlan_tags, timestamp: Duration::from_micros(micros), data });
    }
    frames
}

/// Write frames as a little-endian microsecond pcap with link type Ethernet.
pub fn write_pcap<W: Write>(out: W, frames: &[Frame]) -> Result<(), pcap_file::PcapError> {
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: 65535,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
    };
    let mut writer = PcapWriter::with_header(out, header)?;
    for f in frames {
        writer.write_packet(&PcapPacket::new(f.timestamp, f.data.len() as u32, &f.data))?;
    }
    Ok(())
}
