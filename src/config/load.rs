//! Reading configuration files: TOML syntax → spanned tree → one serde pass per entry.
//!
//! Each `[upstreams.X]`, `[apis.A.routes."K"]`, `[stages.S]`, … is deserialized on its
//! own from the spanned tree, so every broken entry is reported, each with its exact
//! position. `include` globs are expanded relative to the including file.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::errors::{Errors, Pos, SourceFile, Sources};
use super::model;

/// A named entry of a map (`[upstreams.users]`) with where its name was written.
#[derive(Debug)]
pub struct Entry<T> {
    pub name: String,
    pub at: Pos,
    pub value: T,
}

impl<T> Entry<T> {
    /// The position of a span inside this entry's file.
    pub fn pos(&self, span: Range<usize>) -> Pos {
        Pos {
            file: self.at.file,
            span,
        }
    }
}

/// The whole configuration, merged across includes, not yet validated.
///
/// Entries that failed to deserialize are left out and their errors kept in
/// `errors`; compiling goes on with the rest so every error is reported at once.
#[derive(Debug, Default)]
pub struct Config {
    pub sources: Sources,
    pub errors: Errors,
    /// Names of entries that failed to load, so later checks don't report them again.
    pub broken: Vec<String>,
    pub gateway: Option<Entry<model::Gateway>>,
    pub access_log: Option<Entry<model::AccessLog>>,
    pub upstreams: Vec<Entry<model::Upstream>>,
    /// Routes with the name of the API they belong to.
    pub routes: Vec<(String, Entry<model::Route>)>,
    pub apis: Vec<Entry<()>>,
    /// Authorizers with the name of the API they belong to.
    pub authorizers: Vec<(String, Entry<model::Authorizer>)>,
    /// `default_auth` of APIs that set it.
    pub default_auth: Vec<(String, Entry<String>)>,
    /// `[apis.A.cors]` of APIs that have one.
    pub cors: Vec<(String, Entry<model::Cors>)>,
    /// `api_key_source` of APIs that set it (`"header"` or `"authorizer"`).
    pub api_key_source: Vec<(String, Entry<String>)>,
    pub aws: Option<Entry<model::Aws>>,
    pub iam: Option<Entry<model::Iam>>,
    /// `binary_media_types` of APIs that set them.
    pub binary_media_types: Vec<(String, Entry<Vec<String>>)>,
    /// `[apis.A.models.NAME]`, with the API's name.
    pub models: Vec<(String, Entry<model::Model>)>,
    /// `[apis.A.gateway_responses.TYPE]`, with the API's name.
    pub gateway_responses: Vec<(String, Entry<model::GatewayResponse>)>,
    pub stages: Vec<Entry<model::Stage>>,
    pub usage_plans: Vec<Entry<model::UsagePlan>>,
    pub api_keys: Vec<Entry<model::ApiKey>>,
}

/// Reads `path` and everything it includes. Errors are collected, not returned early.
pub fn load_file(path: &Path) -> Result<Config, Errors> {
    let mut cfg = Config::default();
    let mut errors = Errors::default();
    match std::fs::read_to_string(path) {
        Ok(text) => read_into(&mut cfg, &mut errors, path.to_path_buf(), text, 0),
        Err(e) => {
            errors.push_plain(format!("cannot read {}: {e}", path.display()));
            errors.fatal = true;
        }
    }
    finish(cfg, errors)
}

/// Reads a configuration from text (the built-in quickstart, tests, fuzzing).
/// `name` is what error messages call the file; includes resolve against the cwd.
pub fn load_str(name: &str, text: &str) -> Result<Config, Errors> {
    let mut cfg = Config::default();
    let mut errors = Errors::default();
    read_into(
        &mut cfg,
        &mut errors,
        PathBuf::from(name),
        text.to_string(),
        0,
    );
    finish(cfg, errors)
}

