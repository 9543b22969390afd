//! capgen's captures: determinism, the mix, sizes and checksums (checked here with an
//! independent one's-complement implementation, not etherparse's).

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use bpfkit_capgen::{Frame, Kind, generate, write_pcap};

fn pcap_bytes(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    write_pcap(&mut out, frames).unwrap();
    out
}

#[test]
fn same_seed_same_bytes() {
    assert_eq!(pcap_bytes(&generate(7, 300)), pcap_bytes(&generate(7, 300)));
    assert_ne!(pcap_bytes(&generate(7, 300)), pcap_bytes(&generate(8, 300)));
    // A shorter capture is a prefix of a longer one with the same seed.
    let long = generate(7, 300);
    assert_eq!(generate(7, 100), long[..100]);
}

#[test]
fn the_mix_has_every_kind() {
    let frames = generate(1, 1000);
    let kinds: BTreeSet<Kind> = frames.iter().map(|f| f.kind).collect();
    for kind in [
        Kind::Ipv4Tcp,
        Kind::Ipv4Udp,
        Kind::Ipv4Dns,
        Kind::Ipv4Icmp,
        Kind::Ipv4Fragment,
        Kind::Ipv4Options,
        Kind::Ipv6Tcp,
        Kind::Ipv6Udp,
        Kind::Ipv6Dns,
        Kind::Icmpv6,
        Kind::Arp,
        Kind::Lldp,
        Kind::ShortEthernet,
        Kind::TruncatedVlan,
        Kind::Ipv4BadIhl,
        Kind::Ipv4IhlPastEnd,
        Kind::Ipv4Truncated,
        Kind::Ipv4BadTotalLen,
        Kind::TcpTruncated,
        Kind::Ipv6Truncated,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} frame");
    }
    assert!(frames.iter().any(|f| f.vlan_tags == 1));
    assert!(frames.iter().any(|f| f.vlan_tags == 2));
    let ports: BTreeSet<u16> = frames.iter().filter_map(|f| l4_ports(&f.data)).map(|(_, d)| d).collect();
    for port in [22, 53, 80, 443, 8080] {
        assert!(ports.contains(&port), "no packet to port {port}");
    }
    assert!(frames.iter().all(|f| f.data.len() <= 1514 + 8));
    let timestamps: Vec<_> = frames.iter().map(|f| f.timestamp).collect();
    assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "timestamps must increase");
}

#[test]
fn well_formed_frames_have_valid_checksums_and_sizes() {
    let frames = generate(1, 1000);
    let mut checked = 0;
    for (i, f) in frames.iter().enumerate() {
        if f.kind.is_malformed() {
            continue;
        }
        assert!((42..=1514).contains(&f.data.len()), "frame {i} ({:?}) has {} bytes", f.kind, f.data.len());
        if let Err(e) = verify_checksums(&f.data) {
            panic!("frame {i} ({:?}): {e}", f.kind);
        }
        checked += 1;
    }
    assert!(checked > 900);
    let sizes: BTreeSet<usize> = frames.iter().map(|f| f.data.len()).collect();
    assert!(sizes.contains(&42) && sizes.contains(&60) && sizes.contains(&1514), "{sizes:?}");
}

#[test]
fn malformed_frames_are_malformed() {
    for f in generate(3, 3000).iter().filter(|f| f.kind.is_malformed()) {
        let d = &f.data;
        match f.kind {
            Kind::ShortEthernet => assert!(d.len() < 14),
            Kind::TruncatedVlan => assert!(d.len() < 18 && d[12..14] == [0x81, 0x00]),
            Kind::Ipv4BadIhl => assert!(d[14 + 4 * f.vlan_tags as usize] & 0x0f < 5),
            Kind::Ipv4IhlPastEnd => assert!(d.len() < 14 + 4 * f.vlan_tags as usize + 60),
            Kind::Ipv4Truncated => assert!(d.len() < 14 + 4 * f.vlan_tags as usize + 20),
            Kind::Ipv4BadTotalLen => assert!(usize::from(u16::from_be_bytes([d[16], d[17]])) > d.len() - 14),
            Kind::TcpTruncated => assert!(d.len() < 14 + 4 * f.vlan_tags as usize + 40),
            Kind::Ipv6Truncated => assert!(d.len() < 14 + 4 * f.vlan_tags as usize + 40),
            _ => unreachable!(),
        }
    }
}

