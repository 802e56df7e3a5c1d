//! AWS credentials: static ones from the configuration, or the standard chain, read
//! at compile time and again by the service's refresher thread (`aws::Service`):
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` exchanged with STS's
//! `AssumeRoleWithWebIdentity`, at `AWS_ENDPOINT_URL_STS` or the regional endpoint
//! over TLS), then the shared credentials file and the shared config file for the profile (`AWS_PROFILE`, else
//! `default`), then the container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or
//! `_RELATIVE_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), then the
//! instance metadata service (IMDSv2; `AWS_EC2_METADATA_SERVICE_ENDPOINT`, off with
//! `AWS_EC2_METADATA_DISABLED=true`). Temporary credentials carry their expiry; the
//! refresher fetches new ones in the last 5 minutes before it.
//!
//! Unit-tested below with files in a temporary directory; the container endpoint
//! end to end in `tests/lambda.rs`, web identity against moto's STS in
//! `tests/aws_rest.rs`.

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
    // web identity (EKS, GitHub Actions, …): the token file exchanged with STS for
    // a role's temporary credentials, as the SDKs do right after the environment
    if let (Some(token_file), Some(role)) = (
        nonempty("AWS_WEB_IDENTITY_TOKEN_FILE"),
        nonempty("AWS_ROLE_ARN"),
    ) {
        let token = std::fs::read_to_string(&token_file)
            .map_err(|e| format!("AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}"))?;
        let session = nonempty("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "turnpike".into());
        let region = nonempty("AWS_REGION").or_else(|| nonempty("AWS_DEFAULT_REGION"));
        let endpoint = nonempty("AWS_ENDPOINT_URL_STS")
            .or_else(|| nonempty("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| match &region {
                Some(r) => format!("https://sts.{r}.amazonaws.com"),
                None => "https://sts.amazonaws.com".into(),
            });
        let mut form = String::from("Action=AssumeRoleWithWebIdentity&Version=2011-06-15");
        for (k, v) in [
            ("RoleArn", role.as_str()),
            ("RoleSessionName", session.as_str()),
            ("WebIdentityToken", token.trim()),
        ] {
            form.push('&');
            form.push_str(k);
            form.push('=');
            super::sign::uri_encode(&mut form, v, false);
        }
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let body = http(
            "POST",
            &url,
            &[("content-type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .map_err(|e| format!("web identity credentials from {url}: {e}"))?;
        return sts_credentials(&body, &format!("the web identity role {role}"));
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
        let body = http("GET", &url, &headers, b"")
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
            b"",
        ) {
            let token = String::from_utf8_lossy(&token).trim().to_string();
            let h = [("x-aws-ec2-metadata-token", token.as_str())];
            let role = http(
                "GET",
                &format!("{base}/latest/meta-data/iam/security-credentials/"),
                &h,
                b"",
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
                b"",
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

/// Temporary credentials as STS answers them (`AssumeRoleWithWebIdentityResult`).
fn sts_credentials(body: &[u8], source: &str) -> Result<Credentials, String> {
    let text = String::from_utf8_lossy(body);
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{t}>"))? + start;
        Some(text[start..end].trim().to_string())
    };
    let (Some(access_key), Some(secret)) = (tag("AccessKeyId"), tag("SecretAccessKey")) else {
        let why = tag("Message").unwrap_or_else(|| "no credentials in the answer".into());
        return Err(format!("{source}: {why}"));
    };
    Ok(Credentials {
        access_key,
        secret,
        session_token: tag("SessionToken"),
        source: source.to_string(),
        expires: tag("Expiration").as_deref().and_then(parse_rfc3339),
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

/// A small blocking HTTP/1.1 request to a credentials endpoint: link-local or
/// loopback over `http://`, STS over `https://` (the system's roots); 1 s to
/// connect (3 s over TLS) and 5 s in all; the body of a 2xx (a 4xx/5xx's body is in
/// the error, for STS's message).
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return Err("only http:// and https:// endpoints are read".into()),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let with_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let tcp =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(if tls { 3 } else { 1 }))
            .map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        if v.contains(['\r', '\n']) {
            return Err("a header value with a line break".into());
        }
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut stream: Box<dyn ReadWrite> = if tls {
        let (config, _) = crate::upstream::tls::client_config(None)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host}: {e}"))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    stream
        .write_all(req.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() > deadline || raw.len() > 64 << 10 {
            return Err("the endpoint took too long or said too much".into());
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // a TLS peer that closes without close_notify: what was read counts
            Err(e) if tls && e.kind() == std::io::ErrorKind::UnexpectedEof => break,
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
        let text = String::from_utf8_lossy(&raw[end + 4..]);
        let message = text
            .split("<Message>")
            .nth(1)
            .and_then(|m| m.split("</Message>").next())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Err(format!("answered {status}{message}"));
    }
    // bodies here are small and sent with Content-Length or until close
    Ok(raw[end + 4..].to_vec())
}

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

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
    fn sts_answers_become_credentials() {
        let ok = br#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials>
    <SessionToken>tok</SessionToken><SecretAccessKey>sec</SecretAccessKey>
    <Expiration>2026-12-01T20:00:00Z</Expiration><AccessKeyId>ASIAEXAMPLE</AccessKeyId>
  </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"#;
        let c = sts_credentials(ok, "sts").unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.secret.as_str()),
            ("ASIAEXAMPLE", "sec")
        );
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert!(c.expires.is_some());
        let err = sts_credentials(
            b"<ErrorResponse><Error><Message>Not authorized</Message></Error></ErrorResponse>",
            "sts",
        );
        assert_eq!(err.unwrap_err(), "sts: Not authorized");
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
