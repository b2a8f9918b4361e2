//! Build progress on stderr: a spinner on a terminal (indicatif), plain lines otherwise.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use whim_tokio::BuildEvent;

/// The display of one build.
pub struct Progress {
    name: String,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A display for building image `name`.
    pub fn new(name: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { name: name.to_owned(), bar }
    }

    /// The callback the library reports to.
    pub fn sink(&self) -> Arc<dyn Fn(BuildEvent) + Send + Sync> {
        let (name, bar) = (self.name.clone(), self.bar.clone());
        Arc::new(move |e| {
            let msg = describe(&e);
            match &bar {
                Some(b) => b.set_message(msg),
                None => eprintln!("whim: {name}: {msg}"),
            }
        })
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn describe(e: &BuildEvent) -> String {
    match e {
        BuildEvent::Preparing(source) => format!("reading {source}"),
        BuildEvent::Prepared { files, zip_bytes } => {
            format!("context ready: {files} file{}, {} KiB zipped", if *files == 1 { "" } else { "s" }, zip_bytes.div_ceil(1024))
        }
        BuildEvent::Uploading(uri) => format!("uploading to {}", crate::vms::redact(uri)),
        BuildEvent::Deleting(arn) => format!("deleting the old image {} (--force)", crate::vms::redact(arn)),
        BuildEvent::Creating(_) => "build started".to_owned(),
        BuildEvent::State(state) => format!("image {state}"),
        other => format!("{other:?}"),
    }
}
