//! Running one command through the shell pty, with no guest agent (reference §F.3).
//!
//! The shell the service gives us is interactive: readline, echo on, bracketed paste,
//! a prompt, CRLF output. [`PtyExec`] first types a bootstrap line that puts the pty
//! in raw mode without echo and replaces the interactive shell with a non-interactive
//! `bash` reading commands from the terminal. Each command is then sent as one script
//! line that prints a random-nonce BEGIN marker, runs the argv (quoted exactly once)
//! in a subshell, and prints an END marker carrying `$?`. The [`Deframer`] recovers
//! the exact output bytes and the status from a stream split anywhere.
//!
//! Standard input, when wanted, travels as chunks: an 8-digit decimal length, then the
//! bytes, each read by `dd iflag=fullblock`, ending with `00000000`. Only `dd` reads the
//! terminal while input flows: bash's `read` builtin assumes a terminal hands it one line
//! per read(2), which is false in raw mode, and would swallow data (seen with bash 5.2).
//! The loop reads whole chunks even after the command exits, so nothing meant as data is
//! ever run as a command.
//!
//! Drive it: `handle_pty_output` with every byte the shell sends, `write_stdin` /
//! `close_stdin` for input, then drain `poll_event` until `None`.

use std::collections::VecDeque;
use std::fmt::Write as _;

use memchr::memmem::Finder;

/// Largest stdin chunk: one `dd` in the VM reads each, so large chunks keep bulk input
/// (a `put`) from spending its time starting processes.
pub const STDIN_CHUNK: usize = 1024 * 1024;
/// Largest WebSocket frame of input: a chunk travels as several frames.
pub const MAX_FRAME: usize = 64 * 1024;
/// Digits of a stdin chunk's length header.
const LEN_DIGITS: usize = 8;
/// The header that ends standard input.
const STDIN_END: &str = "00000000";

/// A per-command random value; the adapter supplies it from a CSPRNG.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; 16]);

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonce(..)")
    }
}