/// Syntax errors and unreadable files end loading (`Err`); entry errors travel
/// inside the `Config` to be reported with the compile errors.
fn finish(mut cfg: Config, errors: Errors) -> Result<Config, Errors> {
    cfg.errors = errors;
    if cfg.errors.fatal {
        let mut e = std::mem::take(&mut cfg.errors);
        e.sources = cfg.sources;
        return Err(e);
    }
    Ok(cfg)
}

const MAX_INCLUDE_DEPTH: usize = 8;

fn read_into(cfg: &mut Config, errors: &mut Errors, path: PathBuf, text: String, depth: usize) {
    let file = cfg.sources.files.len();
    cfg.sources.files.push(SourceFile {
        path: path.clone(),
        text,
    });
    // The tree borrows the text; take a copy so `cfg` stays mutable while we walk it.
    let text = cfg.sources.files[file].text.clone();
    let (root, syntax) = DeTable::parse_recoverable(&text);
    let had_syntax_errors = !syntax.is_empty();
    for e in syntax {
        errors.push_toml(file, &e);
    }
    if had_syntax_errors {
        errors.fatal = true;
        // A tree recovered from broken syntax would produce confusing follow-on errors.
        return;
    }
    let mut includes = Vec::new();
    for (key, value) in root.get_ref().iter() {
        let at = Pos {
            file,
            span: key.span(),
        };
        match &**key.get_ref() {
            "include" => match de::<Vec<Spanned<String>>>(value) {
                Ok(list) => includes = list,
                Err(e) => errors.push_toml(file, &e),
            },
            "gateway" => single(&mut cfg.gateway, errors, "gateway", at, value),
            "access_log" => single(&mut cfg.access_log, errors, "access_log", at, value),
            "aws" => single(&mut cfg.aws, errors, "aws", at, value),
            "iam" => single(&mut cfg.iam, errors, "iam", at, value),
            "upstreams" => entries(&mut cfg.upstreams, &mut cfg.broken, errors, file, value),
            "stages" => entries(&mut cfg.stages, &mut cfg.broken, errors, file, value),
            "usage_plans" => entries(&mut cfg.usage_plans, &mut cfg.broken, errors, file, value),
            "api_keys" => entries(&mut cfg.api_keys, &mut cfg.broken, errors, file, value),
            "apis" => apis(cfg, errors, file, value),
            other => errors.push(
                at,
                format!("unknown key `{other}`"),
                Some("top-level tables are include, gateway, access_log, aws, iam, upstreams, apis, stages, usage_plans, api_keys"),
            ),
        }
    }
    for inc in includes {
        if depth >= MAX_INCLUDE_DEPTH {
            errors.push(
                Pos {
                    file,
                    span: inc.span(),
                },
                "includes nested too deeply".into(),
                None,
            );
            continue;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        match expand_glob(base, inc.get_ref()) {
            Ok(paths) if paths.is_empty() => errors.push(
                Pos {
                    file,
                    span: inc.span(),
                },
                format!("include `{}` matches no file", inc.get_ref()),
                None,
            ),
            Ok(paths) => {
                for p in paths {
                    match std::fs::read_to_string(&p) {
                        Ok(t) => read_into(cfg, errors, p, t, depth + 1),
                        Err(e) => errors.push(
                            Pos {
                                file,
                                span: inc.span(),
                            },
                            format!("cannot read included {}: {e}", p.display()),
                            None,
                        ),
                    }
                }
            }
            Err(msg) => errors.push(
                Pos {
                    file,
                    span: inc.span(),
                },
                msg,
                None,
            ),
        }
    }
}

fn de<T: DeserializeOwned>(value: &Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value.clone()))
}

fn single<T: DeserializeOwned>(
    slot: &mut Option<Entry<T>>,
    errors: &mut Errors,
    name: &str,
    at: Pos,
    value: &Spanned<DeValue<'_>>,
) {
    if slot.is_some() {
        errors.push(
            at,
            format!("[{name}] is defined in more than one file"),
            None,
        );
        return;
    }
    match de::<T>(value) {
        Ok(v) => {
            *slot = Some(Entry {
                name: name.to_string(),
                at,
                value: v,
            })
        }
        Err(e) => errors.push_toml(at.file, &e),
    }
}

