//! SigV4 verification for `auth = "iam"` routes (DESIGN §8.4), as plain data: the
//! signature a request presents (the `Authorization` header, or the presigned
//! query's `X-Amz-*` parameters), and whether it is the one its signer's secret
//! gives for this request: the canonical request rebuilt exactly as AWS's SDKs build
//! it (`aws::sign` — the same code signs the gateway's own calls), AWS's 5-minute
//! clock window, the credential scope's region and service, a constant-time compare.
//! Every refusal carries AWS's status, error type and message.
//!
//! Not wired to routes yet (`auth = "iam"` is still refused by `check`): the
//! pipeline must first hand a buffered body to the integration (for the payload
//! hash). Unit-tested below with requests signed by `aws::sign` (itself checked
//! against `aws-sigv4` and AWS's test vector).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::aws::sign::{
    canonical_headers, canonical_query, hex, hmac, sha256_hex, uri_encode, KeyCache,
};

/// AWS's clock window on `X-Amz-Date`.
pub const WINDOW: Duration = Duration::from_secs(300);
/// The longest `X-Amz-Expires` a presigned request may have (AWS's 7 days).
pub const MAX_EXPIRES: u64 = 7 * 24 * 3600;

/// A signature as a request presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented<'a> {
    pub access_key: &'a str,
    /// The credential scope: `yyyymmdd`, region, service.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// `host;x-amz-date` (a presigned query's `%3B`s decoded).
    pub signed_headers: std::borrow::Cow<'a, str>,
    pub signature: &'a str,
    /// Presigned: the request time and lifetime come from the query.
    pub presigned: Option<(String, u64)>,
}

/// Why a signature is refused (all 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No signature at all.
    Missing,
    /// A signature whose parts are not all there or not well-formed.
    Incomplete(String),
    UnknownKey,
    /// The scope names another region or service, or another day than the date.
    Scope(String),
    /// Outside the clock window, or a presigned request past its expiry.
    Expired(String),
    /// The signature does not match: the canonical request and string to sign the
    /// gateway computed (for the log, and AWS's message).
    Mismatch {
        canonical: String,
        string_to_sign: String,
    },
}

impl Refusal {
    /// AWS's `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Refusal::Missing => "MissingAuthenticationTokenException",
            Refusal::Incomplete(_) => "IncompleteSignatureException",
            Refusal::UnknownKey => "UnrecognizedClientException",
            Refusal::Scope(_) | Refusal::Expired(_) | Refusal::Mismatch { .. } => {
                "InvalidSignatureException"
            }
        }
    }

    /// AWS's message.
    pub fn message(&self) -> String {
        match self {
            Refusal::Missing => "Missing Authentication Token".into(),
            Refusal::Incomplete(m) | Refusal::Scope(m) | Refusal::Expired(m) => m.clone(),
            Refusal::UnknownKey => "The security token included in the request is invalid.".into(),
            Refusal::Mismatch { canonical, string_to_sign } => format!(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
            ),
        }
    }
}

/// The signature of an `Authorization: AWS4-HMAC-SHA256 Credential=…,
/// SignedHeaders=…, Signature=…` header.
pub fn from_header(value: &str) -> Result<Presented<'_>, Refusal> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        Refusal::Incomplete("Only AWS4-HMAC-SHA256 signatures are accepted".into())
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| {
        Refusal::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={value}"
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    scoped(credential, signed_headers, signature, None)
}

/// The signature of a presigned request's query (`None`: the query has none).
pub fn from_query(query: &str) -> Option<Result<Presented<'_>, Refusal>> {
    let get = |k: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
    };
    get("X-Amz-Signature").or(get("X-Amz-Credential"))?;
    Some((|| {
        if get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(Refusal::Incomplete(
                "X-Amz-Algorithm must be AWS4-HMAC-SHA256".into(),
            ));
        }
        let need = |k: &'static str| {
            get(k).ok_or_else(|| Refusal::Incomplete(format!("the presigned request has no {k}")))
        };
        let credential = need("X-Amz-Credential")?;
        let date = decode(need("X-Amz-Date")?);
        let expires: u64 = need("X-Amz-Expires")?
            .parse()
            .map_err(|_| Refusal::Incomplete("X-Amz-Expires is not a number of seconds".into()))?;
        if expires > MAX_EXPIRES {
            return Err(Refusal::Incomplete(
                "X-Amz-Expires must be at most 604800 seconds".into(),
            ));
        }
        scoped(
            credential,
            need("X-Amz-SignedHeaders")?,
            need("X-Amz-Signature")?,
            Some((date, expires)),
        )
    })())
}

