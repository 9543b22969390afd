//! libbpf's `SEC()` conventions: which section names are programs, and of which type.
//!
//! The table follows libbpf's `section_defs` (names, prefixes and program types); bpfkit runs
//! the packet and raw types ([`ProgType::is_supported`]) and names every other one in its
//! "not supported yet" error.

/// Kernel program types (`enum bpf_prog_type`), as libbpf names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgType {
    SocketFilter,
    Kprobe,
    SchedCls,
    SchedAct,
    Tracepoint,
    Xdp,
    PerfEvent,
    CgroupSkb,
    CgroupSock,
    LwtIn,
    LwtOut,
    LwtXmit,
    SockOps,
    SkSkb,
    CgroupDevice,
    SkMsg,
    RawTracepoint,
    CgroupSockAddr,
    LwtSeg6local,
    LircMode2,
    SkReuseport,
    FlowDissector,
    CgroupSysctl,
    RawTracepointWritable,
    CgroupSockopt,
    Tracing,
    StructOps,
    Ext,
    Lsm,
    SkLookup,
    Syscall,
    Netfilter,
}

impl ProgType {
    /// The kernel's `enum bpf_prog_type` value.
    pub const fn number(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::Kprobe => 2,
            ProgType::SchedCls => 3,
            ProgType::SchedAct => 4,
            ProgType::Tracepoint => 5,
            ProgType::Xdp => 6,
            ProgType::PerfEvent => 7,
            ProgType::CgroupSkb => 8,
            ProgType::CgroupSock => 9,
            ProgType::LwtIn => 10,
            ProgType::LwtOut => 11,
            ProgType::LwtXmit => 12,
            ProgType::SockOps => 13,
            ProgType::SkSkb => 14,
            ProgType::CgroupDevice => 15,
            ProgType::SkMsg => 16,
            ProgType::RawTracepoint => 17,
            ProgType::CgroupSockAddr => 18,
            ProgType::LwtSeg6local => 19,
            ProgType::LircMode2 => 20,
            ProgType::SkReuseport => 21,
            ProgType::FlowDissector => 22,
            ProgType::CgroupSysctl => 23,
            ProgType::RawTracepointWritable => 24,
            ProgType::CgroupSockopt => 25,
            ProgType::Tracing => 26,
            ProgType::StructOps => 27,
            ProgType::Ext => 28,
            ProgType::Lsm => 29,
            ProgType::SkLookup => 30,
            ProgType::Syscall => 31,
            ProgType::Netfilter => 32,
        }
    }

    /// libbpf's name of the type (`bpftool prog` prints these).
    pub const fn name(self) -> &'static str {
        match self {
            ProgType::SocketFilter => "socket_filter",
            ProgType::Kprobe => "kprobe",
            ProgType::SchedCls => "sched_cls",
            ProgType::SchedAct => "sched_act",
            ProgType::Tracepoint => "tracepoint",
            ProgType::Xdp => "xdp",
            ProgType::PerfEvent => "perf_event",
            ProgType::CgroupSkb => "cgroup_skb",
            ProgType::CgroupSock => "cgroup_sock",
            ProgType::LwtIn => "lwt_in",
            ProgType::LwtOut => "lwt_out",
            ProgType::LwtXmit => "lwt_xmit",
            ProgType::SockOps => "sock_ops",
            ProgType::SkSkb => "sk_skb",
            ProgType::CgroupDevice => "cgroup_device",
            ProgType::SkMsg => "sk_msg",
            ProgType::RawTracepoint => "raw_tracepoint",
            ProgType::CgroupSockAddr => "cgroup_sock_addr",
            ProgType::LwtSeg6local => "lwt_seg6local",
            ProgType::LircMode2 => "lirc_mode2",
            ProgType::SkReuseport => "sk_reuseport",
            ProgType::FlowDissector => "flow_dissector",
            ProgType::CgroupSysctl => "cgroup_sysctl",
            ProgType::RawTracepointWritable => "raw_tracepoint_writable",
            ProgType::CgroupSockopt => "cgroup_sockopt",
            ProgType::Tracing => "tracing",
            ProgType::StructOps => "struct_ops",
            ProgType::Ext => "ext",
            ProgType::Lsm => "lsm",
            ProgType::SkLookup => "sk_lookup",
            ProgType::Syscall => "syscall",
            ProgType::Netfilter => "netfilter",
        }
    }

    /// Whether bpfkit can run programs of this type: XDP, socket filters, tc classifiers and
    /// actions (over a `__sk_buff` subset) and `syscall` programs (raw context).
    pub const fn is_supported(self) -> bool {
        matches!(
            self,
            ProgType::Xdp | ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct | ProgType::Syscall
        )
    }
}

