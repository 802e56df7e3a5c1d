//! The routing trie: host → path segments → method.
//!
//! Built once per plan, read by every worker without locks. Priority at each segment is
//! static > `{param}` > `{greedy+}`, with backtracking, so `GET /users/me` wins over
//! `GET /users/{id}` and a failed static branch still lets `{id}` match. A stage's
//! `$default` catches what nothing under its base path matches. Lookups allocate
//! nothing: parameters are byte ranges into the request path. Static children are
//! scanned linearly up to 8 and hashed beyond (`benches/router.rs`: flat from 10 to
//! 10,000 routes).

use super::route_key::{Method, MethodSpec, Segment};

pub type RouteId = u32;

/// Most path parameters one route may have (the greedy one included).
pub const MAX_PARAMS: usize = 16;

/// Parameter values of a match, as byte ranges into the looked-up path.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    len: u8,
    ranges: [(u32, u32); MAX_PARAMS],
}

impl Default for Params {
    fn default() -> Self {
        Params {
            len: 0,
            ranges: [(0, 0); MAX_PARAMS],
        }
    }
}

impl Params {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The i-th parameter's value within `path` (the one given to [`Router::lookup`]).
    pub fn get<'p>(&self, path: &'p str, i: usize) -> &'p str {
        if i >= self.len() {
            return "";
        }
        let (a, b) = self.ranges[i];
        path.get(a as usize..b as usize).unwrap_or("")
    }

    fn push(&mut self, a: usize, b: usize) -> bool {
        if self.len() >= MAX_PARAMS {
            return false;
        }
        self.ranges[self.len()] = (a as u32, b as u32);
        self.len += 1;
        true
    }

    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
}

#[derive(Debug)]
pub enum Lookup {
    Found(RouteId, Params),
    /// The path exists but not for this method; bit i set = `Method::ALL[i]` allowed.
    MethodNotAllowed(u16),
    NotFound,
}

#[derive(Debug, Default, Clone)]
struct Endpoint {
    by_method: [Option<RouteId>; Method::COUNT],
    any: Option<RouteId>,
}

impl Endpoint {
    fn get(&self, m: Option<Method>) -> Option<RouteId> {
        let exact = m.and_then(|m| {
            self.by_method[m as usize].or_else(|| {
                // A HEAD request is served by the GET route when there is no HEAD route.
                (m == Method::Head)
                    .then(|| self.by_method[Method::Get as usize])
                    .flatten()
            })
        });
        exact.or(self.any)
    }

    fn allow_bits(&self) -> u16 {
        if self.any.is_some() {
            return u16::MAX;
        }
        let mut bits = 0u16;
        for (i, r) in self.by_method.iter().enumerate() {
            if r.is_some() {
                bits |= 1 << i;
            }
        }
        if self.by_method[Method::Get as usize].is_some() {
            bits |= 1 << Method::Head as usize;
        }
        bits
    }

    fn insert(&mut self, m: MethodSpec, id: RouteId) -> Result<(), RouteId> {
        let slot = match m {
            MethodSpec::Any => &mut self.any,
            MethodSpec::One(m) => &mut self.by_method[m as usize],
        };
        match slot {
            Some(existing) => Err(*existing),
            None => {
                *slot = Some(id);
                Ok(())
            }
        }
    }
}

/// Past this many static children a node builds a hash index; below, a linear scan
/// (length first) is faster than hashing.
const LINEAR_MAX: usize = 8;

#[derive(Debug, Default, Clone)]
struct Node {
    /// Static children in insertion order: (segment, node id).
    statics: Vec<(Box<str>, u32)>,
    /// Open-addressing index over `statics` (entry = position + 1, 0 = empty), built
    /// once a node has more than `LINEAR_MAX` children; power-of-two sized.
    index: Vec<u32>,
    param: Option<u32>,
    greedy: Option<Endpoint>,
    end: Option<Endpoint>,
    default: Option<RouteId>,
}

