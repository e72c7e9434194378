//! nguon-agent library.
