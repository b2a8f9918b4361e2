//! The [`Runtime`] of the conformance suite for each runtime crate: tokio, whim-async-std
//! under async-std's and under smol's executor, and blocking.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};
use whim_sdk::transfer::Limits;
use whim_sdk::{Error, LaunchOptions, ManagerOptions, ShellEnd, Ttl};

use crate::suite::{Runtime, Step};

fn opts(ttl: &str) -> LaunchOptions {
    LaunchOptions { ttl: Ttl::parse(ttl).expect("ttl"), ..Default::default() }
}

fn via(addr: SocketAddr) -> ManagerOptions {
    ManagerOptions { vm_endpoint_via: Some(addr) }
}

/// Plays shell steps from a thread: bytes into `input`, sizes into `size`; both stay
/// open for a while afterwards so the shell ends by `exit`, not by EOF.
fn play(steps: Vec<Step>, mut input: impl FnMut(Vec<u8>) + Send + 'static, mut size: impl FnMut((u16, u16)) + Send + 'static) {
    std::thread::spawn(move || {
        for step in steps {
            match step {
                Step::Input(b) => input(b.to_vec()),
                Step::Resize(c, r) => size((c, r)),
                Step::Sleep(d) => std::thread::sleep(d),
            }
        }
        std::thread::sleep(Duration::from_secs(20));
    });
}

/// whim-tokio on its own runtime.
#[allow(missing_debug_implementations)]
pub struct Tokio {
    rt: tokio::runtime::Runtime,
    mgr: whim_tokio::Manager,
}

impl Runtime for Tokio {
    type Vm = whim_tokio::Sandbox;
    fn new(sdk: &aws_types::SdkConfig, addr: SocketAddr) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        Tokio { mgr: whim_tokio::Manager::new(sdk, via(addr)).expect("manager"), rt }
    }
    fn launch(&self, image: &str, ttl: &str) -> Result<Self::Vm, Error> {
        self.rt.block_on(self.mgr.launch(image, opts(ttl)))
    }
    fn id(vm: &Self::Vm) -> String {
        vm.id().to_owned()
    }
    fn exec(&self, vm: &mut Self::Vm, argv: &[&str], stdin: Option<Vec<u8>>) -> Result<(Vec<u8>, i32), Error> {
        let mut out = Vec::new();
        let st = self.rt.block_on(vm.exec_streaming(argv, stdin.as_deref(), &mut out))?;
        Ok((out, st.code()))
    }
    fn shell(&self, vm: &mut Self::Vm, steps: Vec<Step>) -> (Vec<u8>, Result<ShellEnd, Error>) {
        let (mut w, r) = tokio::io::duplex(1 << 16);
        let (in_tx, mut in_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let (size_tx, size_rx) = tokio::sync::mpsc::unbounded_channel();
        self.rt.spawn(async move {
            while let Some(b) = in_rx.recv().await {
                let _ = tokio::io::AsyncWriteExt::write_all(&mut w, &b).await;
            }
        });
        play(
            steps,
            move |b| drop(in_tx.send(b)),
            move |s| {
                let _ = size_tx.send(s);
            },
        );
        let sizes = Box::pin(futures_util::stream::unfold(size_rx, |mut rx| async { rx.recv().await.map(|s| (s, rx)) }));
        let mut out = Vec::new();
        let end = self.rt.block_on(vm.shell(r, &mut out, sizes));
        (out, end)
    }
    fn terminate(&self, vm: Self::Vm) -> Result<(), Error> {
        self.rt.block_on(vm.terminate())
    }
    fn set_exec_timeout(vm: &mut Self::Vm, timeout: Option<Duration>) {
        vm.set_exec_timeout(timeout);
    }
    fn list(&self, all: bool) -> Result<Vec<whim_sdk::VmEntry>, Error> {
        self.rt.block_on(self.mgr.list(all))
    }
    fn gc(&self, older_than: Option<Duration>) -> Result<whim_sdk::GcReport, Error> {
        self.rt.block_on(self.mgr.gc(whim_sdk::GcFilter { older_than }))
    }
    fn suspend(&self, id: &str) -> Result<(), Error> {
        self.rt.block_on(self.mgr.suspend(id))
    }
    fn resume(&self, id: &str) -> Result<(), Error> {
        self.rt.block_on(self.mgr.resume(id))
    }
    fn put(&self, vm: &mut Self::Vm, path: &Path, remote_dir: &str, limits: Limits) -> Result<Vec<u8>, Error> {
        self.rt.block_on(vm.put(path, remote_dir.as_bytes(), limits))
    }
    fn get(&self, vm: &mut Self::Vm, remote: &str, dir: &Path, limits: Limits) -> Result<PathBuf, Error> {
        self.rt.block_on(vm.get(remote.as_bytes(), dir, limits))
    }
    fn bootstrap(&self) -> Result<whim_sdk::Bootstrap, Error> {
        self.rt.block_on(self.mgr.bootstrap())
    }
    fn build(&self, source: &str, opts: &whim_sdk::BuildOptions) -> Result<whim_sdk::BuiltImage, Error> {
        self.rt.block_on(self.mgr.build_from_source(source, opts))
    }
    fn list_images(&self) -> Result<Vec<whim_sdk::ImageEntry>, Error> {
        self.rt.block_on(self.mgr.list_images())
    }
    fn remove_image(&self, name: &str) -> Result<(), Error> {
        self.rt.block_on(self.mgr.remove_image(name))
    }
    fn run(&self, image: &str, argv: &[&str]) -> Result<(Vec<u8>, i32), Error> {
        let mut out = Vec::new();
        let st = self.rt.block_on(self.mgr.run(image, opts("5m"), argv, None::<&[u8]>, &mut out))?;
        Ok((out, st.code()))
    }
}

