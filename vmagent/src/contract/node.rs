//! The closed sets of names both programs write and read: cloud providers (`PROVIDER_KIND`),
//! node kinds (`knd`/`knc`, the manifest's `vmconfig.kind`) and CPU architectures (Debian's
//! spelling, also Go's, in `vmconfig.os.arch` and pool `arch`).

use std::fmt;
use std::str::FromStr;

/// A name outside one of the sets below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not one of {expected}")]
pub struct UnknownName {
    /// What the name names ("provider kind", "node kind", "architecture").
    pub what: &'static str,
    pub value: String,
    /// The accepted names, comma separated.
    pub expected: &'static str,
}

/// Defines a closed set of names: `name()`, `parse()`, `ALL`, `NAMES`, `Display`, `FromStr`.
macro_rules! names {
    (
        $(#[$meta:meta])*
        $ty:ident, $what:literal, $expected:literal {
            $( $(#[$vmeta:meta])* $var:ident = $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty {
            $( $(#[$vmeta])* $var, )+
        }

        impl $ty {
            /// Every value, in the order of the accepted-names message.
            pub const ALL: &'static [$ty] = &[$($ty::$var),+];
            /// Every name, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
            /// The accepted names, comma separated, for messages.
            pub const EXPECTED: &'static str = $expected;

            /// The name written into settings, manifests and the cluster config.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $ty::$var => $name, )+
                }
            }

            /// The value named `s`, if any.
            pub fn parse(s: &str) -> Option<$ty> {
                match s {
                    $( $name => Some($ty::$var), )+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        /// Command lines take the same names, and help and shell completion list them.
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                $ty::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<$ty, UnknownName> {
                $ty::parse(s).ok_or_else(|| UnknownName {
                    what: $what,
                    value: s.to_string(),
                    expected: $ty::EXPECTED,
                })
            }
        }
    };
}

names! {
    /// Where a node runs (`PROVIDER_KIND` in `user-data.env`).
    Provider, "provider kind", "local, aws, google, proxmox" {
        /// A developer machine or a lab host: no cloud APIs.
        Local = "local",
        Aws = "aws",
        Google = "google",
        Proxmox = "proxmox",
    }
}

names! {
    /// A node kind.
    Kind, "node kind", "knd, knc" {
        /// Worker node.
        Knd = "knd",
        /// Control-plane node.
        Knc = "knc",
    }
}

names! {
    /// A CPU architecture, in Debian's spelling (Go spells both the same way).
    Arch, "architecture", "amd64, arm64" {
        Amd64 = "amd64",
        Arm64 = "arm64",
    }
}

impl Arch {
    /// The architecture Rust calls `arch` (`std::env::consts::ARCH`), if it is one of ours.
    pub fn from_rust(arch: &str) -> Option<Arch> {
        match arch {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// The GNU multiarch triple Debian names library directories after.
    pub const fn gnu_triple(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// The multiarch library directory, `/usr/lib/<triple>`.
    pub const fn lib_dir(self) -> &'static str {
        match self {
            Arch::Amd64 => "/usr/lib/x86_64-linux-gnu",
            Arch::Arm64 => "/usr/lib/aarch64-linux-gnu",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>(), Ok(*p));
        }
        for k in Kind::ALL {
            assert_eq!(k.to_string().parse::<Kind>(), Ok(*k));
        }
        for a in Arch::ALL {
            assert_eq!(a.name().parse::<Arch>(), Ok(*a));
            assert_eq!(a.lib_dir(), format!("/usr/lib/{}", a.gnu_triple()));
        }
        assert_eq!(Provider::NAMES.len(), Provider::ALL.len());
        assert_eq!(Provider::EXPECTED, Provider::NAMES.join(", "));
        assert_eq!(Kind::EXPECTED, Kind::NAMES.join(", "));
        assert_eq!(Arch::EXPECTED, Arch::NAMES.join(", "));
    }

    #[test]
    fn unknown_names_are_errors_naming_the_choices() {
        let e = "azure".parse::<Provider>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "provider kind \"azure\" is not one of local, aws, google, proxmox"
        );
        assert!("AMD64".parse::<Arch>().is_err());
        assert_eq!(Arch::from_rust("aarch64"), Some(Arch::Arm64));
        assert_eq!(Arch::from_rust("riscv64"), None);
    }
}
