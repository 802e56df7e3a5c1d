//! Choosing a target of an upstream: smooth weighted round-robin (nginx's algorithm),
//! per worker, reset when the plan changes.

use std::cell::RefCell;
use std::net::SocketAddr;

use crate::plan::{Plan, Upstream};

#[derive(Debug, Default)]
pub struct Balancer {
    /// Plan hash the state below belongs to.
    plan: u64,
    current: Vec<Vec<i64>>,
}

impl Balancer {
    fn reset(&mut self, plan: &Plan) {
        self.plan = plan.hash;
        self.current = plan
            .upstreams
            .iter()
            .map(|u| vec![0; u.targets.len()])
            .collect();
    }
}

#[derive(Debug, Default)]
pub struct Balancers(RefCell<Balancer>);

impl Balancers {
    pub fn pick(&self, plan: &Plan, upstream: u32) -> Option<SocketAddr> {
        let mut b = self.0.borrow_mut();
        if b.plan != plan.hash || b.current.len() != plan.upstreams.len() {
            b.reset(plan);
        }
        let u = plan.upstreams.get(upstream as usize)?;
        let cur = b.current.get_mut(upstream as usize)?;
        pick_smooth(u, cur)
    }
}

fn pick_smooth(u: &Upstream, current: &mut [i64]) -> Option<SocketAddr> {
    if u.targets.len() == 1 {
        return Some(u.targets[0].addr);
    }
    let total: i64 = u.targets.iter().map(|t| i64::from(t.weight)).sum();
    let mut best = None;
    for (i, t) in u.targets.iter().enumerate() {
        current[i] += i64::from(t.weight);
        if best.is_none_or(|b: usize| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let b = best?;
    current[b] -= total;
    Some(u.targets[b].addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::WeightedAddr;
    use std::time::Duration;

    #[test]
    fn smooth_weighted_split() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let u = Upstream {
            name: "u".into(),
            targets: vec![
                WeightedAddr { addr: a, weight: 1 },
                WeightedAddr { addr: b, weight: 3 },
            ],
            connect_timeout: Duration::from_secs(1),
            retries: 1,
        };
        let mut cur = vec![0; 2];
        let picks: Vec<SocketAddr> = (0..8).map(|_| pick_smooth(&u, &mut cur).unwrap()).collect();
        assert_eq!(picks.iter().filter(|p| **p == a).count(), 2);
        // smooth: never three of the heavy one... then the light one in a burst of 4
        assert_ne!(picks[0..4].iter().filter(|p| **p == a).count(), 0);
    }
}
