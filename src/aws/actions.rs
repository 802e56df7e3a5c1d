//! AWS service integrations, HTTP API style (DESIGN §9.3): named actions
//! (`SQS-SendMessage`, `EventBridge-PutEvents`, `Kinesis-PutRecord`,
//! `StepFunctions-StartExecution`, …) whose parameters come from the request, sent
//! in the protocol the service speaks (the JSON protocols: `X-Amz-Target` and an
//! `application/x-amz-json-1.x` body). Plain data: an action and its parameter
//! values in, the request body out; unit-tested below, end to end against moto in
//! `tests/aws_actions.rs`.

use serde_json::{Map, Value};

/// How a parameter's value is typed in the service's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    /// A JSON list, or comma-separated values.
    List,
    /// A JSON object (message attributes).
    Object,
    /// Sent base64-encoded (Kinesis `Data`).
    Blob,
}

/// One named action.
#[derive(Debug)]
pub struct Action {
    pub name: &'static str,
    /// The `[aws].endpoints` key and `AWS_ENDPOINT_URL_<KEY>` suffix.
    pub endpoint: &'static str,
    /// The SigV4 signing name, also the default endpoint's host prefix.
    pub signing: &'static str,
    /// `X-Amz-Target`.
    pub target: &'static str,
    /// `1.0` or `1.1`.
    pub json: &'static str,
    /// (parameter, kind, required)
    pub params: &'static [(&'static str, Kind, bool)],
    /// The body's shape: the parameters as they are, or inside `Entries[0]`.
    pub entries: bool,
    /// The service's JSON names are camelCase (`stateMachineArn` for the
    /// `StateMachineArn` parameter: Step Functions).
    pub camel: bool,
}

use Kind::*;

/// The named actions built so far.
pub const ACTIONS: &[Action] = &[
    Action {
        name: "SQS-SendMessage",
        endpoint: "sqs",
        signing: "sqs",
        target: "AmazonSQS.SendMessage",
        json: "1.0",
        params: &[
            ("QueueUrl", Text, true),
            ("MessageBody", Text, true),
            ("DelaySeconds", Integer, false),
            ("MessageAttributes", Object, false),
            ("MessageDeduplicationId", Text, false),
            ("MessageGroupId", Text, false),
        ],
        entries: false,
        camel: false,
    },
    Action {
        name: "SQS-ReceiveMessage",
        endpoint: "sqs",
        signing: "sqs",
        target: "AmazonSQS.ReceiveMessage",
        json: "1.0",
        params: &[
            ("QueueUrl", Text, true),
            ("AttributeNames", List, false),
            ("MaxNumberOfMessages", Integer, false),
            ("MessageAttributeNames", List, false),
            ("ReceiveRequestAttemptId", Text, false),
            ("VisibilityTimeout", Integer, false),
            ("WaitTimeSeconds", Integer, false),
        ],
        entries: false,
        camel: false,
    },
    Action {
        name: "SQS-DeleteMessage",
        endpoint: "sqs",
        signing: "sqs",
        target: "AmazonSQS.DeleteMessage",
        json: "1.0",
        params: &[("QueueUrl", Text, true), ("ReceiptHandle", Text, true)],
        entries: false,
        camel: false,
    },
    Action {
        name: "SQS-PurgeQueue",
        endpoint: "sqs",
        signing: "sqs",
        target: "AmazonSQS.PurgeQueue",
        json: "1.0",
        params: &[("QueueUrl", Text, true)],
        entries: false,
        camel: false,
    },
    Action {
        name: "EventBridge-PutEvents",
        endpoint: "eventbridge",
        signing: "events",
        target: "AWSEvents.PutEvents",
        json: "1.1",
        params: &[
            ("Detail", Text, true),
            ("DetailType", Text, true),
            ("Source", Text, true),
            ("EventBusName", Text, false),
            ("Resources", List, false),
            ("Time", Text, false),
            ("TraceHeader", Text, false),
        ],
        entries: true,
        camel: false,
    },
    Action {
        name: "Kinesis-PutRecord",
        endpoint: "kinesis",
        signing: "kinesis",
        target: "Kinesis_20131202.PutRecord",
        json: "1.1",
        params: &[
            ("StreamName", Text, true),
            ("Data", Blob, true),
            ("PartitionKey", Text, true),
            ("SequenceNumberForOrdering", Text, false),
            ("ExplicitHashKey", Text, false),
        ],
        entries: false,
        camel: false,
    },
    Action {
        name: "StepFunctions-StartExecution",
        endpoint: "sfn",
        signing: "states",
        target: "AWSStepFunctions.StartExecution",
        json: "1.0",
        params: &[
            ("StateMachineArn", Text, true),
            ("Name", Text, false),
            ("Input", Text, false),
        ],
        entries: false,
        camel: true,
    },
    Action {
        name: "StepFunctions-StopExecution",
        endpoint: "sfn",
        signing: "states",
        target: "AWSStepFunctions.StopExecution",
        json: "1.0",
        params: &[
            ("ExecutionArn", Text, true),
            ("Cause", Text, false),
            ("Error", Text, false),
        ],
        entries: false,
        camel: true,
    },
];

