//! Exec round-trip latency (`true`, output and status back) on each runtime crate, side by
//! side in one run: the runtimes take turns, one exec each, so machine noise hits all alike.
//! Goal: each within 1.2x of the fastest. Needs the `whim` binary as the sandbox helper:
//! `cargo build --release -p whim` first. `RUNS` sets the rounds (default 300).

use std::time::{Duration, Instant};

use whim_tests::runtimes::{AsyncIo, Blocking, Smol, Tokio};
use whim_tests::suite::{Emu, Runtime};

/// async-std's executor (async-std is a dev-dependency only: it is discontinued).
#[derive(Debug)]
struct AsyncStd;
impl whim_tests::runtimes::Executor for AsyncStd {
    fn block_on<T>(f: impl Future<Output = T>) -> T {
        async_std::task::block_on(f)
    }
}

fn helper() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("whim"))
        .find(|p| p.exists())
        .expect("build the whim binary first: cargo build --release -p whim")
}

/// One runtime with its VM, timing one exec per call.
trait Timed {
    fn name(&self) -> &'static str;
    fn once(&mut self) -> Duration;
}

struct Subject<R: Runtime> {
    name: &'static str,
    rt: R,
    vm: Option<R::Vm>,
}

impl<R: Runtime> Timed for Subject<R> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn once(&mut self) -> Duration {
        let vm = self.vm.as_mut().expect("vm");
        let t = Instant::now();
        let (out, code) = self.rt.exec(vm, &["true"], None).expect("exec");
        assert!(out.is_empty() && code == 0);
        t.elapsed()
    }
}

fn subject<R: Runtime + 'static>(emu: &Emu, name: &'static str) -> Box<dyn Timed> {
    let rt: R = emu.runtime();
    let vm = rt.launch("whim-default", "30m").expect("launch");
    Box::new(Subject { name, rt, vm: Some(vm) })
}

fn main() {
    let rounds: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let emu = Emu::start(helper());
    let mut subjects = vec![
        subject::<Tokio>(&emu, "tokio"),
        subject::<AsyncIo<AsyncStd>>(&emu, "async-std executor"),
        subject::<AsyncIo<Smol>>(&emu, "smol executor"),
        subject::<Blocking>(&emu, "blocking"),
    ];
    for s in &mut subjects {
        for _ in 0..20 {
            s.once();
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); subjects.len()];
    for _ in 0..rounds {
        for (s, t) in subjects.iter_mut().zip(&mut times) {
            t.push(s.once());
        }
    }
    let stats: Vec<(Duration, Duration)> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            (t[t.len() / 2], t[t.len() * 9 / 10])
        })
        .collect();
    let fastest = stats.iter().map(|s| s.0).min().expect("runtimes");
    println!("exec round trip, {rounds} rounds each, interleaved");
    for (s, (median, p90)) in subjects.iter().zip(&stats) {
        println!(
            "{:<20} median {:>8.3} ms  p90 {:>8.3} ms  ratio to fastest {:.2}x",
            s.name(),
            median.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3,
            median.as_secs_f64() / fastest.as_secs_f64()
        );
    }
}
