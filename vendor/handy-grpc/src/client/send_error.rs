//! nguon: `SendError` of the upstream client.rs, moved to its own file unchanged (the
//! workspace keeps files under 800 lines); `client` re-exports it.

#[derive(Clone, PartialEq, Eq)]
pub enum SendError<T> {
    SendError(mpsc::SendError<T>),
    Error(String, Option<T>),
}

impl<T> SendError<T> {
    #[inline]
    pub fn full(val: T) -> Self {
        SendError::SendError(mpsc::SendError::full(val))
    }

    #[inline]
    pub fn disconnected(val: Option<T>) -> Self {
        SendError::SendError(mpsc::SendError::disconnected(val))
    }

    #[inline]
    pub fn error(e: String, val: Option<T>) -> Self {
        SendError::Error(e, val)
    }
}

impl<T> core::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::SendError(e) => {
                write!(f, "{:?}", e)
            }
            SendError::Error(e, _) => {
                write!(f, "{:?}", e)
            }
        }
    }
}

impl<T> core::fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::SendError(e) => f.debug_struct("SendError").field("reason", e).finish(),
            SendError::Error(e, _) => f.debug_struct("SendError").field("reason", e).finish(),
        }
    }
}

impl<T> SendError<T> {
    /// Returns `true` if this error is a result of the mpsc being full.
    #[inline]
    pub fn is_full(&self) -> bool {
        if let SendError::SendError(e) = self {
            e.is_full()
        } else {
            false
        }
    }

    /// Returns `true` if this error is a result of the receiver being dropped.
    #[inline]
    pub fn is_disconnected(&self) -> bool {
        if let SendError::SendError(e) = self {
            e.is_disconnected()
        } else {
            false
        }
    }

    /// Returns the message that was attempted to be sent but failed.
    #[inline]
    pub fn into_inner(self) -> Option<T> {
        match self {
            SendError::SendError(inner) => inner.into_inner(),
            SendError::Error(_, val) => val,
        }
    }
}

impl<T: core::any::Any> std::error::Error for SendError<T> {}
