//! whim-core: the sans-IO heart of whim.
//!
//! Every module is a pure state machine or function: inputs arrive as values (bytes,
//! parsed service answers, `now`), outputs are values the adapter acts on. Nothing here
//! touches sockets, files, clocks, threads, processes or the environment; the ban is
//! enforced by `clippy.toml` and cannot be lifted below (`forbid`).
//!
//! The run loop every adapter writes:
//! 1. read the clock once;
//! 2. feed what arrived (`handle_*`);
//! 3. drain every `poll_*` until `None`, performing what it asks (send frames, make
//!    service calls, write output);
//! 4. sleep until `poll_timeout` or the next I/O, and repeat.
//!
//! Modules: [`shell`] (the shell WebSocket protocol), [`exec`] (commands over the pty),
//! [`lifecycle`] (launch), [`archive`] (the tar guard), [`session`] (exec over one WebSocket), [`endpoint`] (URLs, transports, secrets), [`ttl`] (durations), [`fleet`] (ownership, listing, gc plans), [`power`] (suspend, resume), [`transfer`] (put/get over the pty), [`image`] (custom images: names, egress, build states), [`config`] (the config document), [`bootstrap`] (the bucket and build role `whim init` makes), [`dockerignore`] (the `.dockerignore` matcher), [`source`] (build sources and the build-context normaliser).
#![forbid(unsafe_code)]
#![forbid(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod archive;
pub mod bootstrap;
pub mod config;
pub mod dockerignore;
pub mod endpoint;
pub mod exec;
pub mod fleet;
pub mod image;
pub mod lifecycle;
pub mod power;
pub mod session;
pub mod shell;
pub mod source;
pub mod transfer;
pub mod ttl;

#[cfg(fuzzing)]
pub mod fuzzing {
    //! Internals reachable by the fuzz targets.
    pub use crate::exec::{Deframer, Nonce};
}
