//! The conformance suite of `whim_tests::suite`, once per runtime: tokio, async-std's
//! executor and smol's executor (both on whim-async-std), and blocking.

use whim_tests::runtimes::{AsyncIo, Blocking, Smol, Tokio};
use whim_tests::suite::Emu;

/// async-std's executor (async-std is a dev-dependency only: it is discontinued).
#[derive(Debug)]
struct AsyncStd;
impl whim_tests::runtimes::Executor for AsyncStd {
    fn block_on<T>(f: impl Future<Output = T>) -> T {
        async_std::task::block_on(f)
    }
}

fn emu() -> Emu {
    Emu::start(assert_cmd::cargo::cargo_bin("whim"))
}

whim_tests::conformance_suite!(tokio_rt, Tokio, emu());
whim_tests::conformance_suite!(async_std_executor, AsyncIo<AsyncStd>, emu());
whim_tests::conformance_suite!(smol_executor, AsyncIo<Smol>, emu());
whim_tests::conformance_suite!(blocking, Blocking, emu());
