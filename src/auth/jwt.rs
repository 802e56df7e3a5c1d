//! JWT authorizers (DESIGN §8.2, AWS's HTTP API JWT authorizer): a bearer token is
//! decoded, its signature checked with a key of the issuer's JWKS chosen by `kid`
//! (asymmetric algorithms only: RS*, PS*, ES256/384, EdDSA — never `none`, never an
//! HMAC keyed with a public key, never a key named by the token's own `jku`/`x5u`),
//! then its claims: `iss` equal to the issuer, `aud` (or `client_id` when there is no
//! `aud`, as in Cognito access tokens) one of the audiences, `exp`/`nbf`/`iat` within
//! [`LEEWAY`]. Scopes (`scope`, space-separated, or `scp`, a list) are checked per
//! route by [`has_scope`]. Every rejection names the failing step
//! ([`Rejection::describe`], sent as AWS does in `www-authenticate`).
//!
//! Never panics on a token: everything in it is input. Unit tests below sign tokens
//! with generated keys; `tests/jwt.rs` uses PyJWT-minted ones; `fuzz/` feeds it bytes.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::jwks::KeySet;

/// Clock skew allowed on `exp`, `nbf` and `iat` (DESIGN §8.2).
pub const LEEWAY: u64 = 60;

/// What a JWT authorizer checks a token against.
#[derive(Debug, Clone)]
pub struct JwtRules {
    pub issuer: String,
    pub audience: Vec<String>,
}

/// Why a token was refused (all → 401 `Unauthorized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No token where the identity source says.
    Missing,
    /// Not a JWT (three base64url parts of JSON), or an algorithm never accepted.
    Malformed,
    /// No key of the issuer's set has the token's `kid` (the set is refreshed).
    UnknownKey,
    /// The issuer's keys could not be fetched yet.
    NoKeys,
    BadSignature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
}

impl Rejection {
    /// The `error_description` of the `www-authenticate` answer (AWS's wording where
    /// it has one).
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::Missing => "the token is missing",
            Rejection::Malformed => "the token is not a valid JWT",
            Rejection::UnknownKey => "the token's key is not in the issuer's key set",
            Rejection::NoKeys => "the issuer's signing keys are not available",
            Rejection::BadSignature => "the token signature is invalid",
            Rejection::Expired => "the token has expired",
            Rejection::NotYetValid => "the token is not valid yet",
            Rejection::Issuer => "the token does not have a valid issuer",
            Rejection::Audience => "the token does not have a valid audience",
        }
    }

    /// Its index in `observe::metrics::AUTH_DECISIONS` (0 is "allow").
    pub fn index(self) -> u8 {
        match self {
            Rejection::Missing => 1,
            Rejection::Malformed => 2,
            Rejection::UnknownKey => 3,
            Rejection::NoKeys => 4,
            Rejection::BadSignature => 5,
            Rejection::Expired => 6,
            Rejection::NotYetValid => 7,
            Rejection::Issuer => 8,
            Rejection::Audience => 9,
        }
    }

    /// A short name for metrics and the access log.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey => "unknown_kid",
            Rejection::NoKeys => "no_keys",
            Rejection::BadSignature => "signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::Issuer => "issuer",
            Rejection::Audience => "audience",
        }
    }
}

/// A token that passed: its claims and until when it may be trusted.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `exp` (seconds since the epoch); tokens without one are not cached.
    pub exp: Option<u64>,
    pub claims: Arc<serde_json::Map<String, Value>>,
}

impl Verified {
    /// The `sub` claim (the principal), if it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
}

/// The token in an `Authorization`-style value: the value itself, or what follows a
/// `Bearer ` prefix (any case), as AWS accepts both. Bytes, not text: on the cached
/// path the token is only compared, and checking ~1 KiB for UTF-8 would cost more.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let v = value.trim_ascii();
    let token = match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case(b"bearer ") => v[7..].trim_ascii_start(),
        _ if v.eq_ignore_ascii_case(b"bearer") => b"",
        _ => v,
    };
    (!token.is_empty()).then_some(token)
}