impl std::fmt::Display for ProgType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a table entry matches a section name.
#[derive(Clone, Copy)]
enum Match {
    /// The name equals the entry, or continues it after a `/` (`xdp`, `xdp/foo`).
    Exact,
    /// The name starts with the entry (`kprobe/` + function).
    Prefix,
}

/// libbpf's section table: (name, how it matches, program type).
const SECTIONS: &[(&str, Match, ProgType)] = &[
    ("socket", Match::Exact, ProgType::SocketFilter),
    ("sk_reuseport/migrate", Match::Exact, ProgType::SkReuseport),
    ("sk_reuseport", Match::Exact, ProgType::SkReuseport),
    ("kprobe/", Match::Prefix, ProgType::Kprobe),
    ("uprobe/", Match::Prefix, ProgType::Kprobe),
    ("uprobe.s/", Match::Prefix, ProgType::Kprobe),
    ("kretprobe/", Match::Prefix, ProgType::Kprobe),
    ("uretprobe/", Match::Prefix, ProgType::Kprobe),
    ("uretprobe.s/", Match::Prefix, ProgType::Kprobe),
    ("kprobe.multi/", Match::Prefix, ProgType::Kprobe),
    ("kretprobe.multi/", Match::Prefix, ProgType::Kprobe),
    ("kprobe.session/", Match::Prefix, ProgType::Kprobe),
    ("uprobe.multi/", Match::Prefix, ProgType::Kprobe),
    ("uretprobe.multi/", Match::Prefix, ProgType::Kprobe),
    ("uprobe.session/", Match::Prefix, ProgType::Kprobe),
    ("ksyscall/", Match::Prefix, ProgType::Kprobe),
    ("kretsyscall/", Match::Prefix, ProgType::Kprobe),
    ("usdt/", Match::Prefix, ProgType::Kprobe),
    ("kprobe", Match::Exact, ProgType::Kprobe),
    ("uprobe", Match::Exact, ProgType::Kprobe),
    ("tc/ingress", Match::Exact, ProgType::SchedCls),
    ("tc/egress", Match::Exact, ProgType::SchedCls),
    ("tcx/ingress", Match::Exact, ProgType::SchedCls),
    ("tcx/egress", Match::Exact, ProgType::SchedCls),
    ("netkit/primary", Match::Exact, ProgType::SchedCls),
    ("netkit/peer", Match::Exact, ProgType::SchedCls),
    ("tc", Match::Exact, ProgType::SchedCls),
    ("classifier", Match::Exact, ProgType::SchedCls),
    ("action", Match::Exact, ProgType::SchedAct),
    ("tracepoint/", Match::Prefix, ProgType::Tracepoint),
    ("tp/", Match::Prefix, ProgType::Tracepoint),
    ("raw_tracepoint/", Match::Prefix, ProgType::RawTracepoint),
    ("raw_tp/", Match::Prefix, ProgType::RawTracepoint),
    ("raw_tracepoint.w/", Match::Prefix, ProgType::RawTracepointWritable),
    ("raw_tp.w/", Match::Prefix, ProgType::RawTracepointWritable),
    ("tp_btf/", Match::Prefix, ProgType::Tracing),
    ("fentry/", Match::Prefix, ProgType::Tracing),
    ("fmod_ret/", Match::Prefix, ProgType::Tracing),
    ("fexit/", Match::Prefix, ProgType::Tracing),
    ("fentry.s/", Match::Prefix, ProgType::Tracing),
    ("fmod_ret.s/", Match::Prefix, ProgType::Tracing),
    ("fexit.s/", Match::Prefix, ProgType::Tracing),
    ("freplace/", Match::Prefix, ProgType::Ext),
    ("lsm/", Match::Prefix, ProgType::Lsm),
    ("lsm.s/", Match::Prefix, ProgType::Lsm),
    ("lsm_cgroup/", Match::Prefix, ProgType::Lsm),
    ("iter/", Match::Prefix, ProgType::Tracing),
    ("iter.s/", Match::Prefix, ProgType::Tracing),
    ("syscall", Match::Exact, ProgType::Syscall),
    ("xdp.frags/devmap", Match::Exact, ProgType::Xdp),
    ("xdp/devmap", Match::Exact, ProgType::Xdp),
    ("xdp.frags/cpumap", Match::Exact, ProgType::Xdp),
    ("xdp/cpumap", Match::Exact, ProgType::Xdp),
    ("xdp.frags", Match::Exact, ProgType::Xdp),
    ("xdp", Match::Exact, ProgType::Xdp),
    ("perf_event", Match::Exact, ProgType::PerfEvent),
    ("lwt_in", Match::Exact, ProgType::LwtIn),
    ("lwt_out", Match::Exact, ProgType::LwtOut),
    ("lwt_xmit", Match::Exact, ProgType::LwtXmit),
    ("lwt_seg6local", Match::Exact, ProgType::LwtSeg6local),
    ("sockops", Match::Exact, ProgType::SockOps),
    ("sk_skb/stream_parser", Match::Exact, ProgType::SkSkb),
    ("sk_skb/stream_verdict", Match::Exact, ProgType::SkSkb),
    ("sk_skb/verdict", Match::Exact, ProgType::SkSkb),
    ("sk_skb", Match::Exact, ProgType::SkSkb),
    ("sk_msg", Match::Exact, ProgType::SkMsg),
    ("lirc_mode2", Match::Exact, ProgType::LircMode2),
    ("flow_dissector", Match::Exact, ProgType::FlowDissector),
    ("cgroup_skb/ingress", Match::Exact, ProgType::CgroupSkb),
    ("cgroup_skb/egress", Match::Exact, ProgType::CgroupSkb),
    ("cgroup/skb", Match::Exact, ProgType::CgroupSkb),
    ("cgroup/sock_create", Match::Exact, ProgType::CgroupSock),
    ("cgroup/sock_release", Match::Exact, ProgType::CgroupSock),
    ("cgroup/sock", Match::Exact, ProgType::CgroupSock),
    ("cgroup/post_bind4", Match::Exact, ProgType::CgroupSock),
    ("cgroup/post_bind6", Match::Exact, ProgType::CgroupSock),
    ("cgroup/bind4", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/bind6", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/connect4", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/connect6", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/connect_unix", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/sendmsg4", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/sendmsg6", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/sendmsg_unix", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/recvmsg4", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/recvmsg6", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/recvmsg_unix", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/getpeername4", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/getpeername6", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/getpeername_unix", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/getsockname4", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/getsockname6", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/getsockname_unix", Match::Exact, ProgType::CgroupSockAddr),
    ("cgroup/sysctl", Match::Exact, ProgType::CgroupSysctl),
    ("cgroup/getsockopt", Match::Exact, ProgType::CgroupSockopt),
    ("cgroup/setsockopt", Match::Exact, ProgType::CgroupSockopt),
    ("cgroup/dev", Match::Exact, ProgType::CgroupDevice),
    ("struct_ops+", Match::Prefix, ProgType::StructOps),
    ("struct_ops.s+", Match::Prefix, ProgType::StructOps),
    ("struct_ops", Match::Exact, ProgType::StructOps),
    ("sk_lookup", Match::Exact, ProgType::SkLookup),
    ("netfilter", Match::Exact, ProgType::Netfilter),
];

