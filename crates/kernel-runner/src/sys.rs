//! The crate's only `unsafe`: CPU affinity, the thread id and `BPF_PROG_TEST_RUN` through libbpf.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Pin the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("CPU {cpu} is out of range")));
    }
    // SAFETY: `set` is a valid cpu_set_t and `cpu` is in range (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` outlives the call and its size is passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's id (what the trace buffer shows as the task's pid).
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

/// The CPU the calling thread runs on now.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu has no preconditions; it returns -1 on error.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// What one `BPF_PROG_TEST_RUN` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRun {
    pub retval: u32,
    /// Bytes the kernel wrote to `data_out` (may exceed the buffer: then it was cut).
    pub data_len: usize,
    /// Bytes the kernel wrote to `ctx_out`.
    pub ctx_len: usize,
}

/// Run a loaded program once. Returns the errno of a failed run.
pub fn test_run(
    prog: BorrowedFd<'_>,
    data_in: Option<&[u8]>,
    data_out: Option<&mut [u8]>,
    ctx_in: Option<&[u8]>,
    ctx_out: Option<&mut [u8]>,
) -> Result<TestRun, i32> {
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        data_in: std::ptr::null(),
        data_out: std::ptr::null_mut(),
        data_size_in: 0,
        data_size_out: 0,
        ctx_in: std::ptr::null(),
        ctx_out: std::ptr::null_mut(),
        ctx_size_in: 0,
        ctx_size_out: 0,
        retval: 0,
        repeat: 0,
        duration: 0,
        flags: 0,
        cpu: 0,
        batch_size: 0,
    };
    if let Some(d) = data_in {
        opts.data_in = d.as_ptr().cast();
        opts.data_size_in = len32(d.len())?;
    }
    if let Some(d) = data_out {
        opts.data_out = d.as_mut_ptr().cast();
        opts.data_size_out = len32(d.len())?;
    }
    if let Some(c) = ctx_in {
        opts.ctx_in = c.as_ptr().cast();
        opts.ctx_size_in = len32(c.len())?;
    }
    if let Some(c) = ctx_out {
        opts.ctx_out = c.as_mut_ptr().cast();
        opts.ctx_size_out = len32(c.len())?;
    }
    // SAFETY: every pointer in `opts` is null or points to a live buffer of the size given next
    // to it, borrowed for the duration of the call (the kernel writes at most that many bytes to
    // the output buffers; a syscall program's context is written back to `ctx_in`, which the
    // caller passes in a buffer it owns and will not read concurrently). `prog` is a valid fd.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    if rc < 0 {
        return Err(-rc);
    }
    Ok(TestRun { retval: opts.retval, data_len: opts.data_size_out as usize, ctx_len: opts.ctx_size_out as usize })
}

fn len32(len: usize) -> Result<u32, i32> {
    u32::try_from(len).map_err(|_| libc::E2BIG)
}

/// Symbolic name of an errno value (falls back to the number).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::E2BIG => "E2BIG",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::ENOTSUP => "ENOTSUP",
        ENOTSUPP => "ENOTSUPP",
        libc::ERANGE => "ERANGE",
        libc::EAGAIN => "EAGAIN",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

/// The kernel-internal ENOTSUPP (524), which libc does not name; BPF_PROG_TEST_RUN returns it for
/// program types it cannot run.
pub const ENOTSUPP: i32 = 524;

fn insn(code: u8, imm: i32) -> libbpf_sys::bpf_insn {
    libbpf_sys::bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
        off: 0,
        imm,
    }
}

/// Load `r0 = XDP_PASS; exit` as an XDP program and test-run it once: whether this process may
/// load and test-run networking programs (root, or CAP_BPF + CAP_NET_ADMIN; no seccomp filter).
pub fn probe_xdp_test_run() -> Result<(), String> {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    let insns = [insn(0xb7, 2), insn(0x95, 0)];
    // SAFETY: the name and licence are NUL-terminated literals, `insns` holds `insn_cnt`
    // instructions and outlives the call, and null options are allowed.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_XDP,
            c"probe".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    if fd < 0 {
        return Err(format!("loading an XDP program: {}", io::Error::from_raw_os_error(-fd)));
    }
    // SAFETY: bpf_prog_load returned a new file descriptor that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(fd) };
    match test_run(prog.as_fd(), Some(&[0u8; 64]), None, None, None) {
        Ok(r) if r.retval == 2 => Ok(()),
        Ok(r) => Err(format!("BPF_PROG_TEST_RUN returned {} instead of 2", r.retval)),
        Err(errno) => Err(format!("BPF_PROG_TEST_RUN: {}", io::Error::from_raw_os_error(errno))),
    }
}
