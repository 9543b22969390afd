//! Program contexts and how their fields map onto the runtime's layout.
//!
//! The kernel rewrites every context access of a verified program to the real structure
//! (`convert_ctx_access`). bpfkit's interpreter does the same translation at run time through
//! a table of [`CtxField`]s: the program sees `struct xdp_md` / `struct __sk_buff` at its uapi
//! offsets, and the values (full 64-bit pointers for `data` and `data_end`) live in a *shadow*
//! buffer laid out by the runtime. An access that matches no field, or writes a field the
//! program type may not write, ends the run with `invalid bpf_context access off=.. size=..`.

use bpfkit_interp::CtxField;

const fn field(off: u32, size: u8, shadow_off: u32, shadow_size: u8, writable: bool, narrow: bool) -> CtxField {
    CtxField { off, size, shadow_off, shadow_size, writable, narrow }
}

/// `sizeof(struct xdp_md)`.
pub const XDP_MD_SIZE: u32 = 24;

/// Shadow layout of an XDP context: `data`, `data_end`, `data_meta` as 64-bit addresses, then
/// `ingress_ifindex`, `rx_queue_index`, `egress_ifindex` as u32.
pub mod xdp_shadow {
    pub const DATA: usize = 0;
    pub const DATA_END: usize = 8;
    pub const DATA_META: usize = 16;
    pub const INGRESS_IFINDEX: usize = 24;
    pub const RX_QUEUE_INDEX: usize = 28;
    pub const EGRESS_IFINDEX: usize = 32;
    pub const SIZE: usize = 40;
}

/// `struct xdp_md` (read-only to programs).
pub static XDP_MD_FIELDS: [CtxField; 6] = [
    field(0, 4, xdp_shadow::DATA as u32, 8, false, false),
    field(4, 4, xdp_shadow::DATA_END as u32, 8, false, false),
    field(8, 4, xdp_shadow::DATA_META as u32, 8, false, false),
    field(12, 4, xdp_shadow::INGRESS_IFINDEX as u32, 4, false, true),
    field(16, 4, xdp_shadow::RX_QUEUE_INDEX as u32, 4, false, true),
    field(20, 4, xdp_shadow::EGRESS_IFINDEX as u32, 4, false, true),
];

/// Geometry of the buffer an XDP program runs over, as the kernel's `BPF_PROG_TEST_RUN` sets it
/// up: `XDP_PACKET_HEADROOM` bytes before the packet, a 4096-byte frame, of which the last
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` bytes are not usable by the packet.
pub mod xdp_geometry {
    /// `XDP_PACKET_HEADROOM`.
    pub const HEADROOM: usize = 256;
    /// The frame size (`PAGE_SIZE`).
    pub const FRAME: usize = 4096;
    /// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64.
    pub const SHARED_INFO: usize = 320;
    /// `sizeof(struct xdp_frame)`: `bpf_xdp_adjust_head`/`meta` keep this much at the start.
    pub const XDP_FRAME: usize = 40;
    /// The largest packet a test run accepts.
    pub const MAX_PACKET: usize = FRAME - HEADROOM - SHARED_INFO;
    /// `ETH_HLEN`: the smallest packet adjust_head/adjust_tail may leave.
    pub const ETH_HLEN: usize = 14;
    /// Largest metadata area.
    pub const MAX_META: usize = 32;
}

/// `sizeof(struct __sk_buff)`.
pub const SK_BUFF_SIZE: u32 = 192;

/// Shadow layout of an skb context (u32 fields at their uapi offsets, pointers appended).
pub mod skb_shadow {
    pub const DATA: usize = 192;
    pub const DATA_END: usize = 200;
    pub const DATA_META: usize = 208;
    pub const SIZE: usize = 216;
}

/// Offsets of the `struct __sk_buff` fields bpfkit provides.
pub mod skb_off {
    pub const LEN: u32 = 0;
    pub const PKT_TYPE: u32 = 4;
    pub const MARK: u32 = 8;
    pub const QUEUE_MAPPING: u32 = 12;
    pub const PROTOCOL: u32 = 16;
    pub const VLAN_PRESENT: u32 = 20;
    pub const VLAN_TCI: u32 = 24;
    pub const VLAN_PROTO: u32 = 28;
    pub const PRIORITY: u32 = 32;
    pub const INGRESS_IFINDEX: u32 = 36;
    pub const IFINDEX: u32 = 40;
    pub const TC_INDEX: u32 = 44;
    pub const CB: u32 = 48;
    pub const HASH: u32 = 68;
    pub const TC_CLASSID: u32 = 72;
    pub const DATA: u32 = 76;
    pub const DATA_END: u32 = 80;
    pub const NAPI_ID: u32 = 84;
    pub const DATA_META: u32 = 140;
    pub const WIRE_LEN: u32 = 160;
}

macro_rules! skb_fields {
    ($($off:expr, $rw:expr);* $(;)?) => {
        [$(field($off, 4, $off, 4, $rw, true)),*]
    };
}

/// `struct __sk_buff` as a socket filter sees it: scalars read-only except `cb[]`; no direct
/// packet access (the kernel forbids `data`/`data_end` there).
pub static SKB_SOCKET_FIELDS: [CtxField; 17] = skb_fields![
    skb_off::LEN, false; skb_off::PKT_TYPE, false; skb_off::MARK, false; skb_off::QUEUE_MAPPING, false;
    skb_off::PROTOCOL, false; skb_off::VLAN_PRESENT, false; skb_off::VLAN_TCI, false; skb_off::VLAN_PROTO, false;
    skb_off::PRIORITY, false; skb_off::INGRESS_IFINDEX, false; skb_off::IFINDEX, false;
    skb_off::CB, true; skb_off::CB + 4, true; skb_off::CB + 8, true; skb_off::CB + 12, true; skb_off::CB + 16, true;
    skb_off::HASH, false;
];

/// `struct __sk_buff` as a tc classifier/action sees it: `mark`, `priority`, `tc_index`,
/// `tc_classid` and `cb[]` writable, direct packet access through `data`/`data_end`/`data_meta`.
pub static SKB_TC_FIELDS: [CtxField; 24] = {
    let s = skb_fields![
        skb_off::LEN, false; skb_off::PKT_TYPE, false; skb_off::MARK, true; skb_off::QUEUE_MAPPING, false;
        skb_off::PROTOCOL, false; skb_off::VLAN_PRESENT, false; skb_off::VLAN_TCI, false; skb_off::VLAN_PROTO, false;
        skb_off::PRIORITY, true; skb_off::INGRESS_IFINDEX, false; skb_off::IFINDEX, false; skb_off::TC_INDEX, true;
        skb_off::CB, true; skb_off::CB + 4, true; skb_off::CB + 8, true; skb_off::CB + 12, true; skb_off::CB + 16, true;
        skb_off::HASH, false; skb_off::TC_CLASSID, true; skb_off::NAPI_ID, false;
    ];
    [
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        s[6],
        s[7],
        s[8],
        s[9],
        s[10],
        s[11],
        s[12],
        s[13],
        s[14],
        s[15],
        s[16],
        s[17],
        s[18],
        s[19],
        field(skb_off::DATA, 4, skb_shadow::DATA as u32, 8, false, false),
        field(skb_off::DATA_END, 4, skb_shadow::DATA_END as u32, 8, false, false),
        field(skb_off::DATA_META, 4, skb_shadow::DATA_META as u32, 8, false, false),
        field(skb_off::WIRE_LEN, 4, skb_off::WIRE_LEN, 4, false, true),
    ]
};