impl Nonce {
    pub(crate) fn hex(&self) -> String {
        self.0.iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

/// The three markers of one command, as the remote prints them.
#[derive(Debug, Clone)]
struct Markers {
    prefix: String,
}

impl Markers {
    fn new(nonce: Nonce) -> Self {
        Self { prefix: format!("WHIM{}", nonce.hex()) }
    }
    fn full(&self, kind: char) -> Vec<u8> {
        format!("{}{kind}", self.prefix).into_bytes()
    }
    /// Shell text printing the marker without the marker itself appearing in the text.
    fn print(&self, kind: char) -> String {
        format!("printf '%s%s' '{}' '{kind}'", self.prefix)
    }
}

/// Exit status of a remote command: its code, or 128+n for a death by signal n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(pub u8);

impl ExitStatus {
    /// The shell's `$?`.
    #[must_use]
    pub fn code(self) -> i32 {
        i32::from(self.0)
    }
    /// The signal that killed the command, when `$?` says so (129..=192).
    #[must_use]
    pub fn signal(self) -> Option<i32> {
        (129..=192).contains(&self.0).then(|| i32::from(self.0) - 128)
    }
}

/// Errors of exec framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// No command was given.
    #[error("no command given: pass the program and its arguments")]
    EmptyCommand,
    /// An argument holds a NUL byte, which no Unix program can receive.
    #[error("argument {index} contains a NUL byte, which a Unix command line cannot carry")]
    NulInArgument {
        /// Position in argv.
        index: usize,
    },
    /// A command was started while another one is running.
    #[error("a command is already running on this shell")]
    Busy,
    /// The END marker carried something that is not an exit status.
    #[error("the remote shell sent a malformed exit status")]
    MalformedStatus,
}

/// Quotes bytes as one bash word, exactly once: `$'…'` with every byte outside
/// printable ASCII (and `'` and `\`) written as `\xHH`. The result is printable ASCII.
#[must_use]
pub fn quote_word(arg: &[u8]) -> String {
    let mut s = String::with_capacity(arg.len() + 3);
    s.push_str("$'");
    for &b in arg {
        if (0x20..0x7f).contains(&b) && b != b'\'' && b != b'\\' {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s.push('\'');
    s
}

/// The line that turns the service's interactive shell into a quiet command reader.
/// Typed while echo and readline are on, so it is printable ASCII and prints READY.
fn bootstrap_line(m: &Markers) -> String {
    // `stty raw` keeps output bytes exact (no CRLF) and input unprocessed; bash reading
    // a script from /dev/stdin is non-interactive and reads it one byte at a time. Without
    // HISTFILE the interactive shell saves no history as `exec` replaces it.
    format!(" stty raw -echo -iexten; unset HISTFILE; exec bash --norc --noprofile /dev/stdin\n{}\n", m.print('R'))
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    argv: Vec<Vec<u8>>,
    stdin: bool,
    timeout_secs: Option<u64>,
}

/// Seconds between SIGTERM and SIGKILL when a command's timeout expires.
pub const TIMEOUT_KILL_AFTER_SECS: u64 = 2;
/// The exit status of a command whose timeout expired (coreutils `timeout`'s).
pub const TIMED_OUT: ExitStatus = ExitStatus(124);

impl Command {
    /// A command from its argv bytes. `stdin` says whether input will be streamed;
    /// without it the command reads `/dev/null`.
    pub fn new(argv: Vec<Vec<u8>>, stdin: bool) -> Result<Self, ExecError> {
        if argv.is_empty() {
            return Err(ExecError::EmptyCommand);
        }
        if let Some(index) = argv.iter().position(|a| a.contains(&0)) {
            return Err(ExecError::NulInArgument { index });
        }
        Ok(Self { argv, stdin, timeout_secs: None })
    }

    /// Kills the command, with every process of its process group, once `timeout` passes
    /// (whole seconds, rounded up): SIGTERM, then SIGKILL [`TIMEOUT_KILL_AFTER_SECS`] later.
    /// It then ends with [`TIMED_OUT`]. Runs coreutils `timeout` in the VM, which puts the
    /// command in a process group of its own and signals that group.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.timeout_secs = timeout.map(|t| (t.as_secs() + u64::from(t.subsec_nanos() > 0)).max(1));
        self
    }

    /// The timeout, when one was set.
    #[must_use]
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout_secs.map(std::time::Duration::from_secs)
    }

    fn script(&self, m: &Markers) -> String {
        let words: Vec<String> = self.argv.iter().map(|a| quote_word(a)).collect();
        // The subshell's own stderr is /dev/null, so when the command dies of a signal
        // bash's report ("Killed", "Terminated") goes nowhere instead of into the output;
        // the command itself gets the real stderr back (fd 3).
        let (prefix, wrap, end) = match self.timeout_secs {
            None => ("", String::new(), "__s=$?".to_owned()),
            // A command that ignored SIGTERM dies of the SIGKILL sent to the whole group,
            // `timeout` itself included (137); past the deadline that is a timeout too.
            Some(secs) => (
                "__t=$SECONDS; ",
                format!("timeout -k {TIMEOUT_KILL_AFTER_SECS} {secs} "),
                format!("__s=$?; [ $__s = 137 ] && [ $((SECONDS - __t)) -gt {secs} ] && __s={}", TIMED_OUT.0),
            ),
        };
        let run = format!("{prefix}( exec 3>&2 2>/dev/null; {wrap}{} 2>&3 3>&- )", words.join(" "));
        let end = format!("{end}; printf '%s%s%d;' '{}' 'E' \"$__s\"", m.prefix);
        if self.stdin {
            let reader = format!(
                "trap '' PIPE; while __n=$(dd bs={LEN_DIGITS} count=1 iflag=fullblock status=none) && \
                 [ ${{#__n}} = {LEN_DIGITS} ] && [ \"$__n\" != {STDIN_END} ]; do \
                 dd bs=$((10#$__n)) count=1 iflag=fullblock status=none 2>/dev/null; done"
            );
            // The reader's pid is kept and waited for: it must consume every chunk up to
            // the end marker before the shell reads its next command from the terminal,
            // even when the command exits without reading. (`wait $!` after `< <(…)` does
            // not wait for the process substitution.)
            format!(
                "{}; exec 7< <({reader}); __p=$!; {run} <&7 7<&-; {end}; exec 7<&-; wait $__p 2>/dev/null; {}\n",
                m.print('B'),
                m.print('D')
            )
        } else {
            format!("{}; {run} </dev/null; {end}; {}\n", m.print('B'), m.print('D'))
        }
    }
}

/// What happened, for the adapter to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// Bytes to send to the pty (as binary frames, in order).
    Transmit(Vec<u8>),
    /// Output of the command, exact.
    Output(Vec<u8>),
    /// The command ended.
    Exited(ExitStatus),
    /// The shell is ready for the next command.
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Booting,
    Idle,
    Running,
    Draining,
}