fn hash_segment(seg: &str) -> usize {
    // FxHash-style: segments are short, the table is ours, no DoS concern (keys come
    // from the config, and a miss costs at most one probe run).
    let mut h: u64 = 0;
    for &b in seg.as_bytes() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    // The table masks low bits, which a multiply leaves poorly mixed: fold the high in.
    (h ^ (h >> 32)) as usize
}

impl Node {
    fn find_static(&self, seg: &str) -> Option<u32> {
        if self.index.is_empty() {
            return self
                .statics
                .iter()
                .find(|(s, _)| s.len() == seg.len() && s.as_bytes() == seg.as_bytes())
                .map(|(_, id)| *id);
        }
        let mask = self.index.len() - 1;
        let mut i = hash_segment(seg) & mask;
        loop {
            let e = self.index[i] as usize;
            if e == 0 {
                return None;
            }
            let (s, id) = &self.statics[e - 1];
            if **s == *seg {
                return Some(*id);
            }
            i = (i + 1) & mask;
        }
    }

    fn add_static(&mut self, seg: &str, id: u32) {
        self.statics.push((seg.into(), id));
        let n = self.statics.len();
        if n <= LINEAR_MAX {
            return;
        }
        if self.index.len() < n * 2 {
            // grow (or build) at load factor ½ and re-insert everything
            self.index = vec![0; (n * 4).next_power_of_two()];
            for pos in 0..n {
                self.index_insert(pos);
            }
        } else {
            self.index_insert(n - 1);
        }
    }

    fn index_insert(&mut self, pos: usize) {
        let mask = self.index.len() - 1;
        let mut i = hash_segment(&self.statics[pos].0) & mask;
        while self.index[i] != 0 {
            i = (i + 1) & mask;
        }
        self.index[i] = pos as u32 + 1;
    }
}

/// One host's routes (or the `*` host's).
#[derive(Debug, Clone)]
pub struct Trie {
    nodes: Vec<Node>,
}

impl Default for Trie {
    fn default() -> Self {
        Trie {
            nodes: vec![Node::default()],
        }
    }
}

/// Why a route could not be inserted: it would never be reached.
#[derive(Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Another route already answers exactly this method and path shape.
    SameAs(RouteId),
}

