//! Channels whose messages are boxed. A tokio mpsc channel allocates its first block of 32 slots
//! when it is made, each slot the size of a message: 8 KiB for the player's 256-byte input, and
//! an agent keeps four such channels open while it idles for days. Boxed, a slot is a pointer:
//! about 23 KiB less per agent (issue 14: the fleet simulator's memory per idle agent,
//! docs/benchmarks.md "Edge agent"), for one small allocation per message.

use tokio::sync::mpsc;

/// The sending side of an unbounded channel of boxed `T`.
pub struct BoxSender<T>(mpsc::UnboundedSender<Box<T>>);

/// The receiving side: `recv` gives `Box<T>`.
pub type BoxReceiver<T> = mpsc::UnboundedReceiver<Box<T>>;

/// An unbounded channel of boxed `T`.
pub fn unbounded<T>() -> (BoxSender<T>, BoxReceiver<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (BoxSender(tx), rx)
}

impl<T> BoxSender<T> {
    /// Send `value` (boxed); gives it back if the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), T> {
        self.0.send(Box::new(value)).map_err(|e| *e.0)
    }
}

impl<T> Clone for BoxSender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::fmt::Debug for BoxSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxSender").finish_non_exhaustive()
    }
}
