//! The helpers bpfkit provides, by the kernel's `bpf_func_id` numbers, so that objects built
//! against libbpf's headers run unchanged.
//!
//! Errors a BPF program can handle are returned as negative errno values, as in the kernel;
//! misuse the kernel's verifier would have refused (a pointer that is not a map, memory the
//! program does not own) ends the run with an error naming the helper.

use crate::context::{xdp_geometry as geo, xdp_shadow};
use crate::env::{CtxKind, HZ, RunEnv};
use crate::printf;
use bpfkit_interp::{HelperCtx, HelperError, Helpers, Program, RegionKind};
use std::sync::Arc;

/// `bpf_func_id` numbers.
pub mod id {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const KTIME_GET_NS: i32 = 5;
    pub const TRACE_PRINTK: i32 = 6;
    pub const GET_PRANDOM_U32: i32 = 7;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const TAIL_CALL: i32 = 12;
    pub const SKB_STORE_BYTES: i32 = 9;
    pub const L3_CSUM_REPLACE: i32 = 10;
    pub const SKB_LOAD_BYTES: i32 = 26;
    pub const SKB_LOAD_BYTES_RELATIVE: i32 = 68;
    pub const CSUM_DIFF: i32 = 28;
    pub const XDP_ADJUST_HEAD: i32 = 44;
    pub const XDP_ADJUST_META: i32 = 54;
    pub const XDP_ADJUST_TAIL: i32 = 65;
    pub const MAP_PUSH_ELEM: i32 = 87;
    pub const MAP_POP_ELEM: i32 = 88;
    pub const MAP_PEEK_ELEM: i32 = 89;
    pub const JIFFIES64: i32 = 118;
    pub const KTIME_GET_BOOT_NS: i32 = 125;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
    pub const RINGBUF_DISCARD: i32 = 133;
    pub const RINGBUF_QUERY: i32 = 134;
    pub const KTIME_GET_COARSE_NS: i32 = 160;
    pub const SNPRINTF: i32 = 165;
    pub const LOOP: i32 = 181;
    pub const STRNCMP: i32 = 182;
}

const EINVAL: u64 = (-22i64) as u64;
const EACCES: u64 = (-13i64) as u64;
const EFAULT: u64 = (-14i64) as u64;

fn env<'c>(ctx: &'c mut HelperCtx<'_>) -> Result<&'c mut RunEnv, HelperError> {
    ctx.env::<RunEnv>().ok_or_else(|| HelperError::failed("no bpfkit runtime state for this run"))
}

fn map_of(ctx: &mut HelperCtx<'_>, token: u64) -> Result<(Arc<bpfkit_maps::Map>, usize), HelperError> {
    let e = env(ctx)?;
    let cpu = e.cpu as usize;
    let m = e.map(token).ok_or_else(|| HelperError::failed(format!("{token:#x} is not a map")))?;
    if m.map_type() == bpfkit_maps::MapType::InsnArray {
        // The kernel's verifier refuses every helper on an insn_array (-EINVAL).
        return Err(HelperError::failed("insn_array maps cannot be used by helpers"));
    }
    Ok((m, cpu))
}

fn errno(e: bpfkit_maps::MapError) -> u64 {
    i64::from(e.errno()) as u64
}

// Every run holds an epoch guard (`RunEnv::guard`) from start to end, so map memory a helper
// hands to the program is not reused before the run ends; helpers pin again (guards nest).

