//! whim's VMs in an account: which VMs are the caller's, what `ps` lists, what `gc` reaps.
//!
//! VMs cannot be tagged (reference §B: RunMicrovm has no tags and TagResource rejects VM
//! ARNs), so ownership is derived from the image: a VM is the caller's when it was
//! launched from an image of the caller's own account, `arn:<partition>:lambda:<region>:
//! <account>:microvm-image:<name>` with `<account>` the caller's 12-digit account id. VMs
//! of AWS-managed images (account `aws`), of other accounts' images and of anything that
//! does not parse as an image ARN are never the caller's.
//!
//! ListMicrovms pages are merged with [`Listing`] (a VM can appear on two pages while
//! states change); times are durations since the Unix epoch, passed in.

use std::collections::HashMap;
use std::time::Duration;

use crate::lifecycle::VmState;

/// The parts of a customer image ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageArn<'a> {
    /// `aws`, `aws-cn`, …
    pub partition: &'a str,
    /// The region.
    pub region: &'a str,
    /// The owning account: 12 digits for customer images, `aws` for managed ones.
    pub account: &'a str,
    /// The image name.
    pub name: &'a str,
}

/// Parses `arn:<partition>:lambda:<region>:<account>:microvm-image:<name>`.
#[must_use]
pub fn parse_image_arn(arn: &str) -> Option<ImageArn<'_>> {
    let mut it = arn.splitn(7, ':');
    let (Some("arn"), Some(partition), Some("lambda"), Some(region), Some(account), Some("microvm-image"), Some(name)) =
        (it.next(), it.next(), it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let ok = !partition.is_empty() && !region.is_empty() && !name.is_empty() && !name.contains(':');
    ok.then_some(ImageArn { partition, region, account, name })
}

/// True for a 12-digit AWS account id.
#[must_use]
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The ownership rule: a VM launched from `image_arn` is the caller's when the image
/// belongs to `account` (never for managed images, whose account is `aws`).
#[must_use]
pub fn owned_by(image_arn: &str, account: &str) -> bool {
    is_account_id(account) && parse_image_arn(image_arn).is_some_and(|a| a.account == account)
}

/// An image ARN's name (the ARN itself when it does not parse).
#[must_use]
pub fn image_name(image_arn: &str) -> &str {
    parse_image_arn(image_arn).map_or(image_arn, |a| a.name)
}

/// One VM as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmEntry {
    /// `microvm-<uuid>`.
    pub id: String,
    /// Its state.
    pub state: VmState,
    /// The image it was launched from.
    pub image_arn: String,
    /// The image version.
    pub image_version: String,
    /// When it started, since the Unix epoch.
    pub started_at: Duration,
    /// Its `maximumDurationInSeconds`, when known (ListMicrovms does not say; GetMicrovm does).
    pub max_duration: Option<Duration>,
}

impl VmEntry {
    /// The image's name.
    #[must_use]
    pub fn image_name(&self) -> &str {
        image_name(&self.image_arn)
    }

    /// Time since it started.
    #[must_use]
    pub fn age(&self, now: Duration) -> Duration {
        now.saturating_sub(self.started_at)
    }

    /// Time until the service stops it, for a VM that is not ending and whose TTL is known.
    #[must_use]
    pub fn ttl_left(&self, now: Duration) -> Option<Duration> {
        let max = self.max_duration.filter(|_| !self.state.is_final())?;
        Some((self.started_at + max).saturating_sub(now))
    }
}

/// ListMicrovms pages merged: one entry per VM (the latest sighting wins), in first-seen order.
#[derive(Debug, Default)]
pub struct Listing {
    entries: Vec<VmEntry>,
    index: HashMap<String, usize>,
}

impl Listing {
    /// Call after: a page arrived.
    pub fn handle_page(&mut self, items: impl IntoIterator<Item = VmEntry>) {
        for vm in items {
            match self.index.get(&vm.id) {
                Some(&i) => self.entries[i] = vm,
                None => {
                    self.index.insert(vm.id.clone(), self.entries.len());
                    self.entries.push(vm);
                }
            }
        }
    }

    /// The caller's VMs (see the module doc), newest first; ended ones only with `all`.
    #[must_use]
    pub fn owned(&self, account: &str, all: bool) -> Vec<VmEntry> {
        let mut out: Vec<VmEntry> =
            self.entries.iter().filter(|v| owned_by(&v.image_arn, account) && (all || !v.state.is_final())).cloned().collect();
        out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| a.id.cmp(&b.id)));
        out
    }
}

/// Which VMs `gc` terminates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcFilter {
    /// Only VMs at least this old.
    pub older_than: Option<Duration>,
}

