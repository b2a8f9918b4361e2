//! Suspend and resume as machines: the operation, then GetMicrovm on launch's poll
//! schedule ([`poll_delay`]) until the VM reaches the target state, ends, or the deadline
//! passes. The service's refusals (a terminated VM's state "cannot be changed") come back
//! with its own words.
//!
//! Drive it like [`crate::lifecycle::Launch`]: after `new` and every `handle_*`, drain
//! [`Transition::poll_command`]; call [`Transition::handle_timeout`] when
//! [`Transition::poll_timeout`] passes; [`Transition::poll_outcome`] gives the result once.

use std::collections::VecDeque;
use std::time::Duration;

use crate::lifecycle::{VmState, poll_delay};

/// How long a suspend or resume may take unless told otherwise.
pub const DEFAULT_TRANSITION_TIMEOUT: Duration = Duration::from_secs(120);

/// What to do to a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// SuspendMicrovm, then wait for SUSPENDED.
    Suspend,
    /// ResumeMicrovm, then wait for RUNNING.
    Resume,
}

impl PowerAction {
    /// The service operation.
    #[must_use]
    pub fn operation(self) -> &'static str {
        match self {
            PowerAction::Suspend => "SuspendMicrovm",
            PowerAction::Resume => "ResumeMicrovm",
        }
    }

    /// The state the VM must reach.
    #[must_use]
    pub fn target(self) -> VmState {
        match self {
            PowerAction::Suspend => VmState::Suspended,
            PowerAction::Resume => VmState::Running,
        }
    }
}

/// A service call for the adapter to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerCommand {
    /// Call the action's operation ([`PowerAction::operation`]) on VM `id`.
    Call {
        /// The action.
        action: PowerAction,
        /// The VM.
        id: String,
    },
    /// Call GetMicrovm.
    GetMicrovm {
        /// The VM.
        id: String,
    },
}

