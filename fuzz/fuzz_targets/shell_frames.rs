//! The shell client, alone and inside an exec session, fed arbitrary text, binary and close
//! frames interleaved with local input, resizes, closes and (for the session) commands and
//! standard input. Invariants: no panic; input is
//! held until `session_init`; the only text frames sent are resizes; nothing is sent after a
//! close frame; no output is reported after the session closed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whim_core::exec::{Command, Nonce};
use whim_core::session::{ExecSession, Incoming};
use whim_core::shell::{self, ClientEvent, Frame, ShellClient};

/// One step: a tag byte, a length byte, then that many payload bytes.
fn steps(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&tag, rest) = data.split_first()?;
        let (&len, rest) = rest.split_first().unwrap_or((&0, rest));
        let (payload, rest) = rest.split_at(usize::from(len).min(rest.len()));
        data = rest;
        Some((tag, payload))
    })
}

/// Tags 0-1: a text frame (a payload starting with 'S' becomes a well-formed `session_init`,
/// so the fuzzer gets past it); 2-3: binary; 4: close (a 2-byte code, then the reason).
fn incoming<'a>(tag: u8, payload: &'a [u8], text: &'a str, reason: &'a str) -> Option<Incoming<'a>> {
    match tag % 8 {
        0 | 1 => Some(Incoming::Text(text)),
        2 | 3 => Some(Incoming::Binary(payload)),
        4 => Some(Incoming::Close((payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])), reason)),
        _ => None,
    }
}

fn texts(payload: &[u8]) -> (String, String) {
    let text = if payload.first() == Some(&b'S') {
        format!(r#"{{"type":"session_init","session_id":"s{}"}}"#, payload.len())
    } else {
        String::from_utf8_lossy(payload).into_owned()
    };
    (text, String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned())
}

fn client(data: &[u8]) {
    let mut c = ShellClient::new();
    let (mut started, mut closed_event, mut sent_close) = (false, false, false);
    for (tag, payload) in steps(data) {
        let (text, reason) = texts(payload);
        match incoming(tag, payload, &text, &reason) {
            Some(frame) => shell::feed(&mut c, frame),
            None => match tag % 8 {
                5 => drop(c.send_input(payload)),
                6 => drop(c.resize(u16::from(payload.first().copied().unwrap_or(0)), u16::from(payload.get(1).copied().unwrap_or(0)))),
                _ => c.close(),
            },
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                ClientEvent::SessionStarted { .. } => started = true,
                ClientEvent::Output(b) => assert!(!closed_event && !b.is_empty(), "output after close, or empty"),
                ClientEvent::Closed(_) => closed_event = true,
            }
        }
        while let Some(f) = c.poll_transmit() {
            assert!(!sent_close, "a frame after our close frame: {f:?}");
            match f {
                Frame::Binary(_) => assert!(started, "input sent before session_init"),
                Frame::Text(t) => assert!(t.starts_with(r#"{"type":"resize","#), "a text frame that is not a resize: {t}"),
                Frame::Close(..) => sent_close = true,
            }
        }
    }
}

fn session(data: &[u8]) {
    let Ok(mut s) = ExecSession::new(Nonce([3; 16]), 80, 24) else { return };
    let mut n = 0u8;
    for (tag, payload) in steps(data) {
        let (text, reason) = texts(payload);
        match incoming(tag, payload, &text, &reason) {
            Some(frame) => s.handle_frame(frame),
            None if tag % 8 == 5 => s.write_stdin(payload),
            None if tag % 8 == 6 => s.close_stdin(),
            None => {
                n = n.wrapping_add(1);
                // Command nonces are [1; 16], [2; 16], ... so seeds can frame their output.
                let cmd = Command::new(vec![payload.to_vec(), b"arg".to_vec()], tag & 0x80 != 0);
                let _ = cmd.map(|cmd| s.start(cmd, Nonce([n; 16])));
            }
        }
        while s.poll_event().is_some() {}
        while s.poll_transmit().is_some() {}
        let _ = s.take_error();
    }
    let _ = s.poll_progress();
}

fuzz_target!(|data: &[u8]| {
    client(data);
    session(data);
});