fn table<'a, 'i>(
    errors: &mut Errors,
    file: usize,
    value: &'a Spanned<DeValue<'i>>,
) -> Option<&'a DeTable<'i>> {
    let t = value.get_ref().as_table();
    if t.is_none() {
        errors.push(
            Pos {
                file,
                span: value.span(),
            },
            format!("expected a table, found {}", value.get_ref().type_str()),
            None,
        );
    }
    t
}

fn entries<T: DeserializeOwned>(
    out: &mut Vec<Entry<T>>,
    broken: &mut Vec<String>,
    errors: &mut Errors,
    file: usize,
    value: &Spanned<DeValue<'_>>,
) {
    let Some(t) = table(errors, file, value) else {
        return;
    };
    // TOML rejects a repeated key within one file; this catches the same name in two
    // included files. A set, not a scan: configs with 100,000 API keys exist.
    let mut seen: HashSet<String> = out.iter().map(|e| e.name.clone()).collect();
    for (key, v) in t.iter() {
        let at = Pos {
            file,
            span: key.span(),
        };
        let name = key.get_ref().to_string();
        if !seen.insert(name.clone()) {
            errors.push(at, format!("`{name}` is defined more than once"), None);
            continue;
        }
        match de::<T>(v) {
            Ok(value) => out.push(Entry { name, at, value }),
            Err(e) => {
                errors.push_toml(file, &e);
                broken.push(name);
            }
        }
    }
}

fn apis(cfg: &mut Config, errors: &mut Errors, file: usize, value: &Spanned<DeValue<'_>>) {
    let Some(t) = table(errors, file, value) else {
        return;
    };
    for (api_key, api_value) in t.iter() {
        let api = api_key.get_ref().to_string();
        let at = Pos {
            file,
            span: api_key.span(),
        };
        if !cfg.apis.iter().any(|e| e.name == api) {
            cfg.apis.push(Entry {
                name: api.clone(),
                at: at.clone(),
                value: (),
            });
        }
        let Some(api_table) = table(errors, file, api_value) else {
            continue;
        };
        for (k, v) in api_table.iter() {
            let kpos = Pos {
                file,
                span: k.span(),
            };
            match &**k.get_ref() {
                "routes" => {}
                "authorizers" => {
                    let mut found = Vec::new();
                    entries::<model::Authorizer>(&mut found, &mut cfg.broken, errors, file, v);
                    for a in found {
                        if cfg
                            .authorizers
                            .iter()
                            .any(|(x, e)| *x == api && e.name == a.name)
                        {
                            errors.push(
                                a.at,
                                format!("authorizer `{}` is defined more than once", a.name),
                                None,
                            );
                        } else {
                            cfg.authorizers.push((api.clone(), a));
                        }
                    }
                    continue;
                }
                "models" => {
                    let mut found = Vec::new();
                    entries::<model::Model>(&mut found, &mut cfg.broken, errors, file, v);
                    cfg.models
                        .extend(found.into_iter().map(|m| (api.clone(), m)));
                    continue;
                }
                "gateway_responses" => {
                    let mut found = Vec::new();
                    entries::<model::GatewayResponse>(&mut found, &mut cfg.broken, errors, file, v);
                    cfg.gateway_responses
                        .extend(found.into_iter().map(|m| (api.clone(), m)));
                    continue;
                }
                "cors" => {
                    match de::<model::Cors>(v) {
                        Ok(c) => cfg.cors.push((
                            api.clone(),
                            Entry {
                                name: api.clone(),
                                at: kpos.clone(),
                                value: c,
                            },
                        )),
                        Err(e) => errors.push_toml(file, &e),
                    }
                    continue;
                }
                "binary_media_types" => {
                    match de::<Vec<String>>(v) {
                        Ok(types) => cfg.binary_media_types.push((
                            api.clone(),
                            Entry {
                                name: api.clone(),
                                at: kpos.clone(),
                                value: types,
                            },
                        )),
                        Err(e) => errors.push_toml(file, &e),
                    }
                    continue;
                }
                "default_auth" | "api_key_source" => {
                    let list = if &**k.get_ref() == "default_auth" {
                        &mut cfg.default_auth
                    } else {
                        &mut cfg.api_key_source
                    };
                    match de::<String>(v) {
                        Ok(name) => list.push((
                            api.clone(),
                            Entry {
                                name: api.clone(),
                                at: Pos {
                                    file,
                                    span: v.span(),
                                },
                                value: name,
                            },
                        )),
                        Err(e) => errors.push_toml(file, &e),
                    }
                    continue;
                }
                other => {
                    errors.push(
                        kpos,
                        format!("unknown key `{other}` in api `{api}`"),
                        Some("an API holds `routes`, `authorizers`, `models`, `gateway_responses`, `default_auth`, `api_key_source`, `binary_media_types` and `cors`"),
                    );
                    continue;
                }
            }
            let mut routes = Vec::new();
            entries::<model::Route>(&mut routes, &mut cfg.broken, errors, file, v);
            let seen: HashSet<&str> = cfg
                .routes
                .iter()
                .filter(|(a, _)| *a == api)
                .map(|(_, e)| e.name.as_str())
                .collect();
            let dup: Vec<bool> = routes
                .iter()
                .map(|r| seen.contains(r.name.as_str()))
                .collect();
            for (r, dup) in routes.into_iter().zip(dup) {
                if dup {
                    errors.push(
                        r.at,
                        format!("route `{}` is defined more than once", r.name),
                        None,
                    );
                } else {
                    cfg.routes.push((api.clone(), r));
                }
            }
        }
    }
}

