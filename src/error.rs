//! What went wrong on a request, which side caused it, and what that means for the
//! response, the connection and a retry. One place decides status, message and
//! whether the connection survives (STYLE: errors say which side failed).

/// Who failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something we refuse.
    Downstream,
    /// The upstream refused, reset, timed out or answered badly.
    Upstream,
    /// The gateway itself (no route, no target, draining).
    Gateway,
}

/// A failure the gateway answers itself (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Malformed request; framing may be in doubt, so the connection closes.
    BadRequest,
    HeadersTooLarge,
    BodyTooLarge,
    NotFound,
    /// Allowed methods as router bits.
    MethodNotAllowed(u16),
    Forbidden,
    /// A JWT authorizer refused the token (or found none): 401 with `www-authenticate`.
    Unauthorized(crate::auth::jwt::Rejection),
    /// A valid token without any of the route's scopes: 403.
    InsufficientScope,
    /// A request authorizer's identity is missing, or it answered `Unauthorized`:
    /// 401 (no `www-authenticate`: not a bearer-token scheme).
    Unauthenticated,
    /// A request authorizer's IAM policy does not allow the method ARN: 403
    /// with AWS's `Message` body and `x-amzn-ErrorType: AccessDeniedException`.
    AccessDenied {
        explicit: bool,
    },
    /// The request authorizer failed, timed out or gave an invalid answer: 500
    /// (AWS: `{"message": null}`, `AuthorizerConfigurationException`).
    AuthorizerFailure,
    /// An IAM route refused the signature or the signer's policy denied: 403 with
    /// AWS's dynamic message (`Rec::iam_refusal`).
    IamRefused,
    /// A Lambda function failed (`X-Amz-Function-Error`) or answered in a shape the
    /// proxy integration cannot map: 502.
    LambdaFailure,
    /// Lambda refused the invocation (permissions, signature, missing function) or
    /// could not be reached: 500.
    LambdaRejected,
    /// A request body over Lambda's 6 MB payload limit: 413.
    RequestTooLong,
    /// A non-proxy integration has no request template for the body's media type
    /// and its passthrough behaviour refuses it: 415.
    UnsupportedMediaType,
    /// The body does not satisfy the route's model: 400 `Invalid request body`.
    BadRequestBody,
    /// A required parameter is missing or blank: 400 with the names
    /// (`Rec::validation`).
    BadRequestParameters,
    /// A mapping template failed (its byte or step limit): 500.
    TemplateFailure,
    /// No integration response matches and none is the default (AWS: an
    /// API configuration error): 500.
    NoResponseMapping,
    /// A throttle's bucket is empty: seconds until a token, the rate and burst.
    TooManyRequests {
        retry_after: u32,
        limit: u32,
        burst: u32,
    },
    /// The key's usage-plan quota is used up until the next period (seconds away).
    LimitExceeded {
        retry_after: u32,
    },
    /// Connect refused or timed out: nothing was sent, a retry elsewhere is safe.
    UpstreamConnect,
    /// The upstream closed or reset before any response byte.
    UpstreamReset,
    /// The upstream's response could not be parsed or framed.
    UpstreamMalformed,
    UpstreamTimeout,
    /// The connect attempt timed out (nothing was sent: another target may answer).
    UpstreamConnectTimeout,
    Unavailable,
    /// Every target of the upstream is unhealthy, ejected or already tried.
    NoHealthyTarget,
    /// The upstream is at `max_connections` with `max_pending` requests waiting.
    CircuitOpen,
    /// The TLS handshake with the upstream failed (certificate, name, protocol).
    UpstreamTls,
    /// Too many requests already queued for a connection to the target.
    QueueFull,
    /// No connection to the target came free within the upstream's `queue_timeout`.
    QueueTimeout,
}

impl Error {
    pub fn status(self) -> u16 {
        match self {
            Error::BadRequest => 400,
            Error::HeadersTooLarge => 431,
            Error::BodyTooLarge => 413,
            Error::NotFound => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Forbidden
            | Error::InsufficientScope
            | Error::AccessDenied { .. }
            | Error::IamRefused => 403,
            Error::Unauthorized(_) | Error::Unauthenticated => 401,
            Error::AuthorizerFailure | Error::LambdaRejected => 500,
            Error::LambdaFailure => 502,
            Error::RequestTooLong => 413,
            Error::UnsupportedMediaType => 415,
            Error::BadRequestBody | Error::BadRequestParameters => 400,
            Error::TemplateFailure | Error::NoResponseMapping => 500,
            Error::TooManyRequests { .. } | Error::LimitExceeded { .. } => 429,
            Error::UpstreamConnect
            | Error::UpstreamReset
            | Error::UpstreamMalformed
            | Error::UpstreamTls => 502,
            Error::UpstreamTimeout | Error::UpstreamConnectTimeout => 504,
            Error::Unavailable
            | Error::NoHealthyTarget
            | Error::CircuitOpen
            | Error::QueueFull
            | Error::QueueTimeout => 503,
        }
    }