/// Why a suspend or resume failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PowerError {
    /// A service call failed (the message is the service's).
    #[error("{operation}: {message}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// What the service said.
        message: String,
    },
    /// The VM ended while we waited.
    #[error("VM {id} went {state} instead of {target}")]
    Ended {
        /// The VM.
        id: String,
        /// The state it was to reach.
        target: String,
        /// The state it reached.
        state: String,
    },
    /// The VM did not reach the state in time.
    #[error("VM {id} was not {target} after {}s (last state {state})", waited.as_secs())]
    Timeout {
        /// The VM.
        id: String,
        /// The state it was to reach.
        target: String,
        /// The last state seen.
        state: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// One suspend or resume, call to settled state.
#[derive(Debug)]
pub struct Transition {
    action: PowerAction,
    id: String,
    started: Duration,
    deadline: Duration,
    polls: u32,
    last: Option<VmState>,
    timer: Option<Duration>,
    commands: VecDeque<PowerCommand>,
    outcome: Option<Result<(), PowerError>>,
}

impl Transition {
    /// Starts `action` on VM `id` at `now`, giving up after `timeout`.
    #[must_use]
    pub fn new(now: Duration, action: PowerAction, id: &str, timeout: Duration) -> Transition {
        let call = PowerCommand::Call { action, id: id.to_owned() };
        Transition {
            action,
            id: id.to_owned(),
            started: now,
            deadline: now + timeout,
            polls: 0,
            last: None,
            timer: None,
            commands: VecDeque::from([call]),
            outcome: None,
        }
    }

    /// Call after: the operation answered.
    pub fn handle_call(&mut self, _now: Duration, result: Result<(), String>) {
        match result {
            Ok(()) => self.commands.push_back(PowerCommand::GetMicrovm { id: self.id.clone() }),
            Err(message) => self.finish(Err(PowerError::Api { operation: self.action.operation(), message })),
        }
    }

    /// Call after: GetMicrovm answered with the VM's state.
    pub fn handle_get(&mut self, now: Duration, result: Result<VmState, String>) {
        let state = match result {
            Ok(s) => s,
            Err(message) => return self.finish(Err(PowerError::Api { operation: "GetMicrovm", message })),
        };
        let target = self.action.target();
        if state == target {
            return self.finish(Ok(()));
        }
        if state.is_final() {
            let (id, target, state) = (self.id.clone(), target.as_str().to_owned(), state.as_str().to_owned());
            return self.finish(Err(PowerError::Ended { id, target, state }));
        }
        self.last = Some(state);
        if now >= self.deadline {
            return self.time_out(now);
        }
        self.timer = Some((now + poll_delay(self.polls)).min(self.deadline));
        self.polls += 1;
    }

    /// Call after: the instant from `poll_timeout` passed.
    pub fn handle_timeout(&mut self, now: Duration) {
        match self.timer {
            Some(t) if now >= t => self.timer = None,
            _ => return,
        }
        if now >= self.deadline {
            self.time_out(now);
        } else {
            self.commands.push_back(PowerCommand::GetMicrovm { id: self.id.clone() });
        }
    }

    fn time_out(&mut self, now: Duration) {
        let state = self.last.as_ref().map_or("unknown", VmState::as_str).to_owned();
        let waited = now.saturating_sub(self.started);
        let target = self.action.target().as_str().to_owned();
        self.finish(Err(PowerError::Timeout { id: self.id.clone(), target, state, waited }));
    }

    fn finish(&mut self, r: Result<(), PowerError>) {
        self.timer = None;
        self.outcome.get_or_insert(r);
    }

    /// Next service call to make.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<PowerCommand> {
        if self.outcome.is_some() { None } else { self.commands.pop_front() }
    }

    /// When to call `handle_timeout` next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timer
    }

    /// The result, once.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<(), PowerError>> {
        self.outcome.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn get(id: &str) -> Option<PowerCommand> {
        Some(PowerCommand::GetMicrovm { id: id.into() })
    }

    #[test]
    fn suspend_polls_until_suspended() {
        let mut t = Transition::new(Duration::ZERO, PowerAction::Suspend, "vm", 10 * S);
        assert_eq!(t.poll_command(), Some(PowerCommand::Call { action: PowerAction::Suspend, id: "vm".into() }));
        t.handle_call(Duration::ZERO, Ok(()));
        assert_eq!(t.poll_command(), get("vm"));
        t.handle_get(Duration::ZERO, Ok(VmState::Suspending));
        assert_eq!(t.poll_command(), None);
        let wake = t.poll_timeout().expect("timer");
        assert!(wake > Duration::ZERO && wake < S);
        t.handle_timeout(wake);
        assert_eq!(t.poll_command(), get("vm"));
        t.handle_get(wake, Ok(VmState::Suspended));
        assert_eq!(t.poll_outcome(), Some(Ok(())));
        assert_eq!(t.poll_outcome(), None);
    }

    #[test]
    fn refusals_keep_the_service_words() {
        let mut t = Transition::new(Duration::ZERO, PowerAction::Resume, "vm", 10 * S);
        let _ = t.poll_command();
        let msg = "The MicroVM vm has been terminated and its state cannot be changed.";
        t.handle_call(Duration::ZERO, Err(msg.into()));
        assert_eq!(t.poll_command(), None);
        let e = t.poll_outcome().expect("outcome").expect_err("refused");
        assert_eq!(e.to_string(), format!("ResumeMicrovm: {msg}"));
    }

    #[test]
    fn ending_or_lagging_vms_fail() {
        let mut t = Transition::new(Duration::ZERO, PowerAction::Resume, "vm", 10 * S);
        t.handle_call(Duration::ZERO, Ok(()));
        t.handle_get(Duration::ZERO, Ok(VmState::Terminated));
        assert!(matches!(t.poll_outcome(), Some(Err(PowerError::Ended { .. }))));

        let mut t = Transition::new(Duration::ZERO, PowerAction::Resume, "vm", 2 * S);
        let _ = t.poll_command();
        t.handle_call(Duration::ZERO, Ok(()));
        let mut now = Duration::ZERO;
        while let Some(cmd) = t.poll_command() {
            assert_eq!(Some(cmd), get("vm"));
            t.handle_get(now, Ok(VmState::Suspended));
            if let Some(w) = t.poll_timeout() {
                now = w;
                t.handle_timeout(now);
            }
        }
        let e = t.poll_outcome().expect("outcome").expect_err("timeout");
        assert!(matches!(&e, PowerError::Timeout { state, .. } if state == "SUSPENDED"), "{e:?}");
        assert!(now <= 2 * S);
    }
}