/// The helpers every bpfkit program gets.
pub fn standard() -> Helpers {
    let mut h = Helpers::new();
    h.register(id::MAP_LOOKUP_ELEM, "bpf_map_lookup_elem", |ctx, [map, key, ..]| {
        let (m, cpu) = map_of(ctx, map)?;
        let g = bpfkit_maps::pin();
        let key = ctx.slice(key, m.spec().key_size as usize)?;
        if m.map_type().is_map_in_map() {
            // The inner map's token (its address): helpers resolve it through the runtime.
            return Ok(m.bpf_lookup_inner(key, &g).map_or(0, |inner| inner as *const bpfkit_maps::Map as u64));
        }
        Ok(m.bpf_lookup(key, cpu, &g).map_or(0, |p| p as u64))
    });
    h.register(id::MAP_UPDATE_ELEM, "bpf_map_update_elem", |ctx, [map, key, value, flags, _]| {
        let (m, cpu) = map_of(ctx, map)?;
        let g = bpfkit_maps::pin();
        let (ks, vs) = (m.spec().key_size as usize, m.spec().value_size as usize);
        let key = ctx.slice(key, ks)?;
        let value = ctx.slice(value, vs)?;
        Ok(m.bpf_update(key, value, flags, cpu, &g).map_or_else(errno, |()| 0))
    });
    h.register(id::MAP_DELETE_ELEM, "bpf_map_delete_elem", |ctx, [map, key, ..]| {
        let (m, _) = map_of(ctx, map)?;
        let g = bpfkit_maps::pin();
        let key = ctx.slice(key, m.spec().key_size as usize)?;
        Ok(m.bpf_delete(key, &g).map_or_else(errno, |()| 0))
    });
    h.register(id::MAP_PUSH_ELEM, "bpf_map_push_elem", |ctx, [map, value, flags, ..]| {
        let (m, _) = map_of(ctx, map)?;
        let value = ctx.slice(value, m.spec().value_size as usize)?;
        Ok(m.push(value, flags).map_or_else(errno, |()| 0))
    });
    for (hid, name, pop) in
        [(id::MAP_POP_ELEM, "bpf_map_pop_elem", true), (id::MAP_PEEK_ELEM, "bpf_map_peek_elem", false)]
    {
        h.register(hid, name, move |ctx, [map, value, ..]| {
            let (m, _) = map_of(ctx, map)?;
            let out = ctx.slice_mut(value, m.spec().value_size as usize)?;
            let r = if pop { m.pop_into(out) } else { m.peek_into(out) };
            Ok(r.map_or_else(errno, |()| 0))
        });
    }
    h.register(id::RINGBUF_OUTPUT, "bpf_ringbuf_output", |ctx, [map, data, size, flags, _]| {
        let (m, _) = map_of(ctx, map)?;
        let rb =
            m.ringbuf().ok_or_else(|| HelperError::failed("bpf_ringbuf_output on a map that is not a ring buffer"))?;
        let data = ctx.slice(data, size as usize)?;
        Ok(rb.output(data, flags).map_or_else(errno, |()| 0))
    });
    h.register(id::RINGBUF_RESERVE, "bpf_ringbuf_reserve", |ctx, [map, size, flags, ..]| {
        let (m, _) = map_of(ctx, map)?;
        let rb =
            m.ringbuf().ok_or_else(|| HelperError::failed("bpf_ringbuf_reserve on a map that is not a ring buffer"))?;
        Ok(rb.reserve(size, flags).map_or(0, |p| p as u64))
    });
    for (hid, name, submit) in
        [(id::RINGBUF_SUBMIT, "bpf_ringbuf_submit", true), (id::RINGBUF_DISCARD, "bpf_ringbuf_discard", false)]
    {
        h.register(hid, name, move |ctx, [sample, flags, ..]| {
            let e = env(ctx)?;
            let rings: Vec<Arc<bpfkit_maps::Map>> = e.maps.iter().filter(|m| m.ringbuf().is_some()).cloned().collect();
            for m in rings {
                let rb = m.ringbuf().expect("filtered on ring buffers");
                let r = if submit { rb.submit(sample as *mut u8, flags) } else { rb.discard(sample as *mut u8, flags) };
                if r.is_ok() {
                    return Ok(0);
                }
            }
            Err(HelperError::failed(format!("{sample:#x} is not a reserved ring buffer record")))
        });
    }
    h.register(id::RINGBUF_QUERY, "bpf_ringbuf_query", |ctx, [map, flags, ..]| {
        let (m, _) = map_of(ctx, map)?;
        Ok(m.ringbuf().map_or(0, |rb| rb.query(flags)))
    });

    h.register(id::KTIME_GET_NS, "bpf_ktime_get_ns", |ctx, _| Ok(env(ctx)?.clock.now_ns()));
    h.register(id::KTIME_GET_BOOT_NS, "bpf_ktime_get_boot_ns", |ctx, _| Ok(env(ctx)?.clock.now_ns()));
    h.register(id::KTIME_GET_COARSE_NS, "bpf_ktime_get_coarse_ns", |ctx, _| Ok(env(ctx)?.clock.now_ns()));
    h.register(id::JIFFIES64, "bpf_jiffies64", |ctx, _| Ok(env(ctx)?.clock.now_ns() / (1_000_000_000 / HZ)));
    h.register(id::GET_PRANDOM_U32, "bpf_get_prandom_u32", |ctx, _| Ok(u64::from(env(ctx)?.prandom())));
    h.register(id::GET_SMP_PROCESSOR_ID, "bpf_get_smp_processor_id", |ctx, _| Ok(u64::from(env(ctx)?.cpu)));

    h.register(id::TRACE_PRINTK, "bpf_trace_printk", |ctx, [fmt, fmt_size, a1, a2, a3]| {
        let text = match printf::format_bytes(ctx, fmt, fmt_size).and_then(|f| printf::format(ctx, f, &[a1, a2, a3])) {
            Ok(t) => t,
            Err(_) => return Ok(EINVAL),
        };
        let n = text.len() as u64;
        env(ctx)?.trace.push(text);
        Ok(n)
    });
    h.register(id::SNPRINTF, "bpf_snprintf", |ctx, [out, out_size, fmt, data, data_len]| {
        if data_len % 8 != 0 || data_len > 12 * 8 {
            return Ok(EINVAL);
        }
        let args: Vec<u64> = ctx
            .slice(data, data_len as usize)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let text =
            match ctx.c_str(fmt, 1 << 16).map_err(|_| ()).and_then(|f| printf::format(ctx, f, &args).map_err(|_| ())) {
                Ok(t) => t,
                Err(()) => return Ok(EINVAL),
            };
        if out_size > 0 {
            let buf = ctx.slice_mut(out, out_size as usize)?;
            let n = text.len().min(buf.len() - 1);
            buf[..n].copy_from_slice(&text.as_bytes()[..n]);
            buf[n] = 0;
        }
        Ok(text.len() as u64 + 1)
    });
    h.register(id::CSUM_DIFF, "bpf_csum_diff", |ctx, [from, from_size, to, to_size, seed]| {
        if from_size % 4 != 0 || to_size % 4 != 0 || from_size.saturating_add(to_size) > 512 {
            return Ok(EINVAL);
        }
        let words = |addr: u64, size: u64| -> Result<Vec<u32>, HelperError> {
            Ok(ctx
                .slice(addr, size as usize)?
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect())
        };
        let mut sum = u64::from(seed as u32);
        for w in words(from, from_size)? {
            sum += u64::from(!w);
        }
        for w in words(to, to_size)? {
            sum += u64::from(w);
        }
        while sum >> 32 != 0 {
            sum = (sum & 0xffff_ffff) + (sum >> 32);
        }
        Ok(sum)
    });
    h.register(id::STRNCMP, "bpf_strncmp", |ctx, [s1, s1_size, s2, ..]| {
        let a = ctx.slice(s1, s1_size as usize)?.to_vec();
        let b = ctx.c_str(s2, (s1_size as usize).saturating_add(1))?;
        for (i, &x) in a.iter().enumerate() {
            let y = b.get(i).copied().unwrap_or(0);
            if x != y || x == 0 {
                return Ok((i64::from(x) - i64::from(y)) as u64);
            }
        }
        Ok(0)
    });
    h.register(id::XDP_ADJUST_HEAD, "bpf_xdp_adjust_head", |ctx, [_, delta, ..]| {
        Ok(xdp_adjust(ctx, Edge::Head, delta as i32))
    });
    h.register(id::XDP_ADJUST_META, "bpf_xdp_adjust_meta", |ctx, [_, delta, ..]| {
        Ok(xdp_adjust(ctx, Edge::Meta, delta as i32))
    });
    h.register(id::XDP_ADJUST_TAIL, "bpf_xdp_adjust_tail", |ctx, [_, delta, ..]| {
        Ok(xdp_adjust(ctx, Edge::Tail, delta as i32))
    });
    h.register(id::SKB_LOAD_BYTES, "bpf_skb_load_bytes", |ctx, [_, offset, to, len, _]| {
        let CtxKind::Skb { data_off } = env(ctx)?.ctx else {
            return Err(HelperError::failed("bpf_skb_load_bytes needs an skb context"));
        };
        skb_load(ctx, data_off as u64, offset, to, len)
    });
    h.register(id::SKB_LOAD_BYTES_RELATIVE, "bpf_skb_load_bytes_relative", |ctx, [_, offset, to, len, start]| {
        if !matches!(env(ctx)?.ctx, CtxKind::Skb { .. }) {
            return Err(HelperError::failed("bpf_skb_load_bytes_relative needs an skb context"));
        }
        // BPF_HDR_START_MAC (0): the Ethernet header; BPF_HDR_START_NET (1): the IP header.
        let base = match start {
            0 => 0,
            1 => geo::ETH_HLEN as u64,
            _ => {
                ctx.slice_mut(to, len as usize)?.fill(0);
                return Ok(EFAULT);
            }
        };
        skb_load(ctx, base, offset, to, len)
    });
    h.register(id::SKB_STORE_BYTES, "bpf_skb_store_bytes", |ctx, [_, offset, from, len, flags]| {
        let CtxKind::Skb { data_off } = env(ctx)?.ctx else {
            return Err(HelperError::failed("bpf_skb_store_bytes needs an skb context"));
        };
        // BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH: nothing else.
        if flags & !3 != 0 {
            return Ok(EINVAL);
        }
        let bytes = ctx.slice(from, len as usize)?.to_vec();
        let Some((_, frame)) = ctx.alloc_mut(RegionKind::Packet) else { return Ok(EFAULT) };
        if offset > 0xffff {
            return Ok(EFAULT);
        }
        let start = data_off as u64 + offset;
        if start.saturating_add(len) > frame.len() as u64 {
            return Ok(EFAULT);
        }
        frame[start as usize..(start + len) as usize].copy_from_slice(&bytes);
        Ok(0)
    });
    h.register(id::L3_CSUM_REPLACE, "bpf_l3_csum_replace", |ctx, [_, offset, from, to, flags]| {
        let CtxKind::Skb { data_off } = env(ctx)?.ctx else {
            return Err(HelperError::failed("bpf_l3_csum_replace needs an skb context"));
        };
        // The low 4 bits are the field size (0 = `to` is a csum_diff result); no other flags.
        if flags & !0xf != 0 {
            return Ok(EINVAL);
        }
        let Some((_, frame)) = ctx.alloc_mut(RegionKind::Packet) else { return Ok(EFAULT) };
        if offset > 0xffff {
            return Ok(EFAULT);
        }
        let at = data_off as u64 + offset;
        if at + 2 > frame.len() as u64 {
            return Ok(EFAULT);
        }
        let at = at as usize;
        let sum = u16::from_le_bytes([frame[at], frame[at + 1]]);
        let new = match flags & 0xf {
            0 if from != 0 => return Ok(EINVAL),
            0 => csum_fold(csum_add(to as u32, !u32::from(sum))),
            2 => csum_fold(csum_add(csum_add(!u32::from(sum), !u32::from(from as u16)), u32::from(to as u16))),
            4 => csum_fold(csum_add(csum_add(!u32::from(sum), !(from as u32)), to as u32)),
            _ => return Ok(EINVAL),
        };
        frame[at..at + 2].copy_from_slice(&new.to_le_bytes());
        Ok(0)
    });
    h.register_loop(id::LOOP);
    h.register_tail_call(id::TAIL_CALL, |ctx, map, index| {
        // The index is a u32: the kernel (and its JITs) ignore its upper 32 bits.
        let (m, _) = map_of(ctx, map).ok()?;
        let g = bpfkit_maps::pin();
        let entry = m.bpf_tail_call_target(index as u32, &g)?;
        Arc::clone(&entry.handle).downcast::<Program>().ok()
    });
    h
}

