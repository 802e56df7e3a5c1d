//! `[aws]` (DESIGN §9.1) → the region, credentials and endpoint of each AWS service
//! a route or authorizer calls, made on first use so that a configuration without
//! AWS integrations never looks for credentials.

use std::sync::Arc;

use super::{at, Ctx};
use crate::aws::{credentials, Credentials, Service};
use crate::config::model::AwsCredentials;
use crate::config::{Config, Pos};

/// The service `name` (`lambda`, …) for a use at `pos`; errors are reported there.
pub(super) fn service(
    cx: &mut Ctx,
    cfg: &Config,
    name: &'static str,
    pos: &Pos,
) -> Option<Arc<Service>> {
    service_as(cx, cfg, name, name, pos)
}

/// The service whose `[aws].endpoints` key is `key` and whose SigV4 signing name
/// (and default host prefix) is `name` (`eventbridge` signs as `events`).
pub(super) fn service_as(
    cx: &mut Ctx,
    cfg: &Config,
    key: &'static str,
    name: &'static str,
    pos: &Pos,
) -> Option<Arc<Service>> {
    if let Some(s) = cx.aws_services.iter().find(|s| s.name == name) {
        return Some(s.clone());
    }
    let env = |k: &str| std::env::var(k).ok();
    let aws = cfg.aws.as_ref();
    let profile = aws
        .and_then(|a| a.value.profile.as_ref())
        .map(|p| p.get_ref().as_str());
    let region = aws
        .and_then(|a| a.value.region.as_ref())
        .map(|r| r.get_ref().clone())
        .or_else(|| env("AWS_REGION").filter(|r| !r.is_empty()))
        .or_else(|| env("AWS_DEFAULT_REGION").filter(|r| !r.is_empty()))
        .or_else(|| credentials::config_region(&env, profile));
    let Some(region) = region else {
        cx.err(
            pos.clone(),
            format!("calling {name} needs an AWS region"),
            Some("set [aws] region = \"us-east-1\" (or AWS_REGION)"),
        );
        return None;
    };
    let chain = match cfg.aws.as_ref().and_then(|a| a.value.credentials.as_ref()) {
        None => Some(profile.map(str::to_string)),
        Some(c) => match c.get_ref() {
            AwsCredentials::Chain(_) => Some(profile.map(str::to_string)),
            AwsCredentials::Static(_) => None,
        },
    };
    let creds = match credentials_of(cfg, profile) {
        Ok(c) => c,
        Err((p, msg)) => {
            cx.err(p.unwrap_or_else(|| pos.clone()), msg, Some("[aws] credentials = \"default\" reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, then ~/.aws/credentials and ~/.aws/config"));
            return None;
        }
    };
    let configured = aws.and_then(|a| a.value.endpoints.get(key).map(|u| (a, u)));
    let env_url = env(&format!("AWS_ENDPOINT_URL_{}", key.to_ascii_uppercase()))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .filter(|u| !u.is_empty());
    let (url, url_pos) = match (configured, env_url) {
        (Some((a, u)), _) => (u.get_ref().clone(), at(a, u.span())),
        (None, Some(u)) => (u, pos.clone()),
        (None, None) => (
            format!("https://{name}.{region}.amazonaws.com"),
            pos.clone(),
        ),
    };
    let endpoint = match super::endpoint::endpoint(&url, || cx.system_tls()) {
        Ok(e) => e,
        Err(msg) => {
            cx.err(url_pos, format!("{name} endpoint: {msg}"), None);
            return None;
        }
    };
    let mut s = Service::new(name, region, endpoint, creds);
    s.chain = chain;
    let s = Arc::new(s);
    cx.aws_services.push(s.clone());
    Some(s)
}

fn credentials_of(
    cfg: &Config,
    profile: Option<&str>,
) -> Result<Credentials, (Option<Pos>, String)> {
    let env = |k: &str| std::env::var(k).ok();
    let spec = cfg
        .aws
        .as_ref()
        .and_then(|a| a.value.credentials.as_ref().map(|c| (a, c)));
    match spec {
        None => credentials::chain(&env, profile).map_err(|m| (None, m)),
        Some((a, c)) => {
            let p = Some(at(a, c.span()));
            match c.get_ref() {
                AwsCredentials::Chain(s) if s == "default" => credentials::chain(&env, profile).map_err(|m| (p, m)),
                AwsCredentials::Chain(other) => Err((p, format!("credentials = \"{other}\": expected \"default\" or a table with access_key and secret"))),
                AwsCredentials::Static(s) => {
                    let secret = match (&s.secret, &s.secret_env, &s.secret_file) {
                        (Some(v), None, None) => v.clone(),
                        (None, Some(var), None) => std::env::var(var).map_err(|_| (p.clone(), format!("credentials: environment variable {var} is not set")))?,
                        (None, None, Some(file)) => {
                            let path = super::dir_of(&cfg.sources, a).join(file);
                            std::fs::read_to_string(&path)
                                .map(|t| t.trim().to_string())
                                .map_err(|e| (p.clone(), format!("credentials: cannot read {}: {e}", path.display())))?
                        }
                        _ => return Err((p, "credentials: give exactly one of secret, secret_env, secret_file".into())),
                    };
                    Ok(Credentials {
                        access_key: s.access_key.clone(),
                        secret,
                        session_token: s.session_token.clone(),
                        source: "[aws] credentials".into(),
                        expires: None,
                    })
                }
            }
        }
    }
}
