//! OpenTelemetry severity numbers and the level names logs use for them.

/// Lowest severity number of each OpenTelemetry level.
pub const TRACE: u8 = 1;
/// See [`TRACE`].
pub const DEBUG: u8 = 5;
/// See [`TRACE`].
pub const INFO: u8 = 9;
/// See [`TRACE`].
pub const WARN: u8 = 13;
/// See [`TRACE`].
pub const ERROR: u8 = 17;
/// See [`TRACE`].
pub const FATAL: u8 = 21;

/// The severity number of a level name, case-insensitively, with the aliases common loggers and
/// syslog use (`notice`, `err`, `crit`, `emerg`, `panic`...). Allocates nothing.
pub fn from_name(name: &str) -> Option<u8> {
    let name = name.trim_ascii();
    let mut buffer = [0u8; 16];
    let lower = buffer.get_mut(..name.len())?;
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"trace" => TRACE,
        b"debug" => DEBUG,
        b"info" | b"notice" => INFO,
        b"warn" | b"warning" => WARN,
        b"error" | b"err" => ERROR,
        b"fatal" | b"critical" | b"crit" | b"alert" | b"emerg" | b"emergency" | b"panic" => FATAL,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!(from_name("WARNING"), Some(WARN));
        assert_eq!(from_name(" err "), Some(ERROR));
        assert_eq!(from_name("emerg"), Some(FATAL));
        assert_eq!(from_name("notice"), Some(INFO));
        assert_eq!(from_name("loud"), None);
        assert_eq!(from_name("a-very-long-level-name"), None);
    }
}
