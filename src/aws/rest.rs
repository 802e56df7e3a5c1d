//! AWS service integrations, REST API style (DESIGN §9.3): AWS's own integration
//! URIs, `arn:aws:apigateway:{region}:{service}:action/{Action}` or
//! `…:{service}:path/{path}`, with the request made by a mapping template. Each
//! service is called in the protocol it speaks: the JSON protocols (`X-Amz-Target`,
//! `application/x-amz-json-1.x`), the Query protocol (`Action` and `Version` in the
//! query string, a form body), or REST-XML (S3: the method and path as given).
//!
//! Plain data: a URI in, the service and the request's fixed parts out;
//! unit-tested below, end to end against moto in `tests/aws_rest.rs`.

/// How a service takes its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `X-Amz-Target: {target}.{Action}`, `application/x-amz-json-{version}`.
    Json {
        version: &'static str,
        target: &'static str,
    },
    /// `Action={Action}&Version={version}`, parameters in the query or a form body.
    Query { version: &'static str },
    /// The method and path as the URI gives them (S3).
    RestXml,
}

/// A service REST integrations can call.
#[derive(Debug)]
pub struct RestService {
    /// The service as AWS's integration URIs name it.
    pub arn_name: &'static str,
    /// The `[aws].endpoints` key (`AWS_ENDPOINT_URL_<KEY>`).
    pub endpoint: &'static str,
    /// The SigV4 signing name.
    pub signing: &'static str,
    pub protocol: Protocol,
}

pub const SERVICES: &[RestService] = &[
    RestService {
        arn_name: "dynamodb",
        endpoint: "dynamodb",
        signing: "dynamodb",
        protocol: Protocol::Json {
            version: "1.0",
            target: "DynamoDB_20120810",
        },
    },
    RestService {
        arn_name: "kinesis",
        endpoint: "kinesis",
        signing: "kinesis",
        protocol: Protocol::Json {
            version: "1.1",
            target: "Kinesis_20131202",
        },
    },
    RestService {
        arn_name: "events",
        endpoint: "eventbridge",
        signing: "events",
        protocol: Protocol::Json {
            version: "1.1",
            target: "AWSEvents",
        },
    },
    RestService {
        arn_name: "states",
        endpoint: "sfn",
        signing: "states",
        protocol: Protocol::Json {
            version: "1.0",
            target: "AWSStepFunctions",
        },
    },
    RestService {
        arn_name: "sqs",
        endpoint: "sqs",
        signing: "sqs",
        protocol: Protocol::Query {
            version: "2012-11-05",
        },
    },
    RestService {
        arn_name: "sns",
        endpoint: "sns",
        signing: "sns",
        protocol: Protocol::Query {
            version: "2010-03-31",
        },
    },
    RestService {
        arn_name: "s3",
        endpoint: "s3",
        signing: "s3",
        protocol: Protocol::RestXml,
    },
];

/// What an integration URI says.
#[derive(Debug, PartialEq, Eq)]
pub struct Uri {
    pub region: String,
    pub service: &'static RestService,
    pub target: Target,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `action/Name`, with `&k=v` parameters after it (Query services).
    Action(String, Vec<(String, String)>),
    /// `path/…` (may hold `{name}` placeholders).
    Path(String),
}

impl PartialEq for RestService {
    fn eq(&self, other: &Self) -> bool {
        self.arn_name == other.arn_name
    }
}

impl Eq for RestService {}

pub fn parse_uri(uri: &str) -> Result<Uri, String> {
    let rest = uri.strip_prefix("arn:aws:apigateway:").ok_or_else(|| {
        format!("`{uri}` is not an integration URI (arn:aws:apigateway:REGION:SERVICE:action/NAME or :path/PATH)")
    })?;
    let mut parts = rest.splitn(3, ':');
    let region = parts.next().unwrap_or("");
    let service = parts.next().unwrap_or("");
    let what = parts.next().unwrap_or("");
    if region.is_empty() || service.is_empty() || what.is_empty() {
        return Err(format!(
            "`{uri}`: expected arn:aws:apigateway:REGION:SERVICE:action/NAME or :path/PATH"
        ));
    }
    // `{subdomain}.{service}` (e.g. a bucket's virtual host): the service is last
    let name = service.rsplit('.').next().unwrap_or(service);
    let service = SERVICES
        .iter()
        .find(|s| s.arn_name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = SERVICES.iter().map(|s| s.arn_name).collect();
            format!(
                "`{uri}`: service `{name}` is not one turnpike calls (it calls {})",
                names.join(", ")
            )
        })?;
    let target = if let Some(a) = what.strip_prefix("action/") {
        let mut pieces = a.split('&');
        let action = pieces.next().unwrap_or("").to_string();
        if action.is_empty() || !action.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("`{uri}`: `{action}` is not an action name"));
        }
        let extra = pieces
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        if service.protocol == Protocol::RestXml {
            return Err(format!(
                "`{uri}`: {name} is called by path (…:{name}:path/…), not by action"
            ));
        }
        Target::Action(action, extra)
    } else if let Some(p) = what.strip_prefix("path/") {
        // S3 by path, and Query services by a resource's path (AWS's SQS tutorial:
        // `sqs:path/ACCOUNT/QUEUE` with `Action` mapped into the query string)
        if matches!(service.protocol, Protocol::Json { .. }) {
            return Err(format!(
                "`{uri}`: {name} is called by action (…:{name}:action/NAME)"
            ));
        }
        Target::Path(format!("/{p}"))
    } else {
        return Err(format!(
            "`{uri}`: after the service comes action/NAME or path/PATH"
        ));
    };
    Ok(Uri {
        region: region.to_string(),
        service,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awss_integration_uris_parse() {
        let u = parse_uri("arn:aws:apigateway:us-east-1:dynamodb:action/PutItem").unwrap();
        assert_eq!(
            (u.region.as_str(), u.service.arn_name),
            ("us-east-1", "dynamodb")
        );
        assert_eq!(u.target, Target::Action("PutItem".into(), vec![]));
        let u = parse_uri("arn:aws:apigateway:us-west-2:sns:action/Publish&Subject=hi").unwrap();
        assert_eq!(
            u.target,
            Target::Action("Publish".into(), vec![("Subject".into(), "hi".into())])
        );
        let u = parse_uri("arn:aws:apigateway:us-east-1:s3:path/{bucket}/{key}").unwrap();
        assert_eq!(u.target, Target::Path("/{bucket}/{key}".into()));
        let u = parse_uri("arn:aws:apigateway:us-east-1:sqs:path/123456789012/orders").unwrap();
        assert_eq!(u.target, Target::Path("/123456789012/orders".into()));
        let u = parse_uri("arn:aws:apigateway:us-east-1:mybucket.s3:path/a").unwrap();
        assert_eq!(u.service.arn_name, "s3");
        for bad in [
            "https://dynamodb.amazonaws.com",
            "arn:aws:apigateway:us-east-1:dynamodb",
            "arn:aws:apigateway:us-east-1:lightsail:action/X",
            "arn:aws:apigateway:us-east-1:s3:action/GetObject",
            "arn:aws:apigateway:us-east-1:dynamodb:path/tables",
            "arn:aws:apigateway:us-east-1:dynamodb:action/Put Item",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
    }
}