pub fn find(name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.name == name)
}

impl Action {
    /// Checks configured parameter names: unknown ones and missing required ones.
    pub fn check(&self, given: &[&str]) -> Result<(), String> {
        for g in given {
            if !self.params.iter().any(|(p, _, _)| p == g) && *g != "Region" {
                return Err(format!(
                    "{} has no parameter `{g}` (it takes {})",
                    self.name,
                    self.params
                        .iter()
                        .map(|p| p.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        for (p, _, required) in self.params {
            if *required && !given.contains(p) {
                return Err(format!("{} needs the parameter `{p}`", self.name));
            }
        }
        Ok(())
    }

    /// The request body for these parameter values (already resolved from the
    /// request). An empty optional value is left out, as AWS does.
    pub fn body(&self, values: &[(&str, String)]) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let mut m = Map::new();
        for (name, value) in values {
            let Some((_, kind, required)) = self.params.iter().find(|(p, _, _)| p == name) else {
                continue; // Region
            };
            if value.is_empty() {
                if *required {
                    return Err(format!("parameter `{name}` is empty"));
                }
                continue;
            }
            let v = match kind {
                Text => Value::from(value.as_str()),
                Integer => Value::from(
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| format!("parameter `{name}` is not an integer"))?,
                ),
                List => match serde_json::from_str::<Value>(value) {
                    Ok(v @ Value::Array(_)) => v,
                    _ => Value::Array(value.split(',').map(|s| Value::from(s.trim())).collect()),
                },
                Object => serde_json::from_str::<Value>(value)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| format!("parameter `{name}` is not a JSON object"))?,
                Blob => Value::from(base64::engine::general_purpose::STANDARD.encode(value)),
            };
            let wire = if self.camel {
                let mut c = name.chars();
                c.next().map_or_else(String::new, |f| {
                    f.to_ascii_lowercase().to_string() + c.as_str()
                })
            } else {
                (*name).to_string()
            };
            m.insert(wire, v);
        }
        let body = if self.entries {
            Value::Object(Map::from_iter([(
                "Entries".to_string(),
                Value::Array(vec![Value::Object(m)]),
            )]))
        } else {
            Value::Object(m)
        };
        serde_json::to_vec(&body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_against_the_action() {
        let a = find("SQS-SendMessage").unwrap();
        assert!(a.check(&["QueueUrl", "MessageBody"]).is_ok());
        assert!(a.check(&["QueueUrl", "MessageBody", "Region"]).is_ok());
        assert!(a
            .check(&["QueueUrl"])
            .unwrap_err()
            .contains("needs the parameter `MessageBody`"));
        assert!(a
            .check(&["QueueUrl", "MessageBody", "Nope"])
            .unwrap_err()
            .contains("no parameter `Nope`"));
        assert!(find("SQS-Explode").is_none());
    }

    #[test]
    fn bodies_have_the_services_shapes() {
        let a = find("SQS-SendMessage").unwrap();
        let b = a
            .body(&[
                ("QueueUrl", "http://q".into()),
                ("MessageBody", "hi".into()),
                ("DelaySeconds", "5".into()),
                ("MessageGroupId", "".into()),
            ])
            .unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"DelaySeconds":5,"MessageBody":"hi","QueueUrl":"http://q"}"#
        );
        assert!(a
            .body(&[
                ("QueueUrl", "q".into()),
                ("MessageBody", "hi".into()),
                ("DelaySeconds", "soon".into())
            ])
            .is_err());
        assert!(a
            .body(&[("QueueUrl", "q".into()), ("MessageBody", "".into())])
            .is_err());
        let e = find("EventBridge-PutEvents").unwrap();
        let b = e
            .body(&[
                ("Detail", "{}".into()),
                ("DetailType", "t".into()),
                ("Source", "s".into()),
                ("Resources", "a, b".into()),
            ])
            .unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"Entries":[{"Detail":"{}","DetailType":"t","Resources":["a","b"],"Source":"s"}]}"#
        );
        let f = find("StepFunctions-StartExecution").unwrap();
        let b = f
            .body(&[("StateMachineArn", "arn:sm".into()), ("Input", "{}".into())])
            .unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"input":"{}","stateMachineArn":"arn:sm"}"#
        );
        let k = find("Kinesis-PutRecord").unwrap();
        let b = k
            .body(&[
                ("StreamName", "s".into()),
                ("Data", "hi".into()),
                ("PartitionKey", "p".into()),
            ])
            .unwrap();
        assert!(String::from_utf8(b).unwrap().contains(r#""Data":"aGk=""#));
    }
}
