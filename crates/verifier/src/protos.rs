//! Helper prototypes: what each argument register must hold and what `r0` holds after the
//! call (the kernel's `bpf_func_proto`), for every helper bpfkit runs. Numbers are the
//! kernel's `bpf_func_id`.

/// What a helper argument must be (the kernel's `enum bpf_arg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Not used by the helper.
    None,
    /// Any initialised value (`ARG_ANYTHING`).
    Anything,
    /// A map (`ARG_CONST_MAP_PTR`).
    MapPtr,
    /// Readable memory of the map's key size (`ARG_PTR_TO_MAP_KEY`).
    MapKey,
    /// Readable memory of the map's value size (`ARG_PTR_TO_MAP_VALUE`).
    MapValue,
    /// Writable memory of the map's value size, written by the helper (`ARG_PTR_TO_UNINIT_MAP_VALUE`).
    UninitMapValue,
    /// Readable memory whose size is the next argument (`ARG_PTR_TO_MEM | MEM_RDONLY`).
    Mem,
    /// Like `Mem`, or NULL when the size is 0 (`ARG_PTR_TO_MEM | PTR_MAYBE_NULL`).
    MemOrNull,
    /// Writable memory the helper fills, size in the next argument (`ARG_PTR_TO_UNINIT_MEM`).
    UninitMem,
    /// The size of the previous memory argument (`ARG_CONST_SIZE`).
    Size,
    /// The same, 0 allowed (`ARG_CONST_SIZE_OR_ZERO`).
    SizeOrZero,
    /// The program's context (`ARG_PTR_TO_CTX`).
    Ctx,
    /// A function (`ARG_PTR_TO_FUNC`).
    Func,
    /// A pointer to the stack, or NULL (`ARG_PTR_TO_STACK_OR_NULL`).
    StackOrNull,
    /// A NUL-terminated string in a read-only map value (`ARG_PTR_TO_CONST_STR`).
    ConstStr,
    /// Memory returned by `bpf_ringbuf_reserve`, released by this call (`ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`).
    ReleaseRingbufMem,
    /// A constant size for memory the helper returns (`ARG_CONST_ALLOC_SIZE_OR_ZERO`).
    AllocSize,
}

/// What `r0` holds after the call (`enum bpf_return_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A scalar (`RET_INTEGER`).
    Integer,
    /// Nothing (`RET_VOID`): r0 is left unreadable.
    Void,
    /// A value of the map in argument 1, or NULL (`RET_PTR_TO_MAP_VALUE_OR_NULL`).
    MapValueOrNull,
    /// Memory of the size in argument 2, or NULL, to release (`RET_PTR_TO_RINGBUF_MEM_OR_NULL`).
    RingbufMemOrNull,
}

/// A helper's prototype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proto {
    pub name: &'static str,
    pub args: [Arg; 5],
    pub ret: Ret,
}

const fn p(name: &'static str, args: [Arg; 5], ret: Ret) -> Proto {
    Proto { name, args, ret }
}

use Arg::{Anything as A, None as N};

/// The prototype of helper `id`, if bpfkit knows it.
pub fn helper(id: i32) -> Option<Proto> {
    Some(match id {
        1 => p("bpf_map_lookup_elem", [Arg::MapPtr, Arg::MapKey, N, N, N], Ret::MapValueOrNull),
        2 => p("bpf_map_update_elem", [Arg::MapPtr, Arg::MapKey, Arg::MapValue, A, N], Ret::Integer),
        3 => p("bpf_map_delete_elem", [Arg::MapPtr, Arg::MapKey, N, N, N], Ret::Integer),
        5 => p("bpf_ktime_get_ns", [N; 5], Ret::Integer),
        6 => p("bpf_trace_printk", [Arg::Mem, Arg::Size, A, A, A], Ret::Integer),
        7 => p("bpf_get_prandom_u32", [N; 5], Ret::Integer),
        8 => p("bpf_get_smp_processor_id", [N; 5], Ret::Integer),
        9 => p("bpf_skb_store_bytes", [Arg::Ctx, A, Arg::Mem, Arg::Size, A], Ret::Integer),
        10 => p("bpf_l3_csum_replace", [Arg::Ctx, A, A, A, A], Ret::Integer),
        12 => p("bpf_tail_call", [Arg::Ctx, Arg::MapPtr, A, N, N], Ret::Integer),
        26 => p("bpf_skb_load_bytes", [Arg::Ctx, A, Arg::UninitMem, Arg::Size, N], Ret::Integer),
        28 => p("bpf_csum_diff", [Arg::MemOrNull, Arg::SizeOrZero, Arg::MemOrNull, Arg::SizeOrZero, A], Ret::Integer),
        44 => p("bpf_xdp_adjust_head", [Arg::Ctx, A, N, N, N], Ret::Integer),
        54 => p("bpf_xdp_adjust_meta", [Arg::Ctx, A, N, N, N], Ret::Integer),
        65 => p("bpf_xdp_adjust_tail", [Arg::Ctx, A, N, N, N], Ret::Integer),
        68 => p("bpf_skb_load_bytes_relative", [Arg::Ctx, A, Arg::UninitMem, Arg::Size, A], Ret::Integer),
        87 => p("bpf_map_push_elem", [Arg::MapPtr, Arg::MapValue, A, N, N], Ret::Integer),
        88 => p("bpf_map_pop_elem", [Arg::MapPtr, Arg::UninitMapValue, N, N, N], Ret::Integer),
        89 => p("bpf_map_peek_elem", [Arg::MapPtr, Arg::UninitMapValue, N, N, N], Ret::Integer),
        118 => p("bpf_jiffies64", [N; 5], Ret::Integer),
        125 => p("bpf_ktime_get_boot_ns", [N; 5], Ret::Integer),
        130 => p("bpf_ringbuf_output", [Arg::MapPtr, Arg::Mem, Arg::SizeOrZero, A, N], Ret::Integer),
        131 => p("bpf_ringbuf_reserve", [Arg::MapPtr, Arg::AllocSize, A, N, N], Ret::RingbufMemOrNull),
        132 => p("bpf_ringbuf_submit", [Arg::ReleaseRingbufMem, A, N, N, N], Ret::Void),
        133 => p("bpf_ringbuf_discard", [Arg::ReleaseRingbufMem, A, N, N, N], Ret::Void),
        134 => p("bpf_ringbuf_query", [Arg::MapPtr, A, N, N, N], Ret::Integer),
        160 => p("bpf_ktime_get_coarse_ns", [N; 5], Ret::Integer),
        165 => p(
            "bpf_snprintf",
            [Arg::MemOrNull, Arg::SizeOrZero, Arg::ConstStr, Arg::MemOrNull, Arg::SizeOrZero],
            Ret::Integer,
        ),
        181 => p("bpf_loop", [A, Arg::Func, Arg::StackOrNull, A, N], Ret::Integer),
        182 => p("bpf_strncmp", [Arg::Mem, Arg::Size, Arg::ConstStr, N, N], Ret::Integer),
        _ => return None,
    })
}