/// Runs commands one after another on one shell session.
#[derive(Debug)]
pub struct PtyExec {
    phase: Phase,
    boot: Deframer,
    current: Option<Deframer>,
    pending: Option<(Command, Nonce)>,
    stdin_open: bool,
    events: VecDeque<ExecEvent>,
}

impl PtyExec {
    /// A new driver; its first event transmits the bootstrap.
    #[must_use]
    pub fn new(boot_nonce: Nonce) -> Self {
        let m = Markers::new(boot_nonce);
        let events = VecDeque::from([ExecEvent::Transmit(bootstrap_line(&m).into_bytes())]);
        Self { phase: Phase::Booting, boot: Deframer::ready_only(&m), current: None, pending: None, stdin_open: false, events }
    }

    /// Starts a command (queued until the bootstrap finished). `nonce` MUST be fresh.
    pub fn start(&mut self, cmd: Command, nonce: Nonce) -> Result<(), ExecError> {
        if self.pending.is_some() || matches!(self.phase, Phase::Running | Phase::Draining) {
            return Err(ExecError::Busy);
        }
        self.pending = Some((cmd, nonce));
        if self.phase == Phase::Idle {
            self.launch_pending();
        }
        Ok(())
    }

    fn launch_pending(&mut self) {
        let Some((cmd, nonce)) = self.pending.take() else { return };
        let m = Markers::new(nonce);
        self.stdin_open = cmd.stdin;
        self.events.push_back(ExecEvent::Transmit(cmd.script(&m).into_bytes()));
        self.current = Some(Deframer::command(&m));
        self.phase = Phase::Running;
    }

    /// Queues standard input for the running command. Ignored after `close_stdin`.
    pub fn write_stdin(&mut self, data: &[u8]) {
        if !self.stdin_open || self.phase != Phase::Running {
            return;
        }
        for chunk in data.chunks(STDIN_CHUNK) {
            let mut framed = format!("{:0LEN_DIGITS$}", chunk.len()).into_bytes();
            framed.extend_from_slice(chunk);
            self.events.extend(framed.chunks(MAX_FRAME).map(|f| ExecEvent::Transmit(f.to_vec())));
        }
    }

    /// Ends standard input (the command sees EOF).
    pub fn close_stdin(&mut self) {
        if std::mem::take(&mut self.stdin_open) {
            self.events.push_back(ExecEvent::Transmit(STDIN_END.as_bytes().to_vec()));
        }
    }

    /// True while a command runs and still accepts input.
    #[must_use]
    pub fn wants_stdin(&self) -> bool {
        self.stdin_open && self.phase == Phase::Running
    }

    /// Call after: the shell sent bytes.
    pub fn handle_pty_output(&mut self, bytes: &[u8]) -> Result<(), ExecError> {
        if self.phase == Phase::Booting {
            let rest = self.boot.feed_until_ready(bytes);
            let Some(rest) = rest else { return Ok(()) };
            self.phase = Phase::Idle;
            self.launch_pending();
            return self.handle_pty_output(&bytes[rest..]);
        }
        let Some(d) = self.current.as_mut() else { return Ok(()) };
        for ev in d.feed(bytes)? {
            self.on_frame_event(ev);
        }
        Ok(())
    }

