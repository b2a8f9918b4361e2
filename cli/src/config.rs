//! The config file (`$XDG_CONFIG_HOME/whim/config.json`): read strictly (a corrupt file is an
//! error naming it, never replaced), written atomically (temp file + rename).

use std::path::PathBuf;

use anyhow::Context as _;
use whim_core::config::Config;

/// Where the config file lives.
pub fn path() -> PathBuf {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| h.join(".config"))).unwrap_or_else(|| PathBuf::from(".config"));
    dir.join("whim/config.json")
}

/// The config, empty when the file does not exist.
pub fn load() -> anyhow::Result<Config> {
    let p = path();
    match std::fs::read_to_string(&p) {
        Ok(text) => Config::parse(&text).with_context(|| format!("{} is corrupt: fix or remove it", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::parse("")?),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

/// Writes the config atomically.
pub fn save(config: &Config) -> anyhow::Result<()> {
    let p = path();
    let dir = p.parent().context("the config path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".config.json.tmp{}", std::process::id()));
    std::fs::write(&tmp, config.render()).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &p).with_context(|| format!("cannot write {}", p.display()))
}

/// Loads, changes and saves the config (the file is re-read so concurrent builds of other
/// names are not lost).
pub fn update(change: impl FnOnce(&mut Config)) -> anyhow::Result<()> {
    let mut c = load()?;
    change(&mut c);
    save(&c)
}
