//! AWS credentials: static ones from the configuration, or the standard chain, read
//! at compile time and again by the service's refresher thread (`aws::Service`):
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the shared
//! credentials file and the shared config file for the profile (`AWS_PROFILE`, else
//! `default`), then the container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or
//! `_RELATIVE_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), then the
//! instance metadata service (IMDSv2; `AWS_EC2_METADATA_SERVICE_ENDPOINT`, off with
//! `AWS_EC2_METADATA_DISABLED=true`). Temporary credentials carry their expiry; the
//! refresher fetches new ones in the last 5 minutes before it.
//!
//! Unit-tested below with files in a temporary directory; the container endpoint
//! end to end in `tests/lambda.rs`.

use std::path::PathBuf;

/// A key pair (and session token). `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret: String,
    pub session_token: Option<String>,
    /// Where they came from, for messages.
    pub source: String,
    /// When temporary credentials (container, instance metadata) expire.
    pub expires: Option<std::time::SystemTime>,
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
            expires: None,
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
    let full = nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
        nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .map(|r| format!("http://169.254.170.2{r}"))
    });
    if let Some(url) = full {
        let token = match nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(f) => std::fs::read_to_string(&f)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| format!("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {f}: {e}"))?,
            None => nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        };
        let headers: Vec<(&str, &str)> = token
            .iter()
            .map(|t| ("authorization", t.as_str()))
            .collect();
        let body = http("GET", &url, &headers)
            .map_err(|e| format!("container credentials from {url}: {e}"))?;
        return temporary(&body, &format!("the container endpoint {url}"));
    }
    if !nonempty("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let base = nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| "http://169.254.169.254".into());
        let base = base.trim_end_matches('/');
        if let Ok(token) = http(
            "PUT",
            &format!("{base}/latest/api/token"),
            &[("x-aws-ec2-metadata-token-ttl-seconds", "21600")],
        ) {
            let token = String::from_utf8_lossy(&token).trim().to_string();
            let h = [("x-aws-ec2-metadata-token", token.as_str())];
            let role = http(
                "GET",
                &format!("{base}/latest/meta-data/iam/security-credentials/"),
                &h,
            )
            .map_err(|e| format!("instance metadata: {e}"))?;
            let role = String::from_utf8_lossy(&role)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let body = http(
                "GET",
                &format!("{base}/latest/meta-data/iam/security-credentials/{role}"),
                &h,
            )
            .map_err(|e| format!("instance metadata: {e}"))?;
            return temporary(&body, &format!("the instance role `{role}`"));
        }
    }
    Err(format!(
        "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set, profile `{profile}` has none in {}, and there is no container or instance metadata endpoint",
        if looked.is_empty() { "(no HOME to find ~/.aws in)".to_string() } else { looked.join(" or ") }
    ))
}

/// Temporary credentials as the container and instance-metadata endpoints give them.
fn temporary(body: &[u8], source: &str) -> Result<Credentials, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("{source}: not JSON: {e}"))?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let (Some(access_key), Some(secret)) = (field("AccessKeyId"), field("SecretAccessKey")) else {
        return Err(format!("{source}: no AccessKeyId/SecretAccessKey"));
    };
    Ok(Credentials {
        access_key,
        secret,
        session_token: field("Token"),
        source: source.to_string(),
        expires: field("Expiration").as_deref().and_then(parse_rfc3339),
    })
}

/// `2026-12-01T19:00:00Z` (what AWS's endpoints send) → a time.
fn parse_rfc3339(s: &str) -> Option<std::time::SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let secs = crate::observe::log::epoch_seconds(
        i64::from(n(0..4)?),
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    )?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// A small blocking HTTP/1.1 request to a link-local or loopback credentials
/// endpoint (`http://` only), 1 s to connect and 2 s in all; the body of a 2xx.
fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// endpoints are read")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    })
    .map_err(|e| e.to_string())?
    .next()
    .ok_or("no address")?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (n, v) in headers {
        if v.contains(['\r', '\n']) {
            return Err("a header value with a line break".into());
        }
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() > deadline || raw.len() > 64 << 10 {
            return Err("the endpoint took too long or said too much".into());
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no response head")?;
    let status = std::str::from_utf8(&raw[..end])
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("no status")?;
    if !(200..300).contains(&status) {
        return Err(format!("answered {status}"));
    }
    // bodies here are small and sent with Content-Length or until close
    Ok(raw[end + 4..].to_vec())
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
            expires: None,
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
        assert!(c.expires.is_none());
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "Debug never shows the secret"
        );
    }

    #[test]
    fn expiry_times_parse() {
        let t = parse_rfc3339("2026-12-01T19:00:00Z").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            1_796_151_600
        );
        assert!(parse_rfc3339("tomorrow").is_none());
        let c = temporary(br#"{"AccessKeyId":"ASIA","SecretAccessKey":"s","Token":"t","Expiration":"2026-12-01T19:00:00Z"}"#, "x").unwrap();
        assert_eq!(
            (c.session_token.as_deref(), c.expires),
            (Some("t"), Some(t))
        );
        assert!(temporary(b"{}", "x").is_err());
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
        let env = env_of(&[("HOME", &home), ("AWS_EC2_METADATA_DISABLED", "true")]);
        assert_eq!(chain(&env, None).unwrap().access_key, "AKIDDEFAULT");
        assert_eq!(chain(&env, Some("ops")).unwrap().access_key, "AKIDOPS");
        assert_eq!(chain(&env, Some("cfgonly")).unwrap().access_key, "AKIDCFG");
        assert_eq!(
            config_region(&env, Some("cfgonly")).as_deref(),
            Some("eu-west-1")
        );
        let env = env_of(&[
            ("HOME", &home),
            ("AWS_PROFILE", "ops"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        assert_eq!(chain(&env, None).unwrap().access_key, "AKIDOPS");
        let err = chain(&env, Some("missing")).unwrap_err();
        assert!(err.contains("profile `missing`"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
