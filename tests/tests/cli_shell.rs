//! `whim shell` through a real pty: prompt, sizes (case C6), resize, exit, detach.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Env;
use nix::pty::{Winsize, openpty};

/// A `whim` process on the slave side of a pty that the test holds the master of.
struct Term {
    master: std::fs::File,
    rx: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    child: std::process::Child,
}

fn size(cols: u16, rows: u16) -> Winsize {
    Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

impl Term {
    fn spawn(env: &Env, args: &[&str], cols: u16, rows: u16) -> Term {
        let pty = openpty(Some(&size(cols, rows)), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let mut cmd = env.whim(args);
        cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave.try_clone().unwrap());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn whim");
        drop(slave);
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().expect("clone");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Term { master, rx, seen: Vec::new(), child }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write");
    }

    /// Waits until the output since the last call contains `needle`.
    fn expect(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let hay = String::from_utf8_lossy(&self.seen).into_owned();
            if let Some(i) = hay.find(needle) {
                self.seen.drain(..hay[..i + needle.len()].len());
                return hay;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.extend(b),
                Err(_) => panic!("did not see {needle:?}; output so far: {hay:?}"),
            }
        }
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        // SAFETY: TIOCSWINSZ on our own master with a valid struct.
        unsafe { set_winsize(self.master.as_raw_fd(), &size(cols, rows)) }.expect("resize");
    }

    fn wait(mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "whim did not exit");
            while self.rx.try_recv().is_ok() {}
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_prompt_sizes_resize_and_exit() {
    let env = Env::start().await;
    let mut t = Term::spawn(&env, &["shell"], 150, 50);
    tokio::task::block_in_place(|| {
        t.expect("λ $", 20);
        t.send(b"stty size\r");
        t.expect("50 150", 10);
        t.resize(100, 30);
        std::thread::sleep(Duration::from_millis(300));
        t.send(b"stty size; echo TERM=$TERM; id -u\r");
        t.expect("30 100", 10);
        t.expect("TERM=xterm", 10);
        t.send(b"exit\r");
        let st = t.wait(15);
        assert_eq!(st.code(), Some(0));
    });
    let v = env.wait_vms(5, |v| v.iter().all(|(_, s)| s == "TERMINATED")).await;
    assert!(!v.is_empty() && v.iter().all(|(_, s)| s == "TERMINATED"), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_bracket_detaches_and_terminates_unless_kept() {
    let env = Env::start().await;
    let mut t = Term::spawn(&env, &["shell"], 80, 24);
    tokio::task::block_in_place(|| {
        t.expect("λ $", 20);
        // Ctrl-C goes to the remote shell, it does not end whim.
        t.send(b"sleep 5\r");
        std::thread::sleep(Duration::from_millis(200));
        t.send(b"\x03");
        t.send(b"echo alive\r");
        t.expect("alive", 10);
        t.send(b"\x1d");
        t.expect("detached", 10);
        assert_eq!(t.wait(15).code(), Some(0));
    });
    let v = env.wait_vms(5, |v| v.iter().all(|(_, s)| s == "TERMINATED")).await;
    assert!(v.iter().all(|(_, s)| s == "TERMINATED"), "{v:?}");

    let mut t = Term::spawn(&env, &["shell", "--keep"], 80, 24);
    tokio::task::block_in_place(|| {
        t.expect("λ $", 20);
        t.send(b"exit\r");
        t.expect("keeps running", 10);
        assert_eq!(t.wait(15).code(), Some(0));
    });
    let v = env.vms().await;
    assert_eq!(v.iter().filter(|(_, s)| s == "RUNNING").count(), 1, "{v:?}");
}
