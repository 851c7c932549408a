//! A secret read from the environment or a file (a password, an access token): never printed.

/// A secret text (a password, a token). `Display` prints `***`, `Debug` `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `text` (trimmed of surrounding whitespace, as a file's trailing newline).
    pub fn new(text: impl AsRef<str>) -> Self {
        Self(text.as_ref().trim().to_owned())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretString::new("hunter2\n");
        assert_eq!((format!("{s}"), format!("{s:?}"), s.expose()), ("***".into(), "Secret(***)".into(), "hunter2"));
    }
}
