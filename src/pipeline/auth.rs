//! The auth stage: `api_key_required` routes need an `x-api-key` whose usage plan
//! covers the route's stage (AWS: missing, unknown or not in a plan → 403).

use crate::error::Error;
use crate::limit::KeyId;
use crate::plan::{Plan, Route};
use crate::proto::h1::RequestHead;

/// The caller's key when the route needs one (usage-plan throttles apply then only).
pub fn identify(plan: &Plan, route: &Route, head: &RequestHead) -> Result<Option<KeyId>, Error> {
    if !route.api_key_required {
        return Ok(None);
    }
    let presented = head.header(b"x-api-key").ok_or(Error::Forbidden)?;
    let id = plan.keys.find(presented).ok_or(Error::Forbidden)?;
    let key = &plan.key_info[id as usize];
    if plan.usage_plans[key.plan as usize]
        .stages
        .contains(&route.stage)
    {
        Ok(Some(id))
    } else {
        Err(Error::Forbidden)
    }
}
