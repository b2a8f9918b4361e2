//! Restricted mode for a VM's shells: Docker's default capability set plus a seccomp filter.
//!
//! Dropping capabilities alone is not enough: `unshare -U` needs none, and a nested user namespace
//! hands mount and netns powers back. The seccomp filter closes that door.

use std::collections::{BTreeMap, HashSet};

use caps::{CapSet, Capability};
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

/// Docker's default capabilities, the set the real service's shell shows (`CapEff` 00000000a80425fb).
pub const DOCKER_DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_NET_RAW,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_MKNOD,
    Capability::CAP_AUDIT_WRITE,
    Capability::CAP_SETFCAP,
];

/// Syscalls that always fail with EPERM in restricted mode.
const DENIED: [i64; 21] = [
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_swapon,
    libc::SYS_swapoff,
];

/// `clone` flags that create namespaces (CLONE_NEWTIME shares bits with the exit signal, so it
/// is left out; clone3, the only way to pass it, is refused anyway).
const CLONE_NEW_BITS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// A compiled restriction, built once in init and applied in each shell child before exec.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    filters: Vec<BpfProgram>,
    last_cap: u8,
}

impl Policy {
    /// Compiles the seccomp filters (allocates; call before forking).
    pub(crate) fn restricted() -> Result<Self, String> {
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40);
        let filters = vec![x32_guard(), deny_filter()?, clone3_filter()?];
        Ok(Policy { filters, last_cap })
    }

    /// Cuts the capability sets to Docker's default, sets no_new_privs, installs the filters.
    pub(crate) fn apply(&self) -> Result<(), String> {
        self.drop_caps()?;
        // SAFETY: plain prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("prctl(PR_SET_NO_NEW_PRIVS): {}", std::io::Error::last_os_error()));
        }
        for filter in &self.filters {
            seccompiler::apply_filter(filter).map_err(|e| format!("install seccomp filter: {e}"))?;
        }
        Ok(())
    }

    fn drop_caps(&self) -> Result<(), String> {
        let keep = docker_mask();
        for cap in (0..=self.last_cap).filter(|c| keep & (1u64 << c) == 0) {
            // SAFETY: plain prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) } != 0 {
                return Err(format!("drop capability {cap} from the bounding set: {}", std::io::Error::last_os_error()));
            }
        }
        let set: HashSet<Capability> = DOCKER_DEFAULT_CAPS.into_iter().collect();
        caps::clear(None, CapSet::Ambient).map_err(|e| format!("clear ambient capabilities: {e}"))?;
        for which in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
            caps::set(None, which, &set).map_err(|e| format!("set {which:?} capabilities: {e}"))?;
        }
        Ok(())
    }
}

/// The bitmask of [`DOCKER_DEFAULT_CAPS`] as `/proc/<pid>/status` prints it.
pub fn docker_mask() -> u64 {
    DOCKER_DEFAULT_CAPS.iter().fold(0, |m, c| m | c.bitmask())
}

fn arch() -> Result<seccompiler::TargetArch, String> {
    std::env::consts::ARCH.try_into().map_err(|e| format!("seccomp: unsupported architecture: {e}"))
}

fn deny_filter() -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|nr| (*nr, vec![])).collect();
    rules.insert(libc::SYS_clone, CLONE_NEW_BITS.iter().map(|bit| clone_rule(*bit)).collect::<Result<_, _>>()?);
    compile(rules, libc::EPERM)
}

fn clone_rule(bit: i32) -> Result<SeccompRule, String> {
    let bit = bit as u64;
    let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(bit), bit);
    cond.and_then(|c| SeccompRule::new(vec![c])).map_err(|e| format!("seccomp clone rule: {e}"))
}

/// clone3 passes flags in memory the filter cannot read: ENOSYS makes glibc fall back to clone.
fn clone3_filter() -> Result<BpfProgram, String> {
    compile(BTreeMap::from([(libc::SYS_clone3, vec![])]), libc::ENOSYS)
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch()?)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| format!("compile seccomp filter: {e}"))
}

/// Refuses x32-ABI syscall numbers, which would otherwise slip past the number-based rules on
/// kernels built with x32 support.
fn x32_guard() -> BpfProgram {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let stmt = |code: u32, k: u32| seccompiler::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let ld_nr = stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0);
    let jge = seccompiler::sock_filter { code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16, jt: 0, jf: 1, k: X32_SYSCALL_BIT };
    let deny = stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    let allow = stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
    vec![ld_nr, jge, deny, allow]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mask_matches_the_real_service() {
        assert_eq!(docker_mask(), 0xa804_25fb);
    }

    #[test]
    fn filters_compile() {
        assert_eq!(Policy::restricted().map(|p| p.filters.len()), Ok(3));
    }
}