impl Trie {
    fn child_static(&mut self, node: usize, seg: &str) -> usize {
        if let Some(id) = self.nodes[node].find_static(seg) {
            return id as usize;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.nodes[node].add_static(seg, id as u32);
        id
    }

    fn child_param(&mut self, node: usize) -> usize {
        if let Some(p) = self.nodes[node].param {
            return p as usize;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.nodes[node].param = Some(id as u32);
        id
    }

    fn walk_statics(&mut self, base: &[&str]) -> usize {
        let mut node = 0;
        for seg in base {
            node = self.child_static(node, seg);
        }
        node
    }

    /// Inserts a route at `base` (the stage's base path segments) + `segments`.
    pub fn insert(
        &mut self,
        base: &[&str],
        method: MethodSpec,
        segments: &[Segment],
        id: RouteId,
    ) -> Result<(), Conflict> {
        let mut node = self.walk_statics(base);
        for seg in segments {
            match seg {
                Segment::Static(s) => node = self.child_static(node, s),
                Segment::Param(_) => node = self.child_param(node),
                Segment::Greedy(_) => {
                    return self.nodes[node]
                        .greedy
                        .get_or_insert_with(Endpoint::default)
                        .insert(method, id)
                        .map_err(Conflict::SameAs);
                }
            }
        }
        self.nodes[node]
            .end
            .get_or_insert_with(Endpoint::default)
            .insert(method, id)
            .map_err(Conflict::SameAs)
    }

    /// Sets the `$default` route of a stage mounted at `base`.
    pub fn insert_default(&mut self, base: &[&str], id: RouteId) -> Result<(), Conflict> {
        let node = self.walk_statics(base);
        match self.nodes[node].default {
            Some(existing) => Err(Conflict::SameAs(existing)),
            None => {
                self.nodes[node].default = Some(id);
                Ok(())
            }
        }
    }

    /// Finds the route for `path` (which starts with `/`, query already removed).
    pub fn lookup(&self, method: Option<Method>, path: &str) -> Lookup {
        let mut params = Params::default();
        let mut allow = 0u16;
        let start = usize::from(path.starts_with('/'));
        if let Some(id) = self.find(0, path, start, method, &mut params, &mut allow) {
            return Lookup::Found(id, params);
        }
        if let Some(id) = self.deepest_default(path, start) {
            return Lookup::Found(id, Params::default());
        }
        if allow != 0 {
            Lookup::MethodNotAllowed(allow)
        } else {
            Lookup::NotFound
        }
    }

    fn find(
        &self,
        node: usize,
        path: &str,
        pos: usize,
        method: Option<Method>,
        params: &mut Params,
        allow: &mut u16,
    ) -> Option<RouteId> {
        let n = &self.nodes[node];
        let rest = &path[pos..];
        // "/users/" is "/users": one trailing slash is not a segment of its own.
        if rest.is_empty() {
            let end = n.end.as_ref()?;
            let found = end.get(method);
            if found.is_none() {
                *allow |= end.allow_bits();
            }
            return found;
        }
        // Segments are short: a plain scan beats memchr's setup cost here.
        let seg_len = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
        let seg = &rest[..seg_len];
        let next = if seg_len < rest.len() {
            pos + seg_len + 1
        } else {
            path.len()
        };

        if let Some(child) = n.find_static(seg) {
            if let Some(id) = self.find(child as usize, path, next, method, params, allow) {
                return Some(id);
            }
        }
        if let Some(child) = n.param {
            if !seg.is_empty() && params.push(pos, pos + seg_len) {
                if let Some(id) = self.find(child as usize, path, next, method, params, allow) {
                    return Some(id);
                }
                params.pop();
            }
        }
        if let Some(g) = &n.greedy {
            match g.get(method) {
                Some(id) => {
                    let end = path.len() - usize::from(path.len() > pos && path.ends_with('/'));
                    if params.push(pos, end.max(pos)) {
                        return Some(id);
                    }
                }
                None => *allow |= g.allow_bits(),
            }
        }
        None
    }

    fn deepest_default(&self, path: &str, start: usize) -> Option<RouteId> {
        let mut node = 0usize;
        let mut best = self.nodes[0].default;
        for seg in path[start..].split('/') {
            match self.nodes[node].find_static(seg) {
                Some(child) => node = child as usize,
                None => break,
            }
            best = self.nodes[node].default.or(best);
        }
        best
    }
}

/// Routes of every host: exact host names, then the `*` host.
#[derive(Debug, Default, Clone)]
pub struct Router {
    /// Sorted by host name for binary search.
    hosts: Vec<(Box<str>, Trie)>,
    any: Option<Trie>,
}

impl Router {
    /// The trie for a host pattern (`*` or a lower-case name), created on first use.
    pub fn trie_mut(&mut self, host: &str) -> &mut Trie {
        if host == "*" {
            return self.any.get_or_insert_with(Trie::default);
        }
        let i = match self.hosts.binary_search_by(|(h, _)| (**h).cmp(host)) {
            Ok(i) => i,
            Err(i) => {
                self.hosts.insert(i, (host.into(), Trie::default()));
                i
            }
        };
        &mut self.hosts[i].1
    }

    /// `host` is the request's Host without port, lower-cased by the caller.
    pub fn lookup(&self, host: &str, method: Option<Method>, path: &str) -> Lookup {
        let trie = match self.hosts.binary_search_by(|(h, _)| (**h).cmp(host)) {
            Ok(i) => &self.hosts[i].1,
            Err(_) => match &self.any {
                Some(t) => t,
                None => return Lookup::NotFound,
            },
        };
        trie.lookup(method, path)
    }
}

#[cfg(test)]
mod tests;
