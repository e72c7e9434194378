//! Tests of `nguon-provision`: bulk provisioning (re-runs, added and removed rows, prune), bad
//! station lists, `check`, and the generated broker files against a private Mosquitto.

mod broker;
mod bulk;
mod check;
mod invalid;
mod kiosk;
mod util;