    fn on_frame_event(&mut self, ev: DeframeEvent) {
        match ev {
            DeframeEvent::Output(b) => self.events.push_back(ExecEvent::Output(b)),
            DeframeEvent::Exited(s) => {
                self.close_stdin();
                self.phase = Phase::Draining;
                self.events.push_back(ExecEvent::Exited(s));
            }
            DeframeEvent::Done => {
                self.phase = Phase::Idle;
                self.current = None;
                self.events.push_back(ExecEvent::Idle);
                self.launch_pending();
            }
        }
    }

    /// Next thing to do or report.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ExecEvent> {
        self.events.pop_front()
    }
}

/// What the de-framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeframeEvent {
    /// Command output bytes.
    Output(Vec<u8>),
    /// The END marker with the status.
    Exited(ExitStatus),
    /// The DONE marker: the shell reads the next command.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Ready,
    Begin,
    Body,
    Status,
    Done,
    Finished,
}

/// A push parser of one command's framed output. Binary-safe; never decodes text.
#[derive(Debug)]
pub struct Deframer {
    stage: Stage,
    ready: Finder<'static>,
    begin: Finder<'static>,
    end: Finder<'static>,
    done: Finder<'static>,
    /// Bytes held back because they may start a marker.
    held: Vec<u8>,
    status: Vec<u8>,
}

impl Deframer {
    fn with_stage(m: &Markers, stage: Stage) -> Self {
        let f = |k| Finder::new(&m.full(k)).into_owned();
        Self { stage, ready: f('R'), begin: f('B'), end: f('E'), done: f('D'), held: Vec::new(), status: Vec::new() }
    }
    fn ready_only(m: &Markers) -> Self {
        Self::with_stage(m, Stage::Ready)
    }
    fn command(m: &Markers) -> Self {
        Self::with_stage(m, Stage::Begin)
    }

    /// A de-framer for one command's output keyed by its nonce (for tests and fuzzing).
    #[must_use]
    pub fn for_nonce(nonce: Nonce) -> Self {
        Self::command(&Markers::new(nonce))
    }

    /// The bytes the remote prints for a command with `nonce` that output `out` and
    /// exited with `status` (for tests, benches and fuzzing).
    #[must_use]
    pub fn encode(nonce: Nonce, out: &[u8], status: u8) -> Vec<u8> {
        let m = Markers::new(nonce);
        let mut v = m.full('B');
        v.extend_from_slice(out);
        v.extend_from_slice(&m.full('E'));
        v.extend_from_slice(format!("{status};").as_bytes());
        v.extend_from_slice(&m.full('D'));
        v
    }

    /// Feeds bytes until READY; returns the offset just past it once found.
    fn feed_until_ready(&mut self, bytes: &[u8]) -> Option<usize> {
        let keep = self.ready.needle().len() - 1;
        let start = self.held.len();
        self.held.extend_from_slice(bytes);
        match self.ready.find(&self.held) {
            Some(i) => {
                let past = i + self.ready.needle().len();
                self.held.clear();
                self.stage = Stage::Finished;
                Some(past.saturating_sub(start))
            }
            None => {
                let cut = self.held.len().saturating_sub(keep);
                self.held.drain(..cut);
                None
            }
        }
    }

