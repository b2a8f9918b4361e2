use proptest::prelude::*;

use super::*;

const N: Nonce = Nonce([7; 16]);

fn run_split(stream: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<u8>, bool) {
    let mut d = Deframer::for_nonce(N);
    let mut out = Vec::new();
    let (mut status, mut done) = (None, false);
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.sort_unstable();
    points.push(stream.len());
    for p in points {
        for ev in d.feed(&stream[last..p]).unwrap() {
            match ev {
                DeframeEvent::Output(b) => out.extend(b),
                DeframeEvent::Exited(s) => status = Some(s.0),
                DeframeEvent::Done => done = true,
            }
        }
        last = p;
    }
    (out, status, done)
}

#[test]
fn recovers_output_without_trailing_newline() {
    let s = Deframer::encode(N, b"no newline", 3);
    assert_eq!(run_split(&s, &[]), (b"no newline".to_vec(), Some(3), true));
}

#[test]
fn noise_before_begin_is_dropped_and_marker_lookalikes_kept() {
    let m = Markers::new(N);
    let mut s = b"prompt junk \x1b[?2004h".to_vec();
    let body = [&m.full('E')[..10], b"WHIM", &m.prefix.as_bytes()[..20]].concat();
    s.extend(Deframer::encode(N, &body, 0));
    assert_eq!(run_split(&s, &[]), (body, Some(0), true));
}

#[test]
fn signal_status_maps_to_signal() {
    assert_eq!(ExitStatus(137).signal(), Some(9));
    assert_eq!(ExitStatus(3).signal(), None);
    assert_eq!(ExitStatus(255).code(), 255);
}

#[test]
fn malformed_status_is_an_error() {
    let m = Markers::new(N);
    let mut s = m.full('B');
    s.extend(m.full('E'));
    s.extend(b"x;");
    assert_eq!(Deframer::for_nonce(N).feed(&s), Err(ExecError::MalformedStatus));
}

#[test]
fn quoting_is_printable_and_escapes_everything_dangerous() {
    assert_eq!(quote_word(b"a b"), "$'a b'");
    assert_eq!(quote_word(b"it's $HOME *"), "$'it\\x27s $HOME *'");
    assert_eq!(quote_word(b"\\\n\t\xff"), "$'\\x5c\\x0a\\x09\\xff'");
    assert!(quote_word(&(0..=255u8).collect::<Vec<_>>()).bytes().all(|b| (0x20..0x7f).contains(&b)));
}

#[test]
fn command_rejects_empty_and_nul() {
    assert_eq!(Command::new(vec![], false), Err(ExecError::EmptyCommand));
    assert_eq!(Command::new(vec![b"a".to_vec(), b"b\0".to_vec()], false), Err(ExecError::NulInArgument { index: 1 }));
}

fn drain(p: &mut PtyExec) -> Vec<ExecEvent> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

#[test]
fn driver_boots_runs_and_streams_stdin() {
    let boot = Nonce([1; 16]);
    let mut p = PtyExec::new(boot);
    let ev = drain(&mut p);
    assert!(matches!(&ev[..], [ExecEvent::Transmit(b)] if b.starts_with(b" stty raw -echo")));
    p.start(Command::new(vec![b"cat".to_vec()], true).unwrap(), N).unwrap();
    assert_eq!(drain(&mut p), vec![]);
    p.handle_pty_output(b"\x1b[?2004h\xce\xbb $ echo...").unwrap();
    p.handle_pty_output(&Markers::new(boot).full('R')).unwrap();
    let ev = drain(&mut p);
    assert!(matches!(&ev[..], [ExecEvent::Transmit(s)] if s.ends_with(b"\n") && s.windows(4).any(|w| w == b"< <(")));
    p.write_stdin(b"hello");
    p.close_stdin();
    p.write_stdin(b"ignored");
    assert_eq!(drain(&mut p), vec![ExecEvent::Transmit(b"00000005hello".to_vec()), ExecEvent::Transmit(b"00000000".to_vec())]);
    p.handle_pty_output(&Deframer::encode(N, b"hello", 0)).unwrap();
    assert_eq!(drain(&mut p), vec![ExecEvent::Output(b"hello".to_vec()), ExecEvent::Exited(ExitStatus(0)), ExecEvent::Idle]);
}

#[test]
fn exit_with_stdin_open_sends_the_terminator() {
    let mut p = PtyExec::new(Nonce([1; 16]));
    p.handle_pty_output(&Markers::new(Nonce([1; 16])).full('R')).unwrap();
    p.start(Command::new(vec![b"true".to_vec()], true).unwrap(), N).unwrap();
    drain(&mut p);
    let s = Deframer::encode(N, b"", 0);
    let end = s.len() - Markers::new(N).full('D').len();
    p.handle_pty_output(&s[..end]).unwrap();
    assert_eq!(drain(&mut p), vec![ExecEvent::Transmit(b"00000000".to_vec()), ExecEvent::Exited(ExitStatus(0))]);
    assert!(p.start(Command::new(vec![b"x".to_vec()], false).unwrap(), N).is_err());
    p.handle_pty_output(&s[end..]).unwrap();
    assert_eq!(drain(&mut p), vec![ExecEvent::Idle]);
}

proptest! {
    #[test]
    fn any_split_gives_the_same_result(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        noise in proptest::collection::vec(any::<u8>(), 0..40),
        status in any::<u8>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut stream = noise.clone();
        // Noise must not itself hold a BEGIN marker; random bytes never do.
        stream.extend(Deframer::encode(N, &body, status));
        let whole = run_split(&stream, &[]);
        prop_assert_eq!(&whole, &(body.clone(), Some(status), true));
        prop_assert_eq!(run_split(&stream, &cuts), whole);
    }

    #[test]
    fn marker_fragments_in_output_survive(
        pieces in proptest::collection::vec((0usize..40, 0usize..40), 0..10),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let end = Markers::new(N).full('E');
        let body: Vec<u8> = pieces.iter().flat_map(|&(a, b)| {
            let (a, b) = (a.min(end.len() - 1), b.min(end.len() - 1));
            [&end[..a], b"x", &end[end.len() - b..]].concat()
        }).collect();
        let stream = Deframer::encode(N, &body, 9);
        prop_assert_eq!(run_split(&stream, &cuts), (body, Some(9), true));
    }

    #[test]
    fn driver_is_split_invariant(out in proptest::collection::vec(any::<u8>(), 0..200), cut in any::<usize>()) {
        let boot = Nonce([2; 16]);
        let mut stream = b"banner\r\n".to_vec();
        stream.extend(Markers::new(boot).full('R'));
        stream.extend(Deframer::encode(N, &out, 42));
        let cut = cut % (stream.len() + 1);
        let mut p = PtyExec::new(boot);
        p.start(Command::new(vec![b"x".to_vec()], false).unwrap(), N).unwrap();
        p.handle_pty_output(&stream[..cut]).unwrap();
        p.handle_pty_output(&stream[cut..]).unwrap();
        let ev = drain(&mut p);
        let got: Vec<u8> = ev.iter().filter_map(|e| if let ExecEvent::Output(b) = e { Some(b.clone()) } else { None }).flatten().collect();
        prop_assert_eq!(got, out);
        prop_assert!(ev.contains(&ExecEvent::Exited(ExitStatus(42))));
        prop_assert_eq!(ev.last(), Some(&ExecEvent::Idle));
    }
}