/// An executor's `block_on`, for whim-async-std. async-std's is defined where it is used
/// (the conformance test and the latency bench): async-std is a dev-dependency only.
pub trait Executor {
    /// Runs `f` to completion.
    fn block_on<T>(f: impl Future<Output = T>) -> T;
}

/// smol's executor.
#[derive(Debug)]
pub struct Smol;
impl Executor for Smol {
    fn block_on<T>(f: impl Future<Output = T>) -> T {
        smol::block_on(f)
    }
}

/// whim-async-std under executor `E`.
#[derive(Debug)]
pub struct AsyncIo<E> {
    mgr: whim_async_std::Manager,
    _executor: std::marker::PhantomData<E>,
}

impl<E: Executor> Runtime for AsyncIo<E> {
    type Vm = whim_async_std::Sandbox;
    fn new(sdk: &aws_types::SdkConfig, addr: SocketAddr) -> Self {
        AsyncIo { mgr: whim_async_std::Manager::new(sdk, via(addr)).expect("manager"), _executor: std::marker::PhantomData }
    }
    fn launch(&self, image: &str, ttl: &str) -> Result<Self::Vm, Error> {
        E::block_on(self.mgr.launch(image, opts(ttl)))
    }
    fn id(vm: &Self::Vm) -> String {
        vm.id().to_owned()
    }
    fn exec(&self, vm: &mut Self::Vm, argv: &[&str], stdin: Option<Vec<u8>>) -> Result<(Vec<u8>, i32), Error> {
        let mut out = Vec::new();
        let stdin = stdin.map(futures_lite::io::Cursor::new);
        let st = E::block_on(vm.exec_streaming(argv, stdin, &mut out))?;
        Ok((out, st.code()))
    }
    fn shell(&self, vm: &mut Self::Vm, steps: Vec<Step>) -> (Vec<u8>, Result<ShellEnd, Error>) {
        let (in_tx, in_rx) = futures_channel::mpsc::unbounded::<std::io::Result<Vec<u8>>>();
        let (size_tx, size_rx) = futures_channel::mpsc::unbounded();
        play(steps, move |b| drop(in_tx.unbounded_send(Ok(b))), move |s| drop(size_tx.unbounded_send(s)));
        let mut out = Vec::new();
        let end = E::block_on(vm.shell(in_rx.into_async_read(), &mut out, size_rx.boxed()));
        (out, end)
    }
    fn terminate(&self, vm: Self::Vm) -> Result<(), Error> {
        E::block_on(vm.terminate())
    }
    fn set_exec_timeout(vm: &mut Self::Vm, timeout: Option<Duration>) {
        vm.set_exec_timeout(timeout);
    }
    fn list(&self, all: bool) -> Result<Vec<whim_sdk::VmEntry>, Error> {
        E::block_on(self.mgr.list(all))
    }
    fn gc(&self, older_than: Option<Duration>) -> Result<whim_sdk::GcReport, Error> {
        E::block_on(self.mgr.gc(whim_sdk::GcFilter { older_than }))
    }
    fn suspend(&self, id: &str) -> Result<(), Error> {
        E::block_on(self.mgr.suspend(id))
    }
    fn resume(&self, id: &str) -> Result<(), Error> {
        E::block_on(self.mgr.resume(id))
    }
    fn put(&self, vm: &mut Self::Vm, path: &Path, remote_dir: &str, limits: Limits) -> Result<Vec<u8>, Error> {
        E::block_on(vm.put(path, remote_dir.as_bytes(), limits))
    }
    fn get(&self, vm: &mut Self::Vm, remote: &str, dir: &Path, limits: Limits) -> Result<PathBuf, Error> {
        E::block_on(vm.get(remote.as_bytes(), dir, limits))
    }
    fn bootstrap(&self) -> Result<whim_sdk::Bootstrap, Error> {
        E::block_on(self.mgr.bootstrap())
    }
    fn build(&self, source: &str, opts: &whim_sdk::BuildOptions) -> Result<whim_sdk::BuiltImage, Error> {
        E::block_on(self.mgr.build_from_source(source, opts))
    }
    fn list_images(&self) -> Result<Vec<whim_sdk::ImageEntry>, Error> {
        E::block_on(self.mgr.list_images())
    }
    fn remove_image(&self, name: &str) -> Result<(), Error> {
        E::block_on(self.mgr.remove_image(name))
    }
    fn run(&self, image: &str, argv: &[&str]) -> Result<(Vec<u8>, i32), Error> {
        let mut out = Vec::new();
        let st = E::block_on(self.mgr.run(image, opts("5m"), argv, None::<futures_lite::io::Empty>, &mut out))?;
        Ok((out, st.code()))
    }
}

