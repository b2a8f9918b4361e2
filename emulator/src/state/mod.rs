//! The emulator's in-memory service state: VMs, images and endpoint tokens.

pub(crate) mod clock;
pub(crate) mod fleet;
pub(crate) mod idle;
pub(crate) mod images;
pub(crate) mod tokens;
pub(crate) mod vm;

use std::sync::Arc;

use crate::config::EmulatorConfig;

/// Everything the control plane and the VM endpoints share.
#[derive(Debug)]
pub(crate) struct App {
    /// The configuration the emulator started with.
    pub cfg: Arc<EmulatorConfig>,
    /// The VMs.
    pub fleet: Arc<fleet::Fleet>,
    /// The images.
    pub images: images::ImageCatalog,
    /// The endpoint tokens.
    pub tokens: tokens::TokenStore,
}

impl App {
    /// Fresh state for `cfg`, with the images present at start.
    pub(crate) fn new(cfg: EmulatorConfig) -> Arc<Self> {
        let cfg = Arc::new(cfg);
        let images = images::ImageCatalog::seeded(&cfg.region, &cfg.account, &cfg.startup_failures);
        Arc::new(Self { fleet: fleet::Fleet::new(cfg.clone()), images, tokens: tokens::TokenStore::default(), cfg })
    }
}
