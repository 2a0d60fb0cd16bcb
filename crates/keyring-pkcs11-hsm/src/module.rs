//! One loaded and initialized PKCS#11 module per path, per process.
//!
//! `C_Initialize` may run once per process (a second call says
//! `CKR_CRYPTOKI_ALREADY_INITIALIZED`), so every token handle and keyring on the same module
//! shares one [`Module`] from a process-wide registry. Modules are never finalized: other
//! keyrings may still hold sessions, and the process exit releases the library.
//!
//! If something finalizes the module behind our back (another library in the process calling
//! `C_Finalize`), every session dies at once and calls answer
//! `CKR_CRYPTOKI_NOT_INITIALIZED`; [`Module::reinitialize`] initializes it again and bumps a
//! generation counter so that sessions from the old lifetime are never used, nor closed
//! (their handle numbers may have been handed out again).

use crate::error::{rv, Pkcs11Error};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A loaded, initialized PKCS#11 module.
pub(crate) struct Module {
    path: PathBuf,
    context: Pkcs11,
    generation: AtomicU64,
    reinit: Mutex<()>,
}

type Registry = Mutex<HashMap<PathBuf, Arc<Module>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn init_args() -> CInitializeArgs {
    // The module may use OS threads and OS locking: we call it from many threads.
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// The module at `path`, loaded and initialized on first use in this process.
pub(crate) fn load(path: &Path) -> Result<Arc<Module>, Pkcs11Error> {
    if !path.is_file() {
        return Err(Pkcs11Error::ModuleNotFound {
            path: path.to_owned(),
        });
    }
    // Two spellings of one file must not load and initialize it twice.
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut modules = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(module) = modules.get(&key) {
        return Ok(module.clone());
    }
    let context = Pkcs11::new(&key).map_err(|e| Pkcs11Error::ModuleLoad {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    match context.initialize(init_args()) {
        Ok(()) => {}
        // Someone else in this process (another library) initialized it: share that.
        Err(e) if rv(&e) == Some(RvError::CryptokiAlreadyInitialized) => {}
        Err(source) => {
            return Err(Pkcs11Error::ModuleInitialize {
                path: path.to_owned(),
                source,
            })
        }
    }
    tracing::info!(module = %key.display(), "PKCS#11 module loaded and initialized");
    let module = Arc::new(Module {
        path: key.clone(),
        context,
        generation: AtomicU64::new(0),
        reinit: Mutex::new(()),
    });
    modules.insert(key, module.clone());
    Ok(module)
}

impl Module {
    /// The cryptoki context.
    pub(crate) fn context(&self) -> &Pkcs11 {
        &self.context
    }

    /// The module's path (canonical where possible).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The current initialization lifetime; sessions remember the one they were opened in.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Initialize the module again after it was finalized, unless another thread already did
    /// since `seen` (the generation the caller's failing session belonged to).
    pub(crate) fn reinitialize(&self, seen: u64) -> Result<(), Pkcs11Error> {
        let _guard = self.reinit.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation() != seen {
            return Ok(());
        }
        match self.context.initialize(init_args()) {
            Ok(()) => {}
            Err(e) if rv(&e) == Some(RvError::CryptokiAlreadyInitialized) => {}
            Err(source) => {
                return Err(Pkcs11Error::ModuleInitialize {
                    path: self.path.clone(),
                    source,
                })
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::warn!(module = %self.path.display(), "PKCS#11 module was finalized; initialized it again");
        Ok(())
    }
}
