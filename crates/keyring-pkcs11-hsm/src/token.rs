//! A handle on one token: the shared module, the slot, the login, and the session pool.

use crate::config::{Pin, Pkcs11Config, RandomSource, TokenSelector, UserType};
use crate::error::{recovery_for, rv, Pkcs11Error, Recovery};
use crate::module::{self, Module};
use crate::object::{self, KeyRef};
use crate::pool::{PooledSession, SessionPool, SessionStats, Ticket};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, SessionState};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// An open token: the module (shared process-wide), the slot, the login and a pool of
/// sessions. Cheap to clone; keyrings on the same token should share one handle.
///
/// Opening logs in once (with the configured PIN and user type). PKCS#11 keeps the login
/// per process and token while any session is open, so sessions opened later start logged
/// in. If the token drops the login or closes sessions, the next operation logs in again
/// or opens a new session and retries once.
///
/// Because login state belongs to the process, a second handle opened on a token the
/// process is already logged in to is not asked for its PIN again by the token.
#[derive(Clone)]
pub struct Pkcs11Token {
    pub(crate) inner: Arc<TokenInner>,
}

pub(crate) struct TokenInner {
    module: Arc<Module>,
    slot: Slot,
    label: String,
    pin: Pin,
    user_type: UserType,
    random: RandomSource,
    pool: SessionPool,
    login_lock: Mutex<()>,
    logins: AtomicU64,
    mechanisms: Vec<MechanismType>,
}

/// An operation's failure, before the session layer decides what to do with it.
#[derive(Debug)]
pub(crate) enum OpError {
    /// A PKCS#11 call failed while doing the named thing; may be a session fault.
    Ck(CkError, &'static str),
    /// A failure that is final whatever the session's state.
    Fail(Pkcs11Error),
}

impl From<Pkcs11Error> for OpError {
    fn from(e: Pkcs11Error) -> Self {
        Self::Fail(e)
    }
}

impl Pkcs11Token {
    /// Load the module (once per process), find the token, open a first session and log in.
    /// Blocking; from async code use [`open_async`](Self::open_async).
    pub fn open(config: Pkcs11Config) -> Result<Self, Pkcs11Error> {
        if config.max_sessions == 0 {
            return Err(Pkcs11Error::Config(
                "max_sessions must be at least 1".into(),
            ));
        }
        let pin = config.pin.resolve()?;
        let module = module::load(&config.module)?;
        let ctx = module.context();
        let slots = ctx
            .get_slots_with_token()
            .map_err(|source| Pkcs11Error::Token {
                token: String::new(),
                operation: "listing slots",
                source,
            })?;
        let (slot, label) = match &config.token {
            TokenSelector::Label(wanted) => {
                let mut available = Vec::new();
                let mut found = None;
                for slot in slots {
                    let Ok(info) = ctx.get_token_info(slot) else {
                        continue;
                    };
                    let label = info.label().trim_end().to_owned();
                    if label == wanted.trim_end() && found.is_none() {
                        found = Some((slot, label));
                    } else {
                        available.push(label);
                    }
                }
                found.ok_or_else(|| Pkcs11Error::TokenNotFound {
                    label: wanted.clone(),
                    available,
                })?
            }
            TokenSelector::Slot(id) => {
                let slot = slots
                    .into_iter()
                    .find(|s| s.id() == *id)
                    .ok_or(Pkcs11Error::SlotNotFound { slot: *id })?;
                let info = ctx
                    .get_token_info(slot)
                    .map_err(|source| Pkcs11Error::Token {
                        token: format!("slot {id}"),
                        operation: "reading token information",
                        source,
                    })?;
                (slot, info.label().trim_end().to_owned())
            }
        };
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(|source| Pkcs11Error::Token {
                token: label.clone(),
                operation: "listing mechanisms",
                source,
            })?;
        let inner = Arc::new(TokenInner {
            module,
            slot,
            label,
            pin,
            user_type: config.user_type,
            random: config.random,
            pool: SessionPool::new(config.max_sessions),
            login_lock: Mutex::new(()),
            logins: AtomicU64::new(0),
            mechanisms,
        });
        // Open one session now so that a wrong PIN fails here rather than on first use.
        let first = inner.checkout()?;
        inner.pool.put_back(first);
        tracing::debug!(token = %inner.label, slot = inner.slot.id(), "PKCS#11 token opened");
        Ok(Self { inner })
    }