#[test]
fn cli_writes_the_bundled_sample() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join("capgen-seed1.pcap");
    let status = Command::new(env!("CARGO_BIN_EXE_capgen"))
        .args(["--seed", "1", "--count", "1000", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let written = std::fs::read(&out).unwrap();
    assert_eq!(written, pcap_bytes(&generate(1, 1000)));
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample.pcap");
    assert!(
        std::fs::read(&sample).unwrap() == written,
        "examples/sample.pcap is not `capgen --seed 1 --count 1000` any more: regenerate it (and tests/expected)"
    );
}

// ---------------------------------------------------------------- an independent checker

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Offset of the L3 header and the EtherType after the VLAN tags.
fn l3(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    while matches!(ethertype, 0x8100 | 0x88a8) {
        off += 4;
        ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    Some((off + 2, ethertype))
}

fn l4_ports(frame: &[u8]) -> Option<(u16, u16)> {
    let (off, ethertype) = l3(frame)?;
    let (proto, l4) = match ethertype {
        0x0800 if frame.len() >= off + 20 => (frame[off + 9], off + usize::from(frame[off] & 0x0f) * 4),
        0x86dd if frame.len() >= off + 40 => (frame[off + 6], off + 40),
        _ => return None,
    };
    if !matches!(proto, 6 | 17) || frame.len() < l4 + 4 {
        return None;
    }
    Some((u16::from_be_bytes([frame[l4], frame[l4 + 1]]), u16::from_be_bytes([frame[l4 + 2], frame[l4 + 3]])))
}

fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let (off, ethertype) = l3(frame).ok_or("short frame")?;
    match ethertype {
        0x0800 => {
            let ihl = usize::from(frame[off] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([frame[off + 2], frame[off + 3]]));
            if fold(sum16(&frame[off..off + ihl])) != 0xffff {
                return Err("bad IPv4 header checksum".into());
            }
            if off + total > frame.len() {
                return Err("IPv4 total length past the frame".into());
            }
            let frag = u16::from_be_bytes([frame[off + 6], frame[off + 7]]);
            if frag & 0x3fff != 0 {
                return Ok(()); // a fragment: the L4 checksum covers the whole datagram
            }
            let proto = frame[off + 9];
            let l4 = &frame[off + ihl..off + total];
            let mut pseudo = frame[off + 12..off + 20].to_vec();
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            match proto {
                17 if l4[6..8] == [0, 0] => Ok(()), // no UDP checksum: valid over IPv4
                6 | 17 if fold(sum16(&pseudo) + sum16(l4)) != 0xffff => Err(format!("bad L4 checksum (proto {proto})")),
                1 if fold(sum16(l4)) != 0xffff => Err("bad ICMP checksum".into()),
                _ => Ok(()),
            }
        }
        0x86dd => {
            let plen = usize::from(u16::from_be_bytes([frame[off + 4], frame[off + 5]]));
            let nh = frame[off + 6];
            if off + 40 + plen > frame.len() {
                return Err("IPv6 payload length past the frame".into());
            }
            let l4 = &frame[off + 40..off + 40 + plen];
            let mut pseudo = frame[off + 8..off + 40].to_vec();
            pseudo.extend_from_slice(&(plen as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, nh]);
            match nh {
                6 | 17 | 58 if fold(sum16(&pseudo) + sum16(l4)) != 0xffff => {
                    Err(format!("bad L4 checksum (next header {nh})"))
                }
                _ => Ok(()),
            }
        }
        0x0806 | 0x88cc => Ok(()),
        other => Err(format!("unexpected EtherType {other:#06x}")),
    }
}
