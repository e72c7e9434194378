//! nguon-server library.
