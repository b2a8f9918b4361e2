//! Bookkeeping of a VM's shells on the emulator side: pending spawns and exit statuses.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use tokio::sync::{oneshot, watch};

use super::pty::KILLED_STATUS;

/// The answer to a spawn request: pid and pty master, or why it failed.
pub(crate) type Started = Result<(i32, OwnedFd), String>;

/// Shells of one VM, shared between the VM handle and the task reading the control socket.
#[derive(Debug, Default)]
pub(crate) struct ShellTable {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    dead: bool,
    pending: HashMap<u64, oneshot::Sender<Started>>,
    exits: HashMap<u64, watch::Sender<Option<i32>>>,
}

impl ShellTable {
    /// Registers shell `id` before it is requested; `None` once the VM is dead.
    pub(crate) fn register(&self, id: u64) -> Option<(oneshot::Receiver<Started>, watch::Receiver<Option<i32>>)> {
        let (started_tx, started_rx) = oneshot::channel();
        let mut inner = self.lock();
        let exit = inner.add_exit(id)?;
        inner.pending.insert(id, started_tx);
        Some((started_rx, exit))
    }

    /// Registers only the exit status of shell `id`; `None` once the VM is dead.
    pub(crate) fn register_exit(&self, id: u64) -> Option<watch::Receiver<Option<i32>>> {
        self.lock().add_exit(id)
    }

    /// Delivers the answer to a spawn request.
    pub(crate) fn started(&self, id: u64, result: Started) {
        let failed = result.is_err();
        if let Some(tx) = self.lock().pending.remove(&id) {
            let _ = tx.send(result);
        }
        if failed {
            self.lock().exits.remove(&id);
        }
    }

    /// Records that shell `id` exited with `status`.
    pub(crate) fn exited(&self, id: u64, status: i32) {
        if let Some(tx) = self.lock().exits.remove(&id) {
            let _ = tx.send(Some(status));
        }
    }

    /// The VM is gone: every live shell exits with 137 and pending spawns fail.
    pub(crate) fn mark_dead(&self) {
        let mut inner = self.lock();
        inner.dead = true;
        inner.pending.clear();
        for (_, tx) in inner.exits.drain() {
            let _ = tx.send(Some(KILLED_STATUS));
        }
    }

    /// Whether [`ShellTable::mark_dead`] ran.
    pub(crate) fn is_dead(&self) -> bool {
        self.lock().dead
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn add_exit(&mut self, id: u64) -> Option<watch::Receiver<Option<i32>>> {
        if self.dead {
            return None;
        }
        let (tx, rx) = watch::channel(None);
        self.exits.insert(id, tx);
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn death_resolves_every_shell() {
        let table = ShellTable::default();
        let (started, mut exit) = table.register(1).expect("alive");
        table.mark_dead();
        assert!(started.await.is_err());
        assert_eq!(*exit.wait_for(Option::is_some).await.expect("sender kept"), Some(137));
        assert!(table.register(2).is_none());
    }
}