/// Verifies `token` with `keys` against `rules` at `now` (seconds since the epoch).
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &JwtRules,
    now: u64,
) -> Result<Verified, Rejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
    if !asymmetric(header.alg) {
        return Err(Rejection::Malformed);
    }
    let key = keys
        .find(header.kid.as_deref(), header.alg)
        .ok_or(Rejection::UnknownKey)?;
    let claims = check_signature(token, key, header.alg)?;
    check_claims(&claims, rules, now)?;
    let exp = claims.get("exp").and_then(Value::as_u64);
    Ok(Verified {
        exp,
        claims: Arc::new(claims),
    })
}

/// Whether `alg` is one turnpike accepts at all (public-key algorithms only).
fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The signature, then the payload as a JSON object (claims checked by us, with
/// AWS's rules, not by the crate's defaults).
fn check_signature(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<serde_json::Map<String, Value>, Rejection> {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    match jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &v) {
        Ok(data) => Ok(data.claims),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Err(Rejection::BadSignature),
            _ => Err(Rejection::Malformed),
        },
    }
}

/// `iss`, `aud`/`client_id`, `exp`, `nbf`, `iat`, in AWS's order.
fn check_claims(
    claims: &serde_json::Map<String, Value>,
    rules: &JwtRules,
    now: u64,
) -> Result<(), Rejection> {
    if claims.get("iss").and_then(Value::as_str) != Some(rules.issuer.as_str()) {
        return Err(Rejection::Issuer);
    }
    // `aud` when there is one (a string or a list), else `client_id`
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => rules.audience.iter().any(|r| r == a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| rules.audience.iter().any(|r| r == a)),
        Some(_) => false,
        None => claims
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|c| rules.audience.iter().any(|r| r == c)),
    };
    if !audience_ok {
        return Err(Rejection::Audience);
    }
    let time = |name: &str| -> Result<Option<u64>, Rejection> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or(Rejection::Malformed),
        }
    };
    match time("exp")? {
        Some(exp) if exp.saturating_add(LEEWAY) <= now => return Err(Rejection::Expired),
        None => return Err(Rejection::Expired),
        _ => {}
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY)) {
        return Err(Rejection::NotYetValid);
    }
    if time("iat")?.is_some_and(|iat| iat > now.saturating_add(LEEWAY)) {
        return Err(Rejection::NotYetValid);
    }
    Ok(())
}