    /// [`open`](Self::open) on the blocking thread pool when called inside a tokio runtime.
    pub async fn open_async(config: Pkcs11Config) -> Result<Self, Pkcs11Error> {
        run_blocking(move || Self::open(config)).await
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The slot id the token was found in.
    pub fn slot_id(&self) -> u64 {
        self.inner.slot.id()
    }

    /// Session pool and login counters.
    pub fn stats(&self) -> SessionStats {
        self.inner
            .pool
            .stats(self.inner.logins.load(Ordering::Relaxed))
    }

    /// The process-wide cryptoki context of the module, for operations this crate does not
    /// offer (creating objects, reading token information). Do not call `C_Finalize` or
    /// `C_Logout` on it unless you mean to end every keyring's sessions or login.
    pub fn context(&self) -> &cryptoki::context::Pkcs11 {
        self.inner.module.context()
    }

    /// The slot, for use with [`context`](Self::context).
    pub fn slot(&self) -> Slot {
        self.inner.slot
    }
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("module", &self.inner.module.path())
            .field("label", &self.inner.label)
            .field("slot", &self.inner.slot.id())
            .field("user_type", &self.inner.user_type)
            .field("random", &self.inner.random)
            .field("sessions", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TokenInner {
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn token_error(&self, operation: &'static str, source: CkError) -> Pkcs11Error {
        Pkcs11Error::Token {
            token: self.label.clone(),
            operation,
            source,
        }
    }

    /// Fail unless the token lists `mechanism`.
    pub(crate) fn require_mechanism(
        &self,
        mechanism: MechanismType,
        name: &str,
    ) -> Result<(), Pkcs11Error> {
        if self.mechanisms.contains(&mechanism) {
            Ok(())
        } else {
            Err(Pkcs11Error::MechanismUnsupported {
                token: self.label.clone(),
                mechanism: name.to_owned(),
                detail: "the mechanism is not in the token's mechanism list".into(),
            })
        }
    }

    /// Run `op` with a pooled session, recovering once from a closed session, a lost login
    /// or a finalized module.
    pub(crate) fn run<T>(
        &self,
        mut op: impl FnMut(&mut PooledSession) -> Result<T, OpError>,
    ) -> Result<T, Pkcs11Error> {
        let mut last = None;
        for _attempt in 0..2 {
            let mut session = self.checkout()?;
            let guard = self.pool.guard();
            let outcome = op(&mut session);
            guard.disarm();
            let (error, what) = match outcome {
                Ok(value) => {
                    self.pool.put_back(session);
                    return Ok(value);
                }
                Err(OpError::Fail(e)) => {
                    self.pool.put_back(session);
                    return Err(e);
                }
                Err(OpError::Ck(e, what)) => (e, what),
            };
            match recovery_for(&error) {
                Recovery::None => {
                    self.pool.put_back(session);
                    return Err(self.token_error(what, error));
                }
                Recovery::NewSession => {
                    if rv(&error) == Some(RvError::OperationActive) {
                        // Alive but stuck in an operation: close it properly.
                        drop(session);
                    } else {
                        // The token says the handle is gone; closing it again could close
                        // another session that was given the same number.
                        std::mem::forget(session.session);
                    }
                    self.pool.release_slot();
                    self.sweep_idle();
                }
                Recovery::Reinitialize => {
                    let generation = session.generation;
                    std::mem::forget(session.session);
                    self.pool.release_slot();
                    self.module.reinitialize(generation)?;
                    self.sweep_idle();
                }
                Recovery::Relogin => {
                    session.handles.clear();
                    let relogged = self.ensure_login(&session.session);
                    self.pool.put_back(session);
                    relogged?;
                }
            }
            tracing::warn!(
                token = %self.label,
                operation = what,
                error = %error,
                "PKCS#11 session fault; retrying once with a recovered session"
            );
            last = Some(error);
        }
        Err(Pkcs11Error::SessionLost {
            token: self.label.clone(),
            detail: last.map(|e| e.to_string()).unwrap_or_default(),
        })
    }

    /// Check idle sessions after a session fault: keep live ones, drop dead ones.
    fn sweep_idle(&self) {
        let generation = self.module.generation();
        for session in self.pool.take_idle() {
            if session.generation == generation && session.session.get_session_info().is_ok() {
                self.pool.put_back(session);
            } else {
                std::mem::forget(session.session);
                self.pool.release_slot();
            }
        }
    }

    /// A session from the pool, or a new logged-in one.
    fn checkout(&self) -> Result<PooledSession, Pkcs11Error> {
        loop {
            match self.pool.take() {
                Ticket::Reuse(session) if session.generation == self.module.generation() => {
                    return Ok(session)
                }
                Ticket::Reuse(stale) => {
                    // Opened before the module was re-initialized: its handle means nothing.
                    std::mem::forget(stale.session);
                    self.pool.release_slot();
                }
                Ticket::Open => {
                    return self
                        .open_session()
                        .inspect_err(|_| self.pool.release_slot());
                }
            }
        }
    }

    fn open_session(&self) -> Result<PooledSession, Pkcs11Error> {
        let mut last = None;
        for _attempt in 0..2 {
            let generation = self.module.generation();
            let ctx = self.module.context();
            let opened = match self.user_type {
                UserType::SecurityOfficer => ctx.open_rw_session(self.slot),
                _ => ctx.open_ro_session(self.slot),
            };
            match opened {
                Ok(session) => {
                    self.pool.count_opened();
                    self.ensure_login(&session)?;
                    return Ok(PooledSession {
                        session,
                        generation,
                        handles: Default::default(),
                    });
                }
                Err(e) if recovery_for(&e) == Recovery::Reinitialize => {
                    self.module.reinitialize(generation)?;
                    last = Some(e);
                }
                Err(e) => return Err(self.token_error("opening a session", e)),
            }
        }
        Err(Pkcs11Error::SessionLost {
            token: self.label.clone(),
            detail: last.map(|e| e.to_string()).unwrap_or_default(),
        })
    }

    fn logged_in(&self, session: &Session) -> Result<bool, Pkcs11Error> {
        let state = session
            .get_session_info()
            .map_err(|e| self.token_error("reading the session state", e))?
            .session_state();
        Ok(match self.user_type {
            UserType::SecurityOfficer => state == SessionState::RwSecurityOfficer,
            _ => matches!(state, SessionState::RoUser | SessionState::RwUser),
        })
    }

    /// Log in unless the process already is (login state is per process and token).
    fn ensure_login(&self, session: &Session) -> Result<(), Pkcs11Error> {
        if self.logged_in(session)? {
            return Ok(());
        }
        let _one_at_a_time = self.login_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.logged_in(session)? {
            return Ok(());
        }
        let pin = AuthPin::from(self.pin.expose());
        let unusable = |reason| Pkcs11Error::PinUnusable {
            token: self.label.clone(),
            reason,
        };
        match session.login(self.user_type.into(), Some(&pin)) {
            Ok(()) => {
                self.logins.fetch_add(1, Ordering::Relaxed);
                tracing::info!(token = %self.label, user_type = ?self.user_type, "logged in to PKCS#11 token");
                Ok(())
            }
            Err(e) => match rv(&e) {
                Some(RvError::UserAlreadyLoggedIn) => Ok(()),
                Some(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange) => {
                    Err(Pkcs11Error::WrongPin {
                        token: self.label.clone(),
                    })
                }
                Some(RvError::PinLocked) => Err(unusable("the PIN is locked")),
                Some(RvError::PinExpired) => Err(unusable("the PIN has expired")),
                Some(RvError::UserPinNotInitialized) => {
                    Err(unusable("the user PIN is not initialized"))
                }
                _ => Err(self.token_error("logging in", e)),
            },
        }
    }

    /// The handle of `key` in this session (found once per session, then cached).
    pub(crate) fn handle(
        &self,
        session: &mut PooledSession,
        key: &KeyRef,
    ) -> Result<ObjectHandle, OpError> {
        if let Some(handle) = session.handles.get(&key.cache_id) {
            return Ok(*handle);
        }
        let handle = object::find(&session.session, key, &self.label)?;
        session.handles.insert(key.cache_id, handle);
        Ok(handle)
    }

    /// Fill `out` from the configured random source, for `purpose` (a
    /// [`RNG_TRACE_TARGET`](crate::RNG_TRACE_TARGET) purpose).
    pub(crate) fn fill_random(
        &self,
        session: &Session,
        out: &mut [u8],
        purpose: &'static str,
    ) -> Result<(), OpError> {
        match self.random {
            RandomSource::Token => session
                .generate_random_slice(out)
                .map_err(|e| OpError::Ck(e, "generating random bytes (C_GenerateRandom)"))?,
            RandomSource::System => esdk_core::crypto::provider()
                .fill_random(out)
                .map_err(|e| OpError::Fail(Pkcs11Error::Random(e.to_string())))?,
        }
        self.drew(purpose, out.len());
        Ok(())
    }

    /// Fill `out` from the configured random source, with a session of its own if needed.
    pub(crate) fn random(&self, out: &mut [u8], purpose: &'static str) -> Result<(), Pkcs11Error> {
        match self.random {
            RandomSource::Token => self.run(|s| self.fill_random(&s.session, out, purpose)),
            RandomSource::System => {
                esdk_core::crypto::provider()
                    .fill_random(out)
                    .map_err(|e| Pkcs11Error::Random(e.to_string()))?;
                self.drew(purpose, out.len());
                Ok(())
            }
        }
    }

    /// The [`RNG_TRACE_TARGET`](crate::RNG_TRACE_TARGET) event of one draw: where from,
    /// what for, how many bytes (never the bytes).
    fn drew(&self, purpose: &'static str, bytes: usize) {
        let source = match self.random {
            RandomSource::Token => "token",
            RandomSource::System => "system",
        };
        tracing::debug!(
            target: crate::RNG_TRACE_TARGET,
            token = %self.label,
            source,
            purpose,
            bytes,
            "random bytes drawn"
        );
    }

    pub(crate) fn random_source(&self) -> RandomSource {
        self.random
    }
}

/// Run a blocking PKCS#11 call: on tokio's blocking pool when a tokio runtime is current (so
/// async workers never block), inline otherwise (the `_blocking` API, `pollster`, plain
/// threads).
pub(crate) async fn run_blocking<T, F>(f: F) -> Result<T, Pkcs11Error>
where
    F: FnOnce() -> Result<T, Pkcs11Error> + Send + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .map_err(|e| Pkcs11Error::Runtime(e.to_string()))?,
        Err(_) => f(),
    }
}