    /// AWS's wording where AWS has one.
    pub fn message(self) -> &'static str {
        match self {
            Error::BadRequest => "Bad Request",
            Error::HeadersTooLarge => "Request Header Fields Too Large",
            Error::BodyTooLarge => "Request Entity Too Large",
            Error::NotFound => "Not Found",
            Error::MethodNotAllowed(_) => "Method Not Allowed",
            Error::Forbidden | Error::InsufficientScope => "Forbidden",
            Error::Unauthorized(_) | Error::Unauthenticated => "Unauthorized",
            Error::AccessDenied { explicit: true } => {
                "User is not authorized to access this resource with an explicit deny"
            }
            Error::AccessDenied { explicit: false } => {
                "User is not authorized to access this resource"
            }
            Error::AuthorizerFailure | Error::LambdaFailure | Error::LambdaRejected => {
                "Internal server error"
            }
            Error::RequestTooLong => "Request Too Long",
            Error::UnsupportedMediaType => "Unsupported Media Type",
            Error::BadRequestBody => "Invalid request body",
            Error::BadRequestParameters => "Missing required request parameters",
            Error::TemplateFailure | Error::NoResponseMapping => "Internal server error",
            Error::IamRefused => "Forbidden",
            Error::TooManyRequests { .. } => "Too Many Requests",
            Error::LimitExceeded { .. } => "Limit Exceeded",
            Error::UpstreamConnect
            | Error::UpstreamReset
            | Error::UpstreamMalformed
            | Error::UpstreamTls => "Bad Gateway",
            Error::UpstreamTimeout | Error::UpstreamConnectTimeout => "Endpoint request timed out",
            Error::Unavailable => "Service Unavailable",
            // DESIGN's message, then why: clients matching the prefix still match
            Error::NoHealthyTarget => "Service Unavailable: no healthy upstream target",
            Error::CircuitOpen => "Service Unavailable: upstream at its connection limit",
            Error::QueueFull => "Service Unavailable: upstream queue full",
            Error::QueueTimeout => {
                "Service Unavailable: no upstream connection within the queue timeout"
            }
        }
    }

    /// The whole body when AWS's is not `{"message":"…"}`, with the
    /// `x-amzn-errortype` it comes with.
    pub fn aws_body(self) -> Option<(&'static [u8], &'static [u8])> {
        match self {
            Error::AccessDenied { explicit: true } => Some((
                b"{\"Message\":\"User is not authorized to access this resource with an explicit deny\"}",
                b"AccessDeniedException",
            )),
            Error::AccessDenied { explicit: false } => Some((
                b"{\"Message\":\"User is not authorized to access this resource\"}",
                b"AccessDeniedException",
            )),
            Error::AuthorizerFailure => Some((b"{\"message\":null}", b"AuthorizerConfigurationException")),
            Error::LambdaFailure
            | Error::LambdaRejected
            | Error::TemplateFailure
            | Error::NoResponseMapping => Some((
                b"{\"message\": \"Internal server error\"}",
                b"InternalServerErrorException",
            )),
            Error::RequestTooLong => Some((b"{\"message\": \"Request Too Long\"}", b"BadRequestException")),
            _ => None,
        }
    }

    /// The length of the body the gateway sends for this error.
    pub fn body_len(self) -> usize {
        self.aws_body()
            .map_or(self.message().len() + 14, |(b, _)| b.len())
    }

    pub fn side(self) -> Side {
        match self {
            Error::BadRequest | Error::HeadersTooLarge | Error::BodyTooLarge => Side::Downstream,
            Error::UpstreamConnect
            | Error::UpstreamReset
            | Error::UpstreamMalformed
            | Error::UpstreamTimeout
            | Error::UpstreamConnectTimeout
            | Error::UpstreamTls
            | Error::LambdaFailure => Side::Upstream,
            Error::NotFound
            | Error::MethodNotAllowed(_)
            | Error::Forbidden
            | Error::Unauthorized(_)
            | Error::Unauthenticated
            | Error::AccessDenied { .. }
            | Error::AuthorizerFailure
            | Error::IamRefused
            | Error::LambdaRejected
            | Error::RequestTooLong
            | Error::UnsupportedMediaType
            | Error::BadRequestBody
            | Error::BadRequestParameters
            | Error::TemplateFailure
            | Error::NoResponseMapping
            | Error::InsufficientScope
            | Error::TooManyRequests { .. }
            | Error::LimitExceeded { .. }
            | Error::Unavailable
            | Error::NoHealthyTarget
            | Error::CircuitOpen
            | Error::QueueFull
            | Error::QueueTimeout => Side::Gateway,
        }
    }

    /// Whether the client connection must close after this answer: the request's
    /// framing is in doubt, or part of its body is still unread.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            Error::BadRequest | Error::HeadersTooLarge | Error::BodyTooLarge
        )
    }

    /// Whether an idempotent, replayable request may be sent again to another
    /// target: nothing of it was processed (no connection, or reset before any
    /// response byte).
    pub fn retry_safe(self) -> bool {
        matches!(
            self,
            Error::UpstreamConnect
                | Error::UpstreamConnectTimeout
                | Error::UpstreamReset
                | Error::UpstreamTls
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_design() {
        assert_eq!(Error::UpstreamTimeout.status(), 504);
        assert_eq!(
            Error::UpstreamTimeout.message(),
            "Endpoint request timed out"
        );
        assert!(Error::BadRequest.closes_connection());
        assert!(!Error::NotFound.closes_connection());
        assert_eq!(Error::UpstreamReset.side(), Side::Upstream);
    }
}
