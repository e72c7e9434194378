//! Validated identifiers that appear in topic names: a device id and an administrative area code.
//! Parsing at the edge means no unchecked string can inject MQTT wildcards or separators.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The identifier was empty.
    #[error("{what} is empty")]
    Empty {
        /// Which kind of identifier.
        what: &'static str,
    },
    /// The identifier was longer than allowed.
    #[error("{what} `{value}` is longer than {max} characters")]
    TooLong {
        /// Which kind of identifier.
        what: &'static str,
        /// The offending value.
        value: String,
        /// The limit.
        max: usize,
    },
    /// The identifier had a character outside `[A-Za-z0-9._-]`.
    #[error("{what} `{value}` may only contain letters a-z, A-Z, digits, '.', '_' and '-'")]
    BadChar {
        /// Which kind of identifier.
        what: &'static str,
        /// The offending value.
        value: String,
    },
}

fn check(what: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > max {
        return Err(IdError::TooLong {
            what,
            value: s.to_string(),
            max,
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(IdError::BadChar {
            what,
            value: s.to_string(),
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parse and validate.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($what, &s, $max)?;
                Ok(Self(s))
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A device id (loudspeaker cluster or board), e.g. `lc-08003-tb-01`. At most 64 characters.
    DeviceId,
    "device id",
    64
);
id_type!(
    /// An administrative area code, e.g. the official commune code `08003`. At most 32 characters.
    AreaCode,
    "area code",
    32
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_separators_are_refused() {
        for bad in ["a/b", "+", "#", "a b", "", "xã"] {
            assert!(DeviceId::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            DeviceId::parse("lc-08003.tb_01").unwrap().as_str(),
            "lc-08003.tb_01"
        );
        assert!(AreaCode::parse("x".repeat(33)).is_err());
    }
}
