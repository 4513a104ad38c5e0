//! `rust_toolchain`, which buildomat accepts as a string or a boolean.
//! A typed enum saves every consumer from re-deciding what `false` means.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The Rust toolchain a job asked rustup to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RustToolchain {
    /// `rust_toolchain = "stable"`: any toolchain name rustup accepts.
    Channel(String),
    /// `rust_toolchain = true`: read `rust-toolchain.toml` at the root of
    /// the commit under test (`channel` required, `profile` optional).
    FromRepository,
}

/// The value as written; `false` means no toolchain, like leaving it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ToolchainValue {
    Name(String),
    Flag(bool),
}

impl ToolchainValue {
    /// What the job gets; `None` for `false`.
    pub fn into_toolchain(self) -> Option<RustToolchain> {
        match self {
            ToolchainValue::Name(s) => Some(RustToolchain::Channel(s)),
            ToolchainValue::Flag(true) => Some(RustToolchain::FromRepository),
            ToolchainValue::Flag(false) => None,
        }
    }
}

impl<'de> Deserialize<'de> for ToolchainValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ToolchainValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a toolchain name such as \"stable\", or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ToolchainValue::Name(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ToolchainValue::Flag(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for RustToolchain {
    /// Written back the way the job file says it: a name, or `true`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RustToolchain::Channel(c) => s.serialize_str(c),
            RustToolchain::FromRepository => s.serialize_bool(true),
        }
    }
}