    /// Feeds bytes; returns what they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<DeframeEvent>, ExecError> {
        let mut out = Vec::new();
        let mut input = bytes;
        while !input.is_empty() {
            let used = self.step(input, &mut out)?;
            input = &input[used..];
        }
        Ok(out)
    }

    /// Consumes a prefix of `input`; returns how much.
    fn step(&mut self, input: &[u8], out: &mut Vec<DeframeEvent>) -> Result<usize, ExecError> {
        match self.stage {
            Stage::Begin => Ok(self.skip_to(input, Stage::Body, Marker::Begin)),
            Stage::Body => Ok(self.body(input, out)),
            Stage::Status => self.status(input, out),
            Stage::Done => {
                let used = self.skip_to(input, Stage::Finished, Marker::Done);
                if self.stage == Stage::Finished {
                    out.push(DeframeEvent::Done);
                }
                Ok(used)
            }
            Stage::Ready | Stage::Finished => Ok(input.len()),
        }
    }

    fn finder(&self, which: Marker) -> &Finder<'static> {
        match which {
            Marker::Begin => &self.begin,
            Marker::Done => &self.done,
        }
    }

    /// Discards bytes up to and including a marker, then moves to `next`.
    fn skip_to(&mut self, input: &[u8], next: Stage, which: Marker) -> usize {
        let start = self.held.len();
        self.held.extend_from_slice(input);
        let needle = self.finder(which).needle().len();
        if let Some(i) = self.finder(which).find(&self.held) {
            self.held.clear();
            self.stage = next;
            return i + needle - start;
        }
        let cut = self.held.len().saturating_sub(needle - 1);
        self.held.drain(..cut);
        input.len()
    }

    /// Emits output up to the END marker, holding back a possible marker prefix.
    fn body(&mut self, input: &[u8], out: &mut Vec<DeframeEvent>) -> usize {
        let needle = self.end.needle().len();
        if self.held.is_empty() {
            return self.body_direct(input, out, needle);
        }
        let start = self.held.len();
        self.held.extend_from_slice(input);
        if let Some(i) = self.end.find(&self.held) {
            push_output(out, &self.held[..i]);
            self.held.clear();
            self.stage = Stage::Status;
            return i + needle - start;
        }
        let keep = partial_suffix(&self.held, self.end.needle());
        let emit = self.held.len() - keep;
        push_output(out, &self.held[..emit]);
        self.held.drain(..emit);
        input.len()
    }

    /// The fast path: search the caller's slice without copying it.
    fn body_direct(&mut self, input: &[u8], out: &mut Vec<DeframeEvent>, needle: usize) -> usize {
        if let Some(i) = self.end.find(input) {
            push_output(out, &input[..i]);
            self.stage = Stage::Status;
            return i + needle;
        }
        let keep = partial_suffix(input, self.end.needle());
        let emit = input.len() - keep;
        push_output(out, &input[..emit]);
        self.held.extend_from_slice(&input[emit..]);
        input.len()
    }

    fn status(&mut self, input: &[u8], out: &mut Vec<DeframeEvent>) -> Result<usize, ExecError> {
        for (i, &b) in input.iter().enumerate() {
            if b == b';' {
                let code = parse_status(&self.status)?;
                out.push(DeframeEvent::Exited(ExitStatus(code)));
                self.stage = Stage::Done;
                return Ok(i + 1);
            }
            if !b.is_ascii_digit() || self.status.len() >= 3 {
                return Err(ExecError::MalformedStatus);
            }
            self.status.push(b);
        }
        Ok(input.len())
    }
}

#[derive(Debug, Clone, Copy)]
enum Marker {
    Begin,
    Done,
}

fn push_output(out: &mut Vec<DeframeEvent>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(DeframeEvent::Output(last)) = out.last_mut() {
        last.extend_from_slice(bytes);
    } else {
        out.push(DeframeEvent::Output(bytes.to_vec()));
    }
}

fn parse_status(digits: &[u8]) -> Result<u8, ExecError> {
    std::str::from_utf8(digits).ok().and_then(|s| s.parse::<u8>().ok()).ok_or(ExecError::MalformedStatus)
}

/// Length of the longest suffix of `hay` that is a proper prefix of `needle`.
pub(crate) fn partial_suffix(hay: &[u8], needle: &[u8]) -> usize {
    let max = (needle.len() - 1).min(hay.len());
    (1..=max).rev().find(|&k| hay[hay.len() - k..] == needle[..k]).unwrap_or(0)
}

#[cfg(test)]
mod tests;
