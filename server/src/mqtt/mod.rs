//! Layer `mqtt`: the one place that talks MQTT. It signs and numbers every server → device
//! message ([`Signer`], [`Sequencer`]; receipts and commands are built in [`outbound`]), holds the
//! server's connection ([`link::Link`], with [`ack`] tracking the broker's acks), parses what
//! devices send ([`inbound`]), runs the embedded broker and its credential check ([`broker`]; its
//! engine, rmqtt, in [`engine`], one node of a
//! cluster with `[broker_cluster]`: [`cluster`]) behind the gate that enforces topic ACLs, sizes and connection
//! limits ([`gate`]), and keeps the signing key file ([`keys`]). It may import `store`, `domain`
//! and the foundation; only `workers` (and `lib.rs`, which wires them) import it. It is the only
//! layer that names `rumqttc`/`rmqtt`.

pub mod ack;
pub mod bootstrap;
pub mod broker;
pub mod cluster;
pub mod engine;
pub mod gate;
pub mod inbound;
pub mod keys;
pub mod link;
pub mod outbound;
pub mod signer;

pub use link::Link;
pub use signer::{Sequencer, Signer};