/// The VMs `gc` terminates: the caller's (by [`owned_by`]), not already ending, and at
/// least `filter.older_than` old at `now`.
#[must_use]
pub fn gc_plan(vms: &[VmEntry], account: &str, filter: GcFilter, now: Duration) -> Vec<VmEntry> {
    vms.iter()
        .filter(|v| owned_by(&v.image_arn, account) && !v.state.is_final())
        .filter(|v| filter.older_than.is_none_or(|min| v.age(now) >= min))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "123456789012";

    fn vm(id: &str, state: VmState, image_arn: &str, started: u64) -> VmEntry {
        VmEntry {
            id: id.into(),
            state,
            image_arn: image_arn.into(),
            image_version: "1.0".into(),
            started_at: Duration::from_secs(started),
            max_duration: None,
        }
    }

    fn mine(name: &str) -> String {
        format!("arn:aws:lambda:us-east-1:{ME}:microvm-image:{name}")
    }

    #[test]
    fn ownership_is_the_image_account() {
        assert!(owned_by(&mine("whim-default"), ME));
        assert!(owned_by("arn:aws-cn:lambda:cn-north-1:123456789012:microvm-image:x", ME));
        assert!(!owned_by("arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1", ME), "managed image");
        assert!(!owned_by("arn:aws:lambda:us-east-1:210987654321:microvm-image:x", ME), "another account");
        assert!(!owned_by("arn:aws:lambda:us-east-1::microvm-image:x", ME), "no account");
        assert!(!owned_by("arn:aws:lambda:us-east-1:123456789012:microvm-image/x", ME), "slash form");
        assert!(!owned_by("arn:aws:lambda:us-east-1:123456789012:network-connector:x", ME));
        assert!(!owned_by("whim-default", ME));
        assert!(!owned_by("arn:aws:lambda:us-east-1:aws:microvm-image:x", "aws"), "the caller's account must be an id");
        assert!(!owned_by(&mine("x"), ""));
        assert_eq!(image_name(&mine("whim-default")), "whim-default");
        assert_eq!(image_name("odd"), "odd");
    }

    #[test]
    fn pages_are_merged_without_duplicates_and_filtered() {
        let mut l = Listing::default();
        l.handle_page([vm("a", VmState::Pending, &mine("i"), 10), vm("b", VmState::Running, &mine("i"), 20)]);
        l.handle_page([
            vm("a", VmState::Running, &mine("i"), 10),
            vm("m", VmState::Running, "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1", 30),
            vm("o", VmState::Running, "arn:aws:lambda:us-east-1:210987654321:microvm-image:i", 40),
            vm("t", VmState::Terminated, &mine("i"), 50),
        ]);
        let ids = |v: Vec<VmEntry>| v.into_iter().map(|v| (v.id, v.state)).collect::<Vec<_>>();
        assert_eq!(ids(l.owned(ME, false)), vec![("b".into(), VmState::Running), ("a".into(), VmState::Running)]);
        assert_eq!(ids(l.owned(ME, true)).first().map(|v| v.0.as_str()), Some("t"));
        assert_eq!(l.owned(ME, true).len(), 3);
    }

    #[test]
    fn gc_takes_live_owned_vms_old_enough() {
        let vms = [
            vm("old", VmState::Running, &mine("i"), 100),
            vm("new", VmState::Suspended, &mine("i"), 950),
            vm("ending", VmState::Terminating, &mine("i"), 100),
            vm("theirs", VmState::Running, "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1", 100),
        ];
        let now = Duration::from_secs(1000);
        let ids = |f| gc_plan(&vms, ME, f, now).into_iter().map(|v| v.id).collect::<Vec<_>>();
        assert_eq!(ids(GcFilter::default()), ["old", "new"]);
        assert_eq!(ids(GcFilter { older_than: Some(Duration::from_secs(60)) }), ["old"]);
        assert_eq!(ids(GcFilter { older_than: Some(Duration::from_secs(900)) }), ["old"]);
        assert!(ids(GcFilter { older_than: Some(Duration::from_secs(901)) }).is_empty());
    }

    #[test]
    fn ttl_left_counts_from_the_start() {
        let mut v = vm("a", VmState::Running, &mine("i"), 100);
        assert_eq!(v.ttl_left(Duration::from_secs(200)), None);
        v.max_duration = Some(Duration::from_secs(1500));
        assert_eq!(v.age(Duration::from_secs(200)), Duration::from_secs(100));
        assert_eq!(v.ttl_left(Duration::from_secs(200)), Some(Duration::from_secs(1400)));
        assert_eq!(v.ttl_left(Duration::from_secs(9000)), Some(Duration::ZERO));
        v.state = VmState::Terminated;
        assert_eq!(v.ttl_left(Duration::from_secs(200)), None);
    }
}
