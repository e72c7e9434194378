//! The text-to-speech engine a server uses ([`TtsSlot`]; was a process-wide static): espeak-ng
//! unless replaced (e.g. by a neural voice service). The engines themselves are still in the root
//! `speech` module (step B moves them).

use std::sync::{Arc, RwLock};

use crate::speech::{EspeakEngine, TtsEngine};

/// The engine in use, replaceable at run time.
#[derive(Clone)]
pub struct TtsSlot(Arc<RwLock<Arc<dyn TtsEngine>>>);

impl Default for TtsSlot {
    fn default() -> Self {
        TtsSlot(Arc::new(RwLock::new(Arc::new(EspeakEngine::default()))))
    }
}

impl TtsSlot {
    /// The engine in use.
    pub fn engine(&self) -> Arc<dyn TtsEngine> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace the engine.
    pub fn set(&self, engine: Arc<dyn TtsEngine>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }
}
