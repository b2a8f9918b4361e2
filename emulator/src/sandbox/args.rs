//! The setup plan the emulator hands to its helper as the first control packet.
//!
//! It travels over the socket rather than argv so that the VM's `/proc/1/cmdline` shows no host paths.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Everything the helper needs to build one VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HelperArgs {
    /// The VM id (a single path component).
    pub vm_id: String,
    /// Bottom lower dir of the overlay root (the base; host masks apply to it).
    pub image_root: PathBuf,
    /// Image layers stacked above `image_root`, top first.
    pub layers: Vec<PathBuf>,
    /// A build step's persistent upper dir (else the upper is throwaway tmpfs).
    pub upper: Option<PathBuf>,
    /// overlayfs work dir for `upper` (same filesystem, empty).
    pub work: Option<PathBuf>,
    /// Build context bound read-only at [`super::CONTEXT_MOUNT`] (COPY steps).
    pub context: Option<PathBuf>,
    /// `KEY=VALUE` pairs of the image, exported in every shell.
    pub env: Vec<String>,
    /// The shells' working directory.
    pub workdir: Option<String>,
    /// Parent of the per-VM scratch dir.
    pub state_dir: PathBuf,
    /// cgroup v2 directory the VM's processes are born in.
    pub cgroup_v2: Option<PathBuf>,
    /// `cgroup.procs` files (cgroup v1) the VM's first process joins.
    pub cgroup_procs: Vec<PathBuf>,
    /// Keep all capabilities and skip the seccomp filter.
    pub privileged: bool,
    /// Unshare the network namespace (only `lo`).
    pub egress_none: bool,
    /// Host paths hidden under empty tmpfs (directories) or an empty file (files).
    pub masks: Vec<PathBuf>,
}

impl HelperArgs {
    /// Serialises as NUL-separated `key=value` fields (paths may hold any byte but NUL).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut field = |key: &str, value: &OsStr| {
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
            out.push(0);
        };
        field("vm", OsStr::new(&self.vm_id));
        field("image", self.image_root.as_os_str());
        field("state", self.state_dir.as_os_str());
        self.layers.iter().for_each(|p| field("layer", p.as_os_str()));
        self.upper.iter().for_each(|p| field("upper", p.as_os_str()));
        self.work.iter().for_each(|p| field("work", p.as_os_str()));
        self.context.iter().for_each(|p| field("context", p.as_os_str()));
        self.env.iter().for_each(|kv| field("env", OsStr::new(kv)));
        self.workdir.iter().for_each(|d| field("workdir", OsStr::new(d)));
        self.cgroup_v2.iter().for_each(|p| field("cgroup2", p.as_os_str()));
        self.cgroup_procs.iter().for_each(|p| field("cgroup", p.as_os_str()));
        self.masks.iter().for_each(|p| field("mask", p.as_os_str()));
        field("privileged", OsStr::new(flag(self.privileged)));
        field("egress-none", OsStr::new(flag(self.egress_none)));
        out
    }

    /// Parses [`HelperArgs::encode`]'s output.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut args = HelperArgs::default();
        for item in bytes.split(|b| *b == 0).filter(|f| !f.is_empty()) {
            let eq = item.iter().position(|b| *b == b'=').ok_or("helper field without '='")?;
            args.set(&item[..eq], OsStr::from_bytes(&item[eq + 1..]))?;
        }
        if args.vm_id.is_empty() || args.image_root.as_os_str().is_empty() {
            return Err("helper configuration lacks the vm id or the image root".into());
        }
        Ok(args)
    }

    fn set(&mut self, key: &[u8], value: &OsStr) -> Result<(), String> {
        match key {
            b"vm" => self.vm_id = value.to_string_lossy().into_owned(),
            b"image" => self.image_root = value.into(),
            b"state" => self.state_dir = value.into(),
            b"layer" => self.layers.push(value.into()),
            b"upper" => self.upper = Some(value.into()),
            b"work" => self.work = Some(value.into()),
            b"context" => self.context = Some(value.into()),
            b"env" => self.env.push(value.to_string_lossy().into_owned()),
            b"workdir" => self.workdir = Some(value.to_string_lossy().into_owned()),
            b"cgroup2" => self.cgroup_v2 = Some(value.into()),
            b"cgroup" => self.cgroup_procs.push(value.into()),
            b"mask" => self.masks.push(value.into()),
            b"privileged" => self.privileged = value == "1",
            b"egress-none" => self.egress_none = value == "1",
            other => {
                return Err(format!("unknown helper field {:?}", String::from_utf8_lossy(other)));
            }
        }
        Ok(())
    }
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_odd_paths() {
        let args = HelperArgs {
            vm_id: "vm-1".into(),
            image_root: "/".into(),
            layers: vec!["/srv/l2".into(), "/srv/l1".into()],
            upper: Some("/srv/diff".into()),
            work: Some("/srv/work".into()),
            context: Some("/srv/ctx".into()),
            env: vec!["A=b=c".into(), "EMPTY=".into()],
            workdir: Some("/app dir".into()),
            state_dir: "/tmp/a b=c".into(),
            cgroup_v2: Some("/sys/fs/cgroup/unified/whim/vm-1".into()),
            cgroup_procs: vec!["/sys/fs/cgroup/freezer/whim/vm-1/cgroup.procs".into()],
            privileged: true,
            egress_none: false,
            masks: vec!["/root".into(), PathBuf::from(OsStr::from_bytes(b"/home/\xff"))],
        };
        assert_eq!(HelperArgs::decode(&args.encode()), Ok(args));
    }

    #[test]
    fn rejects_unknown_fields() {
        assert!(HelperArgs::decode(b"vm=a\0image=/\0bogus=1\0").is_err());
        assert!(HelperArgs::decode(b"image=/\0").is_err());
    }
}
