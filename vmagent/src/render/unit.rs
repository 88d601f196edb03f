//! The one way a systemd unit file is written: sections in order, `Key=value` lines in order,
//! one blank line between sections. Values are written as given (a multi-line `ExecStart=` keeps
//! its `\` continuations); every value is a constant or an already validated setting.

/// What a daemon's sandbox lets through (see [`Unit::sandbox`]); everything else is denied.
#[derive(Debug, Default)]
pub struct Sandbox<'a> {
    /// The only paths the daemon may write (ProtectSystem=strict makes the rest read-only).
    pub read_write_paths: &'a [&'a str],
    /// Capabilities kept in the bounding set and granted (ambient) to the daemon's user; empty
    /// for none.
    pub capabilities: &'a [&'a str],
    /// AF_NETLINK besides AF_UNIX, AF_INET and AF_INET6 (interfaces, routes, netfilter).
    pub netlink: bool,
    /// No memory both writable and executable: true for Go programs; false for a program with
    /// a JIT.
    pub memory_deny_write_execute: bool,
}

/// A unit file under construction.
#[derive(Debug, Default)]
pub struct Unit {
    text: String,
}

impl Unit {
    /// A unit starting with its `[Unit]` section and `Description=`.
    pub fn new(description: &str) -> Unit {
        Unit::default()
            .section("Unit")
            .set("Description", description)
    }

    /// Start `[name]`, separated from the previous section by a blank line.
    pub fn section(mut self, name: &str) -> Unit {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push('[');
        self.text.push_str(name);
        self.text.push_str("]\n");
        self
    }

    pub fn set(mut self, key: &str, value: &str) -> Unit {
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(value);
        self.text.push('\n');
        self
    }

    /// `key=value` only when `value` is given.
    pub fn set_if(self, key: &str, value: Option<&str>) -> Unit {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// One `ConditionPathExists=` per path: the unit is skipped (not failed) until all exist.
    pub fn condition_paths(self, paths: &[&str]) -> Unit {
        paths
            .iter()
            .fold(self, |u, p| u.set("ConditionPathExists", p))
    }

    /// The sandbox of a daemon that runs as its own unprivileged user: the whole file system
    /// read-only but for `read_write_paths`, no home directories, a private /tmp and /dev, no
    /// privilege gain (setuid, file capabilities), no kernel tunables, modules, logs or clock,
    /// only the system calls of an ordinary service, and only the capabilities and address
    /// families it names. Written once here so that every daemon gets the same baseline; a
    /// daemon that needs more says why next to its `Sandbox`.
    pub fn sandbox(self, s: &Sandbox) -> Unit {
        let mut u = self
            .set("NoNewPrivileges", "yes")
            .set("ProtectSystem", "strict")
            .set_if(
                "ReadWritePaths",
                (!s.read_write_paths.is_empty())
                    .then(|| s.read_write_paths.join(" "))
                    .as_deref(),
            )
            .set("ProtectHome", "yes")
            .set("PrivateTmp", "yes")
            .set("PrivateDevices", "yes")
            .set("ProtectKernelTunables", "yes")
            .set("ProtectKernelModules", "yes")
            .set("ProtectKernelLogs", "yes")
            .set("ProtectControlGroups", "yes")
            .set("ProtectClock", "yes")
            .set("ProtectHostname", "yes")
            .set("ProtectProc", "invisible")
            .set("RestrictNamespaces", "yes")
            .set("RestrictSUIDSGID", "yes")
            .set("RestrictRealtime", "yes")
            .set("LockPersonality", "yes")
            .set("RemoveIPC", "yes")
            .set("KeyringMode", "private")
            .set("CapabilityBoundingSet", &s.capabilities.join(" "))
            .set_if(
                "AmbientCapabilities",
                (!s.capabilities.is_empty())
                    .then(|| s.capabilities.join(" "))
                    .as_deref(),
            )
            .set("SystemCallArchitectures", "native")
            .set("SystemCallFilter", "@system-service")
            .set("SystemCallFilter", "~@privileged @resources")
            .set("SystemCallErrorNumber", "EPERM");
        let mut families = vec!["AF_UNIX", "AF_INET", "AF_INET6"];
        if s.netlink {
            families.push("AF_NETLINK");
        }
        u = u.set("RestrictAddressFamilies", &families.join(" "));
        if s.memory_deny_write_execute {
            u = u.set("MemoryDenyWriteExecute", "yes");
        }
        u
    }

    /// `[Install] WantedBy=target`, ending the unit.
    pub fn wanted_by(self, target: &str) -> String {
        self.section("Install").set("WantedBy", target).build()
    }

    pub fn build(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_separated_by_one_blank_line_and_keys_keep_their_order() {
        let text = Unit::new("A thing")
            .set("After", "network.target")
            .condition_paths(&["/a", "/b"])
            .section("Service")
            .set("ExecStart", "/bin/x \\\n  --y")
            .set_if("OOMScoreAdjust", None)
            .set_if("Restart", Some("always"))
            .wanted_by("multi-user.target");
        assert_eq!(
            text,
            "[Unit]\nDescription=A thing\nAfter=network.target\nConditionPathExists=/a\n\
             ConditionPathExists=/b\n\n[Service]\nExecStart=/bin/x \\\n  --y\nRestart=always\n\n\
             [Install]\nWantedBy=multi-user.target\n"
        );
        assert_eq!(
            Unit::new("x")
                .section("Service")
                .set("Type", "oneshot")
                .build(),
            "[Unit]\nDescription=x\n\n[Service]\nType=oneshot\n"
        );
    }

    #[test]
    fn sandbox_grants_only_what_it_names() {
        let lines = |u: Unit| -> Vec<String> { u.build().lines().map(String::from).collect() };
        let none = lines(
            Unit::new("x")
                .section("Service")
                .sandbox(&Sandbox::default()),
        );
        for l in [
            "ProtectSystem=strict",
            "CapabilityBoundingSet=",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
        ] {
            assert!(none.iter().any(|x| x == l), "{l} missing: {none:?}");
        }
        for key in [
            "ReadWritePaths=",
            "AmbientCapabilities=",
            "MemoryDenyWriteExecute=",
        ] {
            assert!(
                !none.iter().any(|x| x.starts_with(key)),
                "{key} in {none:?}"
            );
        }
        let some = lines(Unit::new("x").section("Service").sandbox(&Sandbox {
            read_write_paths: &["/a", "/b"],
            capabilities: &["CAP_NET_ADMIN", "CAP_NET_RAW"],
            netlink: true,
            memory_deny_write_execute: true,
        }));
        for l in [
            "ReadWritePaths=/a /b",
            "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
            "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "MemoryDenyWriteExecute=yes",
        ] {
            assert!(some.iter().any(|x| x == l), "{l} missing: {some:?}");
        }
    }
}
