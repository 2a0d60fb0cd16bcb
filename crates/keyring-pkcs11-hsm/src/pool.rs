//! A bounded pool of PKCS#11 sessions.
//!
//! A `cryptoki::session::Session` is `Send` but not `Sync`: one thread at a time. The pool
//! lends each caller a whole session and takes it back afterwards; when every session is
//! lent and the maximum is reached, callers wait on a condition variable (they never fail
//! for lack of a session). Each pooled session carries the object handles found through it,
//! since handles are only guaranteed within the session that found them.

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A session with what it knows.
pub(crate) struct PooledSession {
    pub(crate) session: Session,
    /// The module lifetime the session was opened in.
    pub(crate) generation: u64,
    /// Key handles found through this session, by [`KeyRef`](crate::object::KeyRef) id.
    pub(crate) handles: HashMap<u64, ObjectHandle>,
}

/// What [`SessionPool::take`] hands out.
pub(crate) enum Ticket {
    /// An idle session.
    Reuse(PooledSession),
    /// Permission to open one more session (the slot is reserved; give it back with
    /// [`SessionPool::release_slot`] if opening fails).
    Open,
}

/// Counters for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// Sessions open now (idle or lent).
    pub open: usize,
    /// Sessions idle in the pool now.
    pub idle: usize,
    /// The configured maximum.
    pub max: usize,
    /// Sessions opened since the token handle was created.
    pub opened_total: u64,
    /// Times a caller had to wait for a session.
    pub waits: u64,
    /// Logins performed by this token handle (1 unless the token dropped the login state).
    pub logins: u64,
}

struct State {
    idle: Vec<PooledSession>,
    open: usize,
    opened_total: u64,
    waits: u64,
}

pub(crate) struct SessionPool {
    state: Mutex<State>,
    freed: Condvar,
    max: usize,
}

impl SessionPool {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                opened_total: 0,
                waits: 0,
            }),
            freed: Condvar::new(),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is counters and a list; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle session, or a reserved slot to open one; waits while the pool is exhausted.
    pub(crate) fn take(&self) -> Ticket {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ticket::Reuse(session);
            }
            if state.open < self.max {
                state.open += 1;
                return Ticket::Open;
            }
            state.waits += 1;
            state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Count a session opened on a reserved slot.
    pub(crate) fn count_opened(&self) {
        self.lock().opened_total += 1;
    }

    /// Return a healthy session.
    pub(crate) fn put_back(&self, session: PooledSession) {
        self.lock().idle.push(session);
        self.freed.notify_one();
    }

    /// Give up a slot (a session was discarded, or opening one failed).
    pub(crate) fn release_slot(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.freed.notify_one();
    }

    /// Take every idle session out (their slots stay reserved until released or put back).
    pub(crate) fn take_idle(&self) -> Vec<PooledSession> {
        std::mem::take(&mut self.lock().idle)
    }

    /// Release the slot of a lent session if the holder unwinds before returning it.
    pub(crate) fn guard(&self) -> SlotGuard<'_> {
        SlotGuard(self)
    }

    pub(crate) fn stats(&self, logins: u64) -> SessionStats {
        let state = self.lock();
        SessionStats {
            open: state.open,
            idle: state.idle.len(),
            max: self.max,
            opened_total: state.opened_total,
            waits: state.waits,
            logins,
        }
    }
}

/// Armed while a session is lent: if the borrower panics, the unwinding drops (closes) the
/// session and this gives its slot back, so the pool never shrinks.
pub(crate) struct SlotGuard<'a>(&'a SessionPool);

impl SlotGuard<'_> {
    /// The session came back normally.
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.0.release_slot();
    }
}
