//! AWS credentials: static ones from the configuration, or the standard chain's
//! first two links, read at compile time (and so again at every reload):
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the shared
//! credentials file and the shared config file for the profile (`AWS_PROFILE`, else
//! `default`). Container and instance-metadata credentials are not read yet (they
//! expire and need refreshing off the request path).
//!
//! Unit-tested below with files in a temporary directory.

use std::path::PathBuf;

/// A key pair (and session token). `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret: String,
    pub session_token: Option<String>,
    /// Where they came from, for messages.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What the process environment says (a function so tests need not set variables).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The standard chain for `profile` (`None`: `AWS_PROFILE`, else `default`).
pub fn chain(env: Env<'_>, profile: Option<&str>) -> Result<Credentials, String> {
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let (Some(access_key), Some(secret)) = (
        nonempty("AWS_ACCESS_KEY_ID"),
        nonempty("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(Credentials {
            access_key,
            secret,
            session_token: nonempty("AWS_SESSION_TOKEN"),
            source: "the environment".into(),
        });
    }
    let profile = profile
        .map(str::to_string)
        .or_else(|| nonempty("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let home = nonempty("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        nonempty(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let mut looked = Vec::new();
    if let Some(path) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
        looked.push(path.display().to_string());
        if let Some(c) = from_file(&path, &profile, &profile)? {
            return Ok(c);
        }
    }
    if let Some(path) = file("AWS_CONFIG_FILE", "config") {
        looked.push(path.display().to_string());
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        if let Some(c) = from_file(&path, &section, &profile)? {
            return Ok(c);
        }
    }
    Err(format!(
        "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and profile `{profile}` has none in {}",
        if looked.is_empty() { "(no HOME to find ~/.aws in)".to_string() } else { looked.join(" or ") }
    ))
}

/// The keys of `[section]` in an INI-style AWS file; `Ok(None)` when the file or
/// the section or its keys are absent.
fn from_file(
    path: &std::path::Path,
    section: &str,
    profile: &str,
) -> Result<Option<Credentials>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let values = ini_section(&text, section);
    let get = |k: &str| {
        values
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key), Some(secret)) => Ok(Some(Credentials {
            access_key,
            secret,
            session_token: get("aws_session_token"),
            source: format!("profile `{profile}` of {}", path.display()),
        })),
        _ => Ok(None),
    }
}

/// `key = value` lines of one `[section]` (comments `#`/`;`, keys lower-cased).
pub fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out
}

/// The region the shared config file gives `profile` (for `[aws]` without one).
pub fn config_region(env: Env<'_>, profile: Option<&str>) -> Option<String> {
    let profile = profile
        .map(str::to_string)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let path = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws").join("config")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let section = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    ini_section(&text, &section)
        .into_iter()
        .find(|(k, _)| k == "region")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_environment_comes_first() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "s3cret"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("HOME", "/nonexistent"),
        ]);
        let c = chain(&env, None).unwrap();
        assert_eq!(c.access_key, "AKIDENV");
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "Debug never shows the secret"
        );
    }

    #[test]
    fn profiles_come_from_the_shared_files() {
        let dir = std::env::temp_dir().join(format!("turnpike-creds-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(
            dir.join(".aws/credentials"),
            "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=o\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(".aws/config"),
            "[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = c\nregion = eu-west-1\n",
        )
        .unwrap();
        let home = dir.display().to_string();
        let env = env_of(&[("HOME", &home)]);
        assert_eq!(chain(&env, None).unwrap().access_key, "AKIDDEFAULT");
        assert_eq!(chain(&env, Some("ops")).unwrap().access_key, "AKIDOPS");
        assert_eq!(chain(&env, Some("cfgonly")).unwrap().access_key, "AKIDCFG");
        assert_eq!(
            config_region(&env, Some("cfgonly")).as_deref(),
            Some("eu-west-1")
        );
        let env = env_of(&[("HOME", &home), ("AWS_PROFILE", "ops")]);
        assert_eq!(chain(&env, None).unwrap().access_key, "AKIDOPS");
        let err = chain(&env, Some("missing")).unwrap_err();
        assert!(err.contains("profile `missing`"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