/// whim-blocking.
#[derive(Debug)]
pub struct Blocking(whim_blocking::Manager);

impl Runtime for Blocking {
    type Vm = whim_blocking::Sandbox;
    fn new(sdk: &aws_types::SdkConfig, addr: SocketAddr) -> Self {
        Blocking(whim_blocking::Manager::new(sdk, via(addr)).expect("manager"))
    }
    fn launch(&self, image: &str, ttl: &str) -> Result<Self::Vm, Error> {
        self.0.launch(image, opts(ttl))
    }
    fn id(vm: &Self::Vm) -> String {
        vm.id().to_owned()
    }
    fn exec(&self, vm: &mut Self::Vm, argv: &[&str], stdin: Option<Vec<u8>>) -> Result<(Vec<u8>, i32), Error> {
        let mut out = Vec::new();
        let st = vm.exec_streaming(argv, stdin.as_deref(), &mut out)?;
        Ok((out, st.code()))
    }
    fn shell(&self, vm: &mut Self::Vm, steps: Vec<Step>) -> (Vec<u8>, Result<ShellEnd, Error>) {
        use whim_blocking::ShellInput;
        let (tx, rx) = std::sync::mpsc::channel();
        let sizes = tx.clone();
        play(steps, move |b| drop(tx.send(ShellInput::Bytes(b))), move |(c, r)| drop(sizes.send(ShellInput::Resize(c, r))));
        let mut out = Vec::new();
        let end = vm.shell(&rx, &mut out);
        (out, end)
    }
    fn terminate(&self, vm: Self::Vm) -> Result<(), Error> {
        vm.terminate()
    }
    fn set_exec_timeout(vm: &mut Self::Vm, timeout: Option<Duration>) {
        vm.set_exec_timeout(timeout);
    }
    fn list(&self, all: bool) -> Result<Vec<whim_sdk::VmEntry>, Error> {
        self.0.list(all)
    }
    fn gc(&self, older_than: Option<Duration>) -> Result<whim_sdk::GcReport, Error> {
        self.0.gc(whim_sdk::GcFilter { older_than })
    }
    fn suspend(&self, id: &str) -> Result<(), Error> {
        self.0.suspend(id)
    }
    fn resume(&self, id: &str) -> Result<(), Error> {
        self.0.resume(id)
    }
    fn put(&self, vm: &mut Self::Vm, path: &Path, remote_dir: &str, limits: Limits) -> Result<Vec<u8>, Error> {
        vm.put(path, remote_dir.as_bytes(), limits)
    }
    fn get(&self, vm: &mut Self::Vm, remote: &str, dir: &Path, limits: Limits) -> Result<PathBuf, Error> {
        vm.get(remote.as_bytes(), dir, limits)
    }
    fn bootstrap(&self) -> Result<whim_sdk::Bootstrap, Error> {
        self.0.bootstrap()
    }
    fn build(&self, source: &str, opts: &whim_sdk::BuildOptions) -> Result<whim_sdk::BuiltImage, Error> {
        self.0.build_from_source(source, opts)
    }
    fn list_images(&self) -> Result<Vec<whim_sdk::ImageEntry>, Error> {
        self.0.list_images()
    }
    fn remove_image(&self, name: &str) -> Result<(), Error> {
        self.0.remove_image(name)
    }
    fn run(&self, image: &str, argv: &[&str]) -> Result<(Vec<u8>, i32), Error> {
        let mut out = Vec::new();
        let st = self.0.run(image, opts("5m"), argv, None::<std::io::Empty>, &mut out)?;
        Ok((out, st.code()))
    }
}
