//! JWT authorizers: a token verified from scratch (ES256: decode, signature, claims)
//! and the same token from a worker's token cache (what every request after the
//! first pays), with the token cache holding 4,000 other tokens.

use std::sync::Arc;

use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use turnpike::auth::jwks::KeySet;
use turnpike::auth::jwt::{self, JwtRules};
use turnpike::auth::tokens::TokenCache;

fn setup() -> (String, KeySet, JwtRules, u64) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p = pair.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k","x":"{}","y":"{}"}}]}}"#,
        b64(&p[1..33]),
        b64(&p[33..65])
    );
    let now = 1_800_000_000;
    let claims = serde_json::json!({"iss": "https://issuer", "aud": "app", "sub": "user-1",
        "exp": now + 3600, "scope": "openid orders/read", "email": "a@example.com"});
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k".into());
    let token = encode(
        &h,
        &claims,
        &EncodingKey::from_ec_der(&pair.serialize_der()),
    )
    .unwrap();
    let rules = JwtRules {
        issuer: "https://issuer".into(),
        audience: vec!["app".into()],
    };
    (token, KeySet::parse(jwks.as_bytes()).unwrap(), rules, now)
}

fn verify(c: &mut Criterion) {
    let (token, keys, rules, now) = setup();
    c.bench_function("jwt/verify_es256", |b| {
        b.iter(|| jwt::verify(black_box(&token), &keys, &rules, now).unwrap())
    });
    let mut cache = TokenCache::default();
    for i in 0..4000u32 {
        let other = format!("{token}{i}");
        let v = jwt::Verified {
            exp: Some(now + 60),
            claims: Arc::new(serde_json::Map::new()),
        };
        cache.put(0, other.as_bytes(), v, now);
    }
    let v = jwt::verify(&token, &keys, &rules, now).unwrap();
    cache.put(0, token.as_bytes(), v, now);
    let wanted = vec!["orders/read".to_string()];
    c.bench_function("jwt/cached_token_and_scope", |b| {
        b.iter(|| {
            let t = jwt::bearer(black_box(token.as_bytes())).unwrap();
            let v = cache.get(0, t, now).unwrap();
            assert!(jwt::has_scope(&v.claims, &wanted));
        })
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