/// Expands `dir/*.toml`-style patterns: `*` and `?` in the last component only.
fn expand_glob(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = base.join(pattern);
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("include `{pattern}` has no file name"))?;
    if !name.contains(['*', '?']) {
        return Ok(vec![full.clone()]);
    }
    let dir = full.parent().unwrap_or(Path::new("."));
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(format!(
            "include `{pattern}`: wildcards are allowed in the file name only"
        ));
    }
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("include `{pattern}`: {}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| wildcard_match(name.as_bytes(), n.as_bytes()))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

fn wildcard_match(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard_match(&pat[1..], s) || (!s.is_empty() && wildcard_match(pat, &s[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard_match(&pat[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard_match(&pat[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.toml", b"a.toml"));
        assert!(!wildcard_match(b"*.toml", b"a.tom"));
        assert!(wildcard_match(b"a?c", b"abc"));
        assert!(!wildcard_match(b"a?c", b"ac"));
    }

    #[test]
    fn every_broken_entry_is_reported_with_its_position() {
        let text = r#"
[upstreams.a]
targets = ["127.0.0.1:1"]
bogus = 1

[upstreams.b]
targets = 5

[apis.shop.routes."GET /x"]
integration = { type = "mock", body = "x" }
tmeout = "5s"
"#;
        let mut cfg = load_str("t.toml", text).unwrap();
        let mut errs = std::mem::take(&mut cfg.errors);
        errs.sources = cfg.sources;
        let rendered = errs.to_string();
        assert_eq!(errs.len(), 3, "{rendered}");
        assert!(rendered.contains("t.toml:4:1"), "{rendered}");
        assert!(rendered.contains("t.toml:7:11"), "{rendered}");
        assert!(rendered.contains("t.toml:11:1"), "{rendered}");
        assert!(rendered.contains("tmeout"), "{rendered}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let errs = load_str("s.toml", "[gateway]\nlisten = [\"a\"\n").unwrap_err();
        assert!(errs.to_string().contains("s.toml:2:"), "{errs}");
    }
}
