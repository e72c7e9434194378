//! nguon system-test helpers.
