//! The emulator's service state: VMs, images, endpoint tokens, S3 objects and IAM roles.

pub(crate) mod clock;
pub(crate) mod fleet;
pub(crate) mod iam;
pub(crate) mod idle;
pub(crate) mod image_build;
pub(crate) mod image_model;
pub(crate) mod images;
pub(crate) mod objects;
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
    /// S3 buckets and objects (under `<state_dir>/s3`).
    pub objects: Arc<objects::ObjectStore>,
    /// IAM roles.
    pub roles: iam::RoleStore,
}

impl App {
    /// Fresh state for `cfg`, with the images present at start; fails when the state
    /// directory cannot be created.
    pub(crate) fn new(cfg: EmulatorConfig) -> std::io::Result<Arc<Self>> {
        let cfg = Arc::new(cfg);
        let images = images::ImageCatalog::seeded(&cfg);
        let objects = Arc::new(objects::ObjectStore::open(&cfg.state_dir.join("s3"))?);
        Ok(Arc::new(Self {
            fleet: fleet::Fleet::new(cfg.clone()),
            images,
            tokens: tokens::TokenStore::default(),
            objects,
            roles: iam::RoleStore::default(),
            cfg,
        }))
    }
}