/// The program type of a section name, if it names a program.
pub fn prog_type_of(section: &str) -> Option<ProgType> {
    SECTIONS.iter().find_map(|&(name, how, ty)| {
        let hit = match how {
            Match::Prefix => section.starts_with(name),
            Match::Exact => section == name || section.strip_prefix(name).is_some_and(|rest| rest.starts_with('/')),
        };
        hit.then_some(ty)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_names() {
        assert_eq!(prog_type_of("xdp"), Some(ProgType::Xdp));
        assert_eq!(prog_type_of("xdp.frags"), Some(ProgType::Xdp));
        assert_eq!(prog_type_of("xdp/devmap"), Some(ProgType::Xdp));
        assert_eq!(prog_type_of("socket"), Some(ProgType::SocketFilter));
        assert_eq!(prog_type_of("socket/filter1"), Some(ProgType::SocketFilter));
        assert_eq!(prog_type_of("tc"), Some(ProgType::SchedCls));
        assert_eq!(prog_type_of("classifier/x"), Some(ProgType::SchedCls));
        assert_eq!(prog_type_of("tcx/ingress"), Some(ProgType::SchedCls));
        assert_eq!(prog_type_of("syscall"), Some(ProgType::Syscall));
        assert_eq!(prog_type_of("kprobe/do_sys_open"), Some(ProgType::Kprobe));
        assert_eq!(prog_type_of("fentry/tcp_connect"), Some(ProgType::Tracing));
        assert_eq!(prog_type_of("cgroup_skb/ingress"), Some(ProgType::CgroupSkb));
        assert_eq!(prog_type_of("xdpfoo"), None);
        assert_eq!(prog_type_of(".text"), None);
        assert_eq!(prog_type_of("license"), None);
    }
}
