//! What the events sent to authorizers and Lambda functions say about a request
//! (`auth::authorizer::Request`): read from the request head, the route and its
//! stage, and the connection, once per event.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::authorizer::Request;
use crate::plan::router::Params;
use crate::plan::{Plan, Route};
use crate::proto::h1::RequestHead;

use super::Downstream;

/// The owned parts of a request's facts; [`Facts::request`] borrows the rest.
#[derive(Debug)]
pub struct Facts {
    pub method_arn: String,
    request_id: String,
    source_ip: String,
    protocol: &'static str,
    time_ms: u64,
}

impl Facts {
    pub fn new(ds: &mut Downstream<'_>, head: &RequestHead, plan: &Plan, route: &Route) -> Facts {
        let stage = &plan.stages[route.stage as usize];
        let method = std::str::from_utf8(head.method()).unwrap_or("");
        Facts {
            method_arn: format!(
                "arn:aws:execute-api:{}:{}:{}/{}/{}{}",
                plan.gateway.region,
                plan.gateway.account,
                stage.api,
                stage.name,
                method,
                api_path(head, &stage.base_path)
            ),
            request_id: String::from_utf8_lossy(&ds.rec.request_id).into_owned(),
            source_ip: ds.peer_ip.to_string(),
            protocol: if ds.io.h2().is_some() {
                "HTTP/2.0"
            } else {
                "HTTP/1.1"
            },
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    pub fn request<'a>(
        &'a self,
        head: &'a RequestHead,
        plan: &'a Plan,
        route: &'a Route,
        params: &Params,
    ) -> Request<'a> {
        let stage = &plan.stages[route.stage as usize];
        Request {
            method: std::str::from_utf8(head.method()).unwrap_or(""),
            path: head.path(),
            api_path: api_path(head, &stage.base_path),
            query: head
                .query()
                .and_then(|q| std::str::from_utf8(q).ok())
                .unwrap_or(""),
            headers: head
                .headers()
                .filter_map(|(n, v)| {
                    Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?))
                })
                .collect(),
            route_key: &route.key,
            resource: route.key.split_once(' ').map_or(&*route.key, |(_, p)| p),
            path_params: route
                .param_names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), params.get(head.path(), i).to_string()))
                .collect(),
            stage: &stage.name,
            api: &stage.api,
            account: &plan.gateway.account,
            stage_variables: &stage.variables,
            source_ip: &self.source_ip,
            request_id: &self.request_id,
            host: std::str::from_utf8(head.host()).unwrap_or(""),
            time_ms: self.time_ms,
            protocol: self.protocol,
            method_arn: &self.method_arn,
        }
    }
}

/// The path within the stage (its base path removed).
fn api_path<'h>(head: &'h RequestHead, base_path: &str) -> &'h str {
    head.path()
        .strip_prefix(base_path)
        .filter(|p| p.starts_with('/'))
        .unwrap_or(head.path())
}
