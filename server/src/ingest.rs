//! TODO(ingest): stub awaiting implementation.
