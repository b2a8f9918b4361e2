//! The tar guard on arbitrary bytes, fed whole and split at two points the input chooses.
//! Invariants: no panic; the same events and verdict for both feeds; no entry path that is
//! absolute or not normalised; data exactly as long as each entry says; `End` only for an
//! accepted archive, and nothing after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whim_core::archive::{ArchiveError, ArchiveEvent, Limits, TarGuard};

const LIMITS: Limits = Limits { compressed_bytes: 1 << 20, uncompressed_bytes: 1 << 20, entries: 256 };

/// Feeds the pieces, then EOF; returns the events (Data coalesced) and the verdict.
fn run(pieces: &[&[u8]]) -> (Vec<ArchiveEvent>, Result<(), ArchiveError>) {
    let mut guard = TarGuard::new(LIMITS);
    let mut events: Vec<ArchiveEvent> = Vec::new();
    let mut drain = |g: &mut TarGuard| {
        while let Some(ev) = g.poll_event() {
            match (ev, events.last_mut()) {
                (ArchiveEvent::Data(d), Some(ArchiveEvent::Data(prev))) => {
                    assert!(!d.is_empty(), "empty Data event");
                    prev.extend(d);
                }
                (ev, _) => events.push(ev),
            }
        }
    };
    let mut verdict = Ok(());
    for piece in pieces {
        verdict = guard.handle_compressed(1).and_then(|()| guard.handle_bytes(piece));
        drain(&mut guard);
        if verdict.is_err() {
            break;
        }
    }
    if verdict.is_ok() {
        verdict = guard.handle_eof();
        drain(&mut guard);
    }
    if let Err(e) = &verdict {
        // Poisoned: the same error again, and nothing new.
        assert_eq!(guard.handle_bytes(b"x").as_ref(), Err(e));
        assert_eq!(guard.handle_eof().as_ref(), Err(e));
        assert!(guard.poll_event().is_none());
    }
    (events, verdict)
}

fn check(events: &[ArchiveEvent], verdict: &Result<(), ArchiveError>) {
    let mut expected_data: Option<u64> = None;
    for (i, ev) in events.iter().enumerate() {
        match ev {
            ArchiveEvent::Entry(e) => {
                assert!(expected_data.unwrap_or(0) == 0, "previous entry's data incomplete");
                assert!(!e.path.is_empty() && !e.path.starts_with(b"/"), "bad path {:?}", e.path);
                assert!(e.path.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b".."), "bad path {:?}", e.path);
                assert!(e.mode <= 0o777);
                expected_data = Some(e.size);
            }
            ArchiveEvent::Data(d) => {
                let left = expected_data.expect("Data before any Entry");
                assert!(d.len() as u64 <= left, "more data than the entry's size");
                expected_data = Some(left - d.len() as u64);
            }
            ArchiveEvent::End => {
                assert_eq!(i, events.len() - 1, "events after End");
                assert!(verdict.is_ok(), "End but {verdict:?}");
                assert!(expected_data.unwrap_or(0) == 0, "End with data missing");
            }
        }
    }
    if verdict.is_ok() {
        assert_eq!(events.last(), Some(&ArchiveEvent::End), "accepted without End");
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = run(&[data]);
    check(&whole.0, &whole.1);
    // Two cut points the input chooses (a hash of it), so any split gets explored.
    let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let n = data.len() + 1;
    let (mut a, mut b) = ((h % n as u64) as usize, ((h >> 32) % n as u64) as usize);
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    let split = run(&[&data[..a], &data[a..b], &data[b..]]);
    assert_eq!(split, whole, "split at {a} and {b} changed the result");
});
