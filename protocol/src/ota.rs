//! Signed agent updates (OTA): the agent release a device's manifest asks it to run
//! ([`AgentTarget`], in [`crate::Manifest::agent`]), the release signature, and the states a device
//! reports while it updates ([`UpdateState`], in [`crate::EventBody::AgentUpdate`]).
//!
//! A release is one agent binary for one architecture. The server signs, with the key that signs
//! every server message, the bytes `nguon-agent-release/v1\n{version}\n{arch}\n{sha256}` (a domain of
//! its own, so a release signature can never pass for a message signature or the reverse). The
//! agent checks that signature with the server's public key and the sha256 of the bytes it
//! downloaded before it installs anything. See `docs/ota.md`.

use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::sign::{KeyPair, SignError};

/// Domain prefix of a release signature.
pub const RELEASE_DOMAIN: &str = "nguon-agent-release/v1\n";

/// The architectures a release may be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// 64-bit x86 (`x86_64`).
    X86_64,
    /// 64-bit ARM (`aarch64`).
    Aarch64,
    /// 32-bit ARM v7, hard float (`armv7`).
    Armv7,
}

impl Arch {
    /// Every architecture.
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::Aarch64, Arch::Armv7];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Armv7 => "armv7",
        }
    }

    /// The architecture of the running build, if it is one a release may target.
    pub fn of_this_build() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            "arm" => Some(Arch::Armv7),
            _ => None,
        }
    }

    /// The ELF header's `e_machine` and class (`1` 32-bit, `2` 64-bit) of a binary for it.
    pub fn elf(self) -> (u16, u8) {
        match self {
            Arch::X86_64 => (62, 2),
            Arch::Aarch64 => (183, 2),
            Arch::Armv7 => (40, 1),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Arch::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown architecture `{s}`, expected x86_64, aarch64 or armv7"))
    }
}

/// Whether `v` may name an agent version: 1–64 characters of `A–Z a–z 0–9 . _ + -`, not starting
/// with `.` (it becomes part of a file name on the device).
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

/// One signed binary of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentBuild {
    /// Its architecture.
    pub arch: Arch,
    /// Where to fetch it (absolute, or relative to the server's base URL).
    pub url: String,
    /// Lowercase hex sha256 of the binary.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Base64 ed25519 signature of the server over [`release_message`].
    pub signature: String,
}

/// The agent release a device should run (desired state, in its manifest): the builds of one
/// version, of which the device takes the one for its architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTarget {
    /// The rollout that asks for it (named in the device's reports).
    pub rollout: String,
    /// The version to run.
    pub version: String,
    /// Seconds the new version has, from its installation, to connect and confirm itself; past
    /// them the device goes back to the version it ran before.
    pub confirm_s: u32,
    /// The signed binaries, one per architecture.
    pub builds: Vec<AgentBuild>,
}

impl AgentTarget {
    /// The build for `arch`, if the release has one.
    pub fn build_for(&self, arch: Arch) -> Option<&AgentBuild> {
        self.builds.iter().find(|b| b.arch == arch)
    }
}

/// Where a device is in an update, reported in [`crate::EventBody::AgentUpdate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// Fetching the binary.
    Downloading,
    /// The binary's sha256 and the release signature check out.
    Verified,
    /// Written beside the running version and made current on trial; the agent restarts into it.
    Installed,
    /// The new version connected and confirmed itself in time: the update is done.
    Confirmed,
    /// The new version did not confirm itself in time (or could not start): the device runs the
    /// previous version again.
    RolledBack,
    /// The update could not be made (`reason` says why: no build for this architecture, a
    /// download error, a bad signature or sha256).
    Failed,
}

impl UpdateState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Downloading => "downloading",
            UpdateState::Verified => "verified",
            UpdateState::Installed => "installed",
            UpdateState::Confirmed => "confirmed",
            UpdateState::RolledBack => "rolled_back",
            UpdateState::Failed => "failed",
        }
    }

    /// Whether the update ended in this state (confirmed, rolled back or failed).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            UpdateState::Confirmed | UpdateState::RolledBack | UpdateState::Failed
        )
    }
}

/// The bytes a release signature covers.
pub fn release_message(version: &str, arch: Arch, sha256: &str) -> Vec<u8> {
    format!("{RELEASE_DOMAIN}{version}\n{arch}\n{sha256}").into_bytes()
}

impl KeyPair {
    /// Sign a release: base64 of the ed25519 signature over [`release_message`].
    pub fn sign_release(&self, version: &str, arch: Arch, sha256: &str) -> String {
        use base64::Engine;
        let sig = self.signing_key().sign(&release_message(version, arch, sha256));
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
    }
}

/// Check a release signature with the server's public key.
pub fn verify_release(
    key: &VerifyingKey,
    version: &str,
    arch: Arch,
    sha256: &str,
    signature_b64: &str,
) -> Result<(), SignError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| SignError::BadSignature)?;
    let arr: [u8; 64] = bytes.try_into().map_err(|_| SignError::BadSignature)?;
    key.verify(
        &release_message(version, arch, sha256),
        &Signature::from_bytes(&arr),
    )
    .map_err(|_| SignError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_signature_covers_version_arch_and_sha256_and_nothing_else_passes() {
        let k = KeyPair::from_seed([3u8; 32]);
        let sha = "ab".repeat(32);
        let sig = k.sign_release("1.2.0", Arch::Aarch64, &sha);
        let vk = k.verifying_key();
        assert_eq!(verify_release(&vk, "1.2.0", Arch::Aarch64, &sha, &sig), Ok(()));
        assert!(verify_release(&vk, "1.2.1", Arch::Aarch64, &sha, &sig).is_err());
        assert!(verify_release(&vk, "1.2.0", Arch::Armv7, &sha, &sig).is_err());
        assert!(verify_release(&vk, "1.2.0", Arch::Aarch64, &"cd".repeat(32), &sig).is_err());
        let other = KeyPair::from_seed([4u8; 32]).verifying_key();
        assert!(verify_release(&other, "1.2.0", Arch::Aarch64, &sha, &sig).is_err());
        // A message signature over the same text is not a release signature.
        let msg = k.sign_text(String::from_utf8(release_message("1.2.0", Arch::Aarch64, &sha)).unwrap());
        assert!(verify_release(&vk, "1.2.0", Arch::Aarch64, &sha, msg.sig.as_deref().unwrap()).is_err());
    }

    #[test]
    fn versions_are_safe_file_name_parts() {
        assert!(valid_version("0.9.0-rc.1+b7"));
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"9".repeat(65)] {
            assert!(!valid_version(bad), "{bad}");
        }
        assert_eq!("armv7".parse::<Arch>(), Ok(Arch::Armv7));
        assert!("mips".parse::<Arch>().unwrap_err().contains("mips"));
    }
}