/// Whether the token grants one of `wanted` (`scope`: space-separated; `scp`: a
/// list or a space-separated string). An empty `wanted` asks for nothing.
pub fn has_scope(claims: &serde_json::Map<String, Value>, wanted: &[String]) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let granted = |s: &str| wanted.iter().any(|w| w == s);
    let in_value = |v: &Value| match v {
        Value::String(s) => s.split(' ').any(granted),
        Value::Array(list) => list.iter().filter_map(Value::as_str).any(granted),
        _ => false,
    };
    claims.get("scope").is_some_and(in_value) || claims.get("scp").is_some_and(in_value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    /// An ES256 key pair: the signing key and its JWKS (one key, `kid`).
    pub(crate) fn es256(kid: &str) -> (EncodingKey, String) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        let b64 = |b: &[u8]| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        let jwks = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"{kid}","use":"sig","x":"{}","y":"{}"}}]}}"#,
            b64(&point[1..33]),
            b64(&point[33..65])
        );
        (EncodingKey::from_ec_der(&pair.serialize_der()), jwks)
    }

    pub(crate) fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(kid.into());
        encode(&h, claims, key).unwrap()
    }

    fn rules() -> JwtRules {
        JwtRules {
            issuer: "https://issuer.example".into(),
            audience: vec!["app".into()],
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn claims(extra: Value) -> Value {
        let mut c = serde_json::json!({"iss": "https://issuer.example", "aud": "app", "sub": "u1", "exp": NOW + 600});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    #[test]
    fn tokens_are_checked_step_by_step() {
        let (key, jwks) = es256("k1");
        let keys = KeySet::parse(jwks.as_bytes()).unwrap();
        let check = |extra: Value| verify(&sign(&key, "k1", &claims(extra)), &keys, &rules(), NOW);
        let ok = check(serde_json::json!({})).unwrap();
        assert_eq!(ok.subject(), Some("u1"));
        assert_eq!(ok.exp, Some(NOW + 600));
        assert_eq!(
            check(serde_json::json!({"iss": "https://other"})).unwrap_err(),
            Rejection::Issuer
        );
        assert_eq!(
            check(serde_json::json!({"aud": "else"})).unwrap_err(),
            Rejection::Audience
        );
        assert!(check(serde_json::json!({"aud": ["else", "app"]})).is_ok());
        // Cognito access tokens: no aud, a client_id
        assert!(check(serde_json::json!({"aud": null, "client_id": "app"})).is_ok());
        assert_eq!(
            check(serde_json::json!({"aud": null, "client_id": "x"})).unwrap_err(),
            Rejection::Audience
        );
        // aud wins over client_id when both are there
        assert_eq!(
            check(serde_json::json!({"aud": "x", "client_id": "app"})).unwrap_err(),
            Rejection::Audience
        );
        assert_eq!(
            check(serde_json::json!({"exp": NOW - 61})).unwrap_err(),
            Rejection::Expired
        );
        assert!(
            check(serde_json::json!({"exp": NOW - 30})).is_ok(),
            "within the leeway"
        );
        assert_eq!(
            check(serde_json::json!({"exp": null})).unwrap_err(),
            Rejection::Expired
        );
        assert_eq!(
            check(serde_json::json!({"nbf": NOW + 120})).unwrap_err(),
            Rejection::NotYetValid
        );
        assert_eq!(
            check(serde_json::json!({"iat": NOW + 120})).unwrap_err(),
            Rejection::NotYetValid
        );
        assert_eq!(
            check(serde_json::json!({"exp": "soon"})).unwrap_err(),
            Rejection::Malformed
        );
        // another key: unknown kid, or the right kid with a wrong signature
        let (other, _) = es256("k1");
        let t = sign(&other, "k2", &claims(serde_json::json!({})));
        assert_eq!(
            verify(&t, &keys, &rules(), NOW).unwrap_err(),
            Rejection::UnknownKey
        );
        let t = sign(&other, "k1", &claims(serde_json::json!({})));
        assert_eq!(
            verify(&t, &keys, &rules(), NOW).unwrap_err(),
            Rejection::BadSignature
        );
    }

    #[test]
    fn none_and_hmac_are_never_accepted() {
        let (_, jwks) = es256("k1");
        let keys = KeySet::parse(jwks.as_bytes()).unwrap();
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        };
        let body = b64(&claims(serde_json::json!({})).to_string());
        let none = format!("{}.{body}.", b64(r#"{"alg":"none","kid":"k1"}"#));
        assert_eq!(
            verify(&none, &keys, &rules(), NOW).unwrap_err(),
            Rejection::Malformed
        );
        // HS256 keyed with the public key's JWKS text: refused before any key is used
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let hs = encode(
            &h,
            &claims(serde_json::json!({})),
            &EncodingKey::from_secret(jwks.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            verify(&hs, &keys, &rules(), NOW).unwrap_err(),
            Rejection::Malformed
        );
        for junk in ["", "a.b.c", "....", "eyJ.eyJ.x", "Bearer x"] {
            assert!(verify(junk, &keys, &rules(), NOW).is_err(), "{junk}");
        }
    }

    #[test]
    fn reasons_name_their_metric_label() {
        use crate::observe::metrics::AUTH_DECISIONS;
        for r in [
            Rejection::Missing,
            Rejection::Malformed,
            Rejection::UnknownKey,
            Rejection::NoKeys,
            Rejection::BadSignature,
            Rejection::Expired,
            Rejection::NotYetValid,
            Rejection::Issuer,
            Rejection::Audience,
        ] {
            assert_eq!(AUTH_DECISIONS[r.index() as usize], r.reason());
        }
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let m = |v: Value| v.as_object().unwrap().clone();
        let want = vec!["orders/read".to_string()];
        assert!(has_scope(
            &m(serde_json::json!({"scope": "openid orders/read"})),
            &want
        ));
        assert!(has_scope(
            &m(serde_json::json!({"scp": ["orders/read"]})),
            &want
        ));
        assert!(has_scope(
            &m(serde_json::json!({"scp": "a orders/read"})),
            &want
        ));
        assert!(!has_scope(
            &m(serde_json::json!({"scope": "orders/write"})),
            &want
        ));
        assert!(!has_scope(&m(serde_json::json!({})), &want));
        assert!(has_scope(&m(serde_json::json!({})), &[]));
    }

    #[test]
    fn bearer_prefix_is_optional() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b""), None);
    }
}
