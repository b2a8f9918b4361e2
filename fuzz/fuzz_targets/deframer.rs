//! The exec de-framer on arbitrary bytes, fed in chunks the first byte chooses; the result
//! (output, status, done, or the error) must equal feeding the rest of the input whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whim_core::exec::{DeframeEvent, ExecError};
use whim_core::fuzzing::{Deframer, Nonce};

/// The nonce the seeds are framed with.
const NONCE: Nonce = Nonce([7; 16]);

#[derive(Debug, PartialEq, Eq, Default)]
struct Outcome {
    output: Vec<u8>,
    marks: Vec<DeframeEvent>,
    error: Option<ExecError>,
}

fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut d = Deframer::for_nonce(NONCE);
    let mut out = Outcome::default();
    for chunk in chunks {
        match d.feed(chunk) {
            Ok(events) => {
                for ev in events {
                    match ev {
                        DeframeEvent::Output(o) => {
                            assert!(!out.marks.iter().any(|m| matches!(m, DeframeEvent::Exited(_))), "output after the status");
                            out.output.extend(o);
                        }
                        mark => out.marks.push(mark),
                    }
                }
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let whole = run(std::iter::once(stream));
    // Chunk sizes from 1 to 64 bytes, varying along the stream.
    let mut rest = stream;
    let mut i = 0usize;
    let chunks = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        i += 1;
        let n = (1 + (usize::from(seed) * i * 31 + i) % 64).min(rest.len());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    });
    let chunked = run(chunks);
    // An error drops the events of the feed call that hit it, so compare those errors only.
    if whole.error.is_some() || chunked.error.is_some() {
        assert_eq!(chunked.error, whole.error);
    } else {
        assert_eq!(chunked, whole);
    }
});
