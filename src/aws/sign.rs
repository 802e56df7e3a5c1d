//! SigV4 (AWS Signature Version 4) for the gateway's own requests to AWS: the
//! canonical request, the string to sign, the signing key (derived once per day,
//! region and service, then cached) and the headers that carry the signature.
//!
//! Written here rather than taken from the `aws-sigv4` crate because that crate cost
//! 8.4 µs per Lambda call (it derives the key every time and builds `http` types),
//! a third of the lambda route's own cost (`docs/performance.md`); the same
//! canonical-request code is what verifying SigV4 (issue 16) needs, which the crate
//! does not offer. The tests check every signature against AWS's documented
//! example and against `aws-sigv4` itself for requests like the gateway's.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Credentials;

/// A derived signing key and what it was derived for.
#[derive(Debug)]
struct Derived {
    date: String,
    access_key: String,
    /// A key stays valid only for the secret it was derived from (a rotated file may
    /// keep the key id and change the secret).
    secret: String,
    key: [u8; 32],
}

/// Cross-core state, named here: the last signing key a service derived, shared by
/// every worker (one `arc-swap` load per signature; a new key once a day or when
/// the credentials change).
#[derive(Debug, Default)]
pub struct KeyCache(arc_swap::ArcSwapOption<Derived>);

impl KeyCache {
    /// The signing key for this day, region and service: the cached one when it
    /// was derived for the same day and credentials (one cache serves one region
    /// and service), else derived now and cached.
    pub fn key(
        &self,
        access_key: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        match self.0.load_full() {
            Some(d) if d.date == date && d.access_key == access_key && d.secret == secret => d.key,
            _ => {
                let key = signing_key(secret, date, region, service);
                self.0.store(Some(Arc::new(Derived {
                    date: date.to_string(),
                    access_key: access_key.to_string(),
                    secret: secret.to_string(),
                    key,
                })));
                key
            }
        }
    }
}

/// `yyyymmddThhmmssZ` and `yyyymmdd` of `t`.
pub fn amz_date(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = crate::observe::log::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    (stamp, date)
}

pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    // ring's SHA-256 (assembly, SHA extensions where the CPU has them): the payload
    // hash is most of a signature's cost
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The signing key for `date` (`yyyymmdd`), region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Percent-encodes per SigV4 (RFC 3986 unreserved bytes stay; `/` stays when
/// `keep_slash`).
pub fn uri_encode(out: &mut String, s: &str, keep_slash: bool) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(DIGITS[usize::from(b >> 4)] as char);
            out.push(DIGITS[usize::from(b & 15)] as char);
        }
    }
}

use std::borrow::Cow;

/// A header value trimmed, inner runs of whitespace folded to one space.
fn fold(v: &str) -> Cow<'_, str> {
    let t = v.trim();
    if t.contains("  ") || t.contains(['\t', '\n', '\r']) {
        Cow::Owned(t.split_whitespace().collect::<Vec<_>>().join(" "))
    } else {
        Cow::Borrowed(t)
    }
}

fn lower(n: &str) -> Cow<'_, str> {
    if n.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(n.to_ascii_lowercase())
    } else {
        Cow::Borrowed(n)
    }
}

/// The canonical request's header block and signed-header list for `headers`
/// (names lower-cased and sorted, values trimmed with inner runs of spaces folded).
pub fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut list: Vec<(Cow<'_, str>, Cow<'_, str>)> =
        headers.iter().map(|(n, v)| (lower(n), fold(v))).collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut block = String::new();
    let mut names = String::new();
    for (i, (n, v)) in list.iter().enumerate() {
        if i > 0 && list[i - 1].0 == *n {
            // a repeated name: its values joined by commas on one line
            block.pop();
            block.push(',');
            block.push_str(v);
            block.push('\n');
            continue;
        }
        block.push_str(n);
        block.push(':');
        block.push_str(v);
        block.push('\n');
        if !names.is_empty() {
            names.push(';');
        }
        names.push_str(n);
    }
    (block, names)
}

/// The headers that sign a request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` for temporary credentials). `path` is the path as sent
/// (already percent-encoded; SigV4 for services other than S3 encodes it once
/// more), `query` the query string as sent (empty: none), `headers` the others that
/// are signed (at least `host`).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    creds: &Credentials,
    cache: &KeyCache,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
    time: SystemTime,
) -> Vec<(&'static str, String)> {
    let (stamp, date) = amz_date(time);
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("x-amz-date", &stamp));
    if let Some(t) = &creds.session_token {
        all.push(("x-amz-security-token", t));
    }
    let (block, signed) = canonical_headers(&all);
    let mut uri = String::with_capacity(path.len() + 16);
    uri_encode(&mut uri, if path.is_empty() { "/" } else { path }, true);
    let canonical = format!(
        "{method}\n{uri}\n{}\n{block}\n{signed}\n{}",
        canonical_query(query),
        sha256_hex(payload)
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = cache.key(&creds.access_key, &creds.secret, &date, region, service);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    let mut out = vec![
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
                creds.access_key
            ),
        ),
        ("x-amz-date", stamp),
    ];
    if let Some(t) = &creds.session_token {
        out.push(("x-amz-security-token", t.clone()));
    }
    out
}

/// The canonical query string: pairs sorted by name then value, each encoded.
pub fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&mut ek, &percent_decode(k), false);
            uri_encode(&mut ev, &percent_decode(v), false);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