/// Copies `len` bytes at `base + offset` of the frame into `to`; out of range, zeroes `to` and
/// returns `-EFAULT`, as the kernel does.
fn skb_load(ctx: &mut HelperCtx<'_>, base: u64, offset: u64, to: u64, len: u64) -> Result<u64, HelperError> {
    let bytes = match ctx.alloc_mut(RegionKind::Packet) {
        Some((_, frame))
            if offset <= 0xffff && len > 0 && (base + offset).saturating_add(len) <= frame.len() as u64 =>
        {
            Some(frame[(base + offset) as usize..(base + offset + len) as usize].to_vec())
        }
        _ => None,
    };
    let dst = ctx.slice_mut(to, len as usize)?;
    match bytes {
        Some(b) => {
            dst.copy_from_slice(&b);
            Ok(0)
        }
        None => {
            dst.fill(0);
            Ok(EFAULT)
        }
    }
}

/// Ones'-complement addition of 32-bit partial sums (end-around carry).
fn csum_add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s.wrapping_add(u32::from(carry))
}

/// Folds a 32-bit partial sum to the complemented 16-bit checksum.
fn csum_fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    Head,
    Meta,
    Tail,
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// `bpf_xdp_adjust_head` / `_meta` / `_tail` with the kernel's bounds: the head keeps
/// `sizeof(struct xdp_frame)` bytes at the start of the frame and at least `ETH_HLEN` bytes of
/// packet; the tail stays before the frame's `skb_shared_info`; metadata is at most 32 bytes, a
/// multiple of 4.
fn xdp_adjust(ctx: &mut HelperCtx<'_>, edge: Edge, delta: i32) -> u64 {
    let Some(shadow) = ctx.ctx_shadow_mut() else { return EINVAL };
    let (data, end, meta) = (
        read_u64(shadow, xdp_shadow::DATA),
        read_u64(shadow, xdp_shadow::DATA_END),
        read_u64(shadow, xdp_shadow::DATA_META),
    );
    let Some((alloc, _, _)) = ctx.window(RegionKind::Packet) else { return EINVAL };
    let hard_start = alloc;
    let frame_start = hard_start + geo::XDP_FRAME as u64;
    let hard_end = hard_start + (geo::FRAME - geo::SHARED_INFO) as u64;
    let d = i64::from(delta);
    let (mut new_data, mut new_end, mut new_meta) = (data, end, meta);
    match edge {
        Edge::Head => {
            let n = data as i64 + d;
            if n < frame_start as i64 || n > end as i64 - geo::ETH_HLEN as i64 {
                return EINVAL;
            }
            let metalen = data - meta;
            new_data = n as u64;
            new_meta = new_data - metalen;
            if metalen > 0 && delta != 0 {
                let Some((_, buf)) = ctx.alloc_mut(RegionKind::Packet) else { return EINVAL };
                let from = (meta - alloc) as usize;
                let to = (new_meta - alloc) as usize;
                buf.copy_within(from..from + metalen as usize, to);
            }
        }
        Edge::Meta => {
            let n = meta as i64 + d;
            if n < frame_start as i64 || n > data as i64 {
                return EINVAL;
            }
            let metalen = data - n as u64;
            if metalen as usize > geo::MAX_META || !metalen.is_multiple_of(4) {
                return EACCES;
            }
            new_meta = n as u64;
        }
        Edge::Tail => {
            let n = end as i64 + d;
            if n > hard_end as i64 || n < (data + geo::ETH_HLEN as u64) as i64 {
                return EINVAL;
            }
            new_end = n as u64;
            if new_end > end {
                let Some((_, buf)) = ctx.alloc_mut(RegionKind::Packet) else { return EINVAL };
                buf[(end - alloc) as usize..(new_end - alloc) as usize].fill(0);
            }
        }
    }
    if !ctx.set_window(RegionKind::Packet, new_meta - alloc, new_end - new_meta) {
        return EINVAL;
    }
    let Some(shadow) = ctx.ctx_shadow_mut() else { return EINVAL };
    shadow[xdp_shadow::DATA..xdp_shadow::DATA + 8].copy_from_slice(&new_data.to_le_bytes());
    shadow[xdp_shadow::DATA_END..xdp_shadow::DATA_END + 8].copy_from_slice(&new_end.to_le_bytes());
    shadow[xdp_shadow::DATA_META..xdp_shadow::DATA_META + 8].copy_from_slice(&new_meta.to_le_bytes());
    0
}
