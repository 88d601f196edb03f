//! The one way a systemd unit file is written: sections in order, `Key=value` lines in order,
//! one blank line between sections. Values are written as given (a multi-line `ExecStart=` keeps
//! its `\` continuations); every value is a constant or an already validated setting.

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
}