fn scoped<'a>(
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
    presigned: Option<(String, u64)>,
) -> Result<Presented<'a>, Refusal> {
    // the query form percent-encodes the slashes of the scope
    let parts: Vec<&str> = if credential.contains("%2F") {
        credential.split("%2F").collect()
    } else {
        credential.split('/').collect()
    };
    let [access_key, date, region, service, "aws4_request"] = parts[..] else {
        return Err(Refusal::Incomplete(format!(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request: {credential}"
        )));
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || signature.len() != 64 {
        return Err(Refusal::Incomplete(
            "the credential date or the signature is malformed".into(),
        ));
    }
    let signed_headers = if signed_headers.contains('%') {
        std::borrow::Cow::Owned(signed_headers.replace("%3B", ";").replace("%3b", ";"))
    } else {
        std::borrow::Cow::Borrowed(signed_headers)
    };
    Ok(Presented {
        access_key,
        date,
        region,
        service,
        signed_headers,
        signature,
        presigned,
    })
}

fn decode(s: &str) -> String {
    s.replace("%3A", ":").replace("%3a", ":")
}

/// `20150830T123600Z` → a time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let secs = crate::observe::log::epoch_seconds(
        i64::from(n(0..4)?),
        n(4..6)?,
        n(6..8)?,
        n(9..11)?,
        n(11..13)?,
        n(13..15)?,
    )?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// What the verification needs of the request.
pub struct Request<'a> {
    pub method: &'a str,
    /// As sent (percent-encoded).
    pub path: &'a str,
    /// As sent, without `?`.
    pub query: &'a str,
    /// A header's value (repeated ones joined with `,`), by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// `x-amz-content-sha256` when sent, else the body's SHA-256 in hex (or
    /// `UNSIGNED-PAYLOAD` for a presigned request without the header).
    pub payload_hash: &'a str,
}

/// Checks a presented signature against `secret` at `now`, for `region` and service
/// `execute-api`. `keys` caches the signer's derived key for the day.
pub fn verify(
    p: &Presented<'_>,
    req: &Request<'_>,
    secret: &str,
    keys: &KeyCache,
    region: &str,
    now: SystemTime,
) -> Result<(), Refusal> {
    if p.service != "execute-api" {
        return Err(Refusal::Scope(
            "Credential should be scoped to correct service: 'execute-api'. ".into(),
        ));
    }
    if p.region != region {
        return Err(Refusal::Scope(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            p.region
        )));
    }
    let stamp = match &p.presigned {
        Some((d, _)) => d.clone(),
        None => (req.header)("x-amz-date")
            .ok_or_else(|| Refusal::Incomplete("the request has no X-Amz-Date".into()))?,
    };
    let at = parse_amz_date(&stamp).ok_or_else(|| {
        Refusal::Incomplete(format!("X-Amz-Date `{stamp}` is not yyyymmddThhmmssZ"))
    })?;
    if !stamp.starts_with(p.date) {
        return Err(Refusal::Scope(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP".into(),
        ));
    }
    let fmt = |t: SystemTime| crate::aws::sign::amz_date(t).0;
    match &p.presigned {
        Some((_, expires)) => {
            if now > at + Duration::from_secs(*expires) {
                return Err(Refusal::Expired(format!(
                    "Signature expired: {stamp} is now earlier than {} ({} - {expires} sec.)",
                    fmt(now - Duration::from_secs(*expires)),
                    fmt(now)
                )));
            }
            if at > now + WINDOW {
                return Err(Refusal::Expired(format!(
                    "Signature not yet current: {stamp} is still later than {} ({} + 5 min.)",
                    fmt(now + WINDOW),
                    fmt(now)
                )));
            }
        }
        None => {
            if at + WINDOW < now {
                return Err(Refusal::Expired(format!(
                    "Signature expired: {stamp} is now earlier than {} ({} - 5 min.)",
                    fmt(now - WINDOW),
                    fmt(now)
                )));
            }
            if at > now + WINDOW {
                return Err(Refusal::Expired(format!(
                    "Signature not yet current: {stamp} is still later than {} ({} + 5 min.)",
                    fmt(now + WINDOW),
                    fmt(now)
                )));
            }
        }
    }
    // the canonical request, from the signed headers as the request has them
    let names: Vec<&str> = p.signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(Refusal::Incomplete("the host header must be signed".into()));
    }
    let mut values = Vec::with_capacity(names.len());
    for n in &names {
        let v = (req.header)(n).ok_or_else(|| {
            Refusal::Incomplete(format!("the signed header `{n}` is not in the request"))
        })?;
        values.push((*n, v));
    }
    let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (block, signed) = canonical_headers(&pairs);
    let mut uri = String::with_capacity(req.path.len() + 16);
    uri_encode(
        &mut uri,
        if req.path.is_empty() { "/" } else { req.path },
        true,
    );
    let query = if p.presigned.is_some() {
        // everything but the signature itself
        req.query
            .split('&')
            .filter(|kv| !kv.starts_with("X-Amz-Signature="))
            .collect::<Vec<_>>()
            .join("&")
    } else {
        req.query.to_string()
    };
    let canonical = format!(
        "{}\n{uri}\n{}\n{block}\n{signed}\n{}",
        req.method,
        canonical_query(&query),
        req.payload_hash
    );
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = keys.key(p.access_key, secret, p.date, p.region, p.service);
    let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
    if constant_time_eq(expected.as_bytes(), p.signature.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Mismatch {
            canonical,
            string_to_sign,
        })
    }
}

/// Equal bytes, in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
