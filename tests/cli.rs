//! `turnpike check` and `turnpike routes` on real files.

mod common;

use std::process::Command;

use common::*;

fn turnpike(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_every_shipped_config() {
    for f in [
        "configs/quickstart.toml",
        "configs/examples/proxy.toml",
        "configs/examples/include.toml",
        "configs/examples/throttle.toml",
        "configs/examples/failover.toml",
        "configs/examples/cache.toml",
        "configs/examples/grpc.toml",
        "configs/examples/jwt.toml",
        "configs/examples/lambda.toml",
        "configs/examples/templates.toml",
    ] {
        let (code, out, err) = turnpike(&["check", "-c", f]);
        assert_eq!(code, 0, "{f}: {err}");
        assert!(out.contains(": ok ("), "{out}");
    }
}

#[test]
fn check_reports_all_errors_with_positions_and_exits_1() {
    let (code, _, err) = turnpike(&["check", "-c", "configs/invalid/many-errors.toml"]);
    assert_eq!(code, 1);
    for needle in [
        "many-errors.toml:3:12: error: `localhost` is not an ip:port address",
        "many-errors.toml:4:11: error: `30 seconds`",
        "many-errors.toml:9:1: error: unknown field `retires`",
        "many-errors.toml:12:15: error: `{user}`",
        "many-errors.toml:17:19: error: `FETCH` is not a method",
        "many-errors.toml:22:13: error: base_path `v1`",
        "6 errors",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn check_rejects_unreachable_routes() {
    let (code, _, err) = turnpike(&["check", "-c", "configs/invalid/conflict.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("conflict.toml:4:19") && err.contains("can never be reached"),
        "{err}"
    );
}

#[test]
fn check_reports_syntax_errors_and_missing_files() {
    let (code, _, err) = turnpike(&["check", "-c", "configs/invalid/syntax.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("syntax.toml:1:"), "{err}");
    let (code, _, err) = turnpike(&["check", "-c", "does/not/exist.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read does/not/exist.toml"), "{err}");
}

#[test]
fn routes_prints_the_compiled_table() {
    let (code, out, _) = turnpike(&["routes", "-c", "configs/examples/proxy.toml"]);
    assert_eq!(code, 0);
    assert!(out.contains("prod\tapi.example.com,*\tGET /v1/users/{id}\thttp_proxy http://users/v1/users/{#0}\t5s"), "{out}");
    assert!(out.contains("GET /v1/ping\tmock 200"), "{out}");
}

#[test]
fn unknown_commands_and_arguments_are_usage_errors() {
    assert_eq!(turnpike(&["frobnicate"]).0, 2);
    assert_eq!(turnpike(&["check", "-x"]).0, 2);
}

#[test]
fn include_errors_name_the_included_file() {
    let dir = TempDir::new("inc");
    std::fs::create_dir_all(dir.0.join("apis")).unwrap();
    dir.write(
        "apis/a.toml",
        "[apis.a.routes.\"GET /x\"]\nintegration = { type = \"mock\" }\nbogus = 1\n",
    );
    let main = dir.write(
        "main.toml",
        "include = [\"apis/*.toml\"]\n[stages.s]\napi = \"a\"\n",
    );
    let (code, _, err) = turnpike(&["check", "-c", main.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("apis/a.toml:3:1: error: unknown field `bogus`"),
        "{err}"
    );
}

#[test]
fn check_reports_throttle_plan_and_key_mistakes_together() {
    let (code, _, err) = turnpike(&["check", "-c", "configs/invalid/throttle.toml"]);
    assert_eq!(code, 1);
    for needle in [
        "throttle.toml:5:9: error: stage `s`: throttle rate -1",
        "throttle.toml:8:12: error: stage `s` has no route `GET /nope`",
        "throttle.toml:10:14: error: usage plan `p`: quota period `fortnight`",
        "throttle.toml:11:11: error: usage plan `p` names stage `missing`",
        "throttle.toml:15:7: error: api key `short` must be 30 to 128",
        "throttle.toml:20:8: error: api key `orphan` names usage plan `nope`",
        "6 errors",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn check_reports_cache_mistakes_together() {
    let (code, _, err) = turnpike(&["check", "-c", "configs/invalid/cache.toml"]);
    assert_eq!(code, 1);
    for needle in [
        "cache.toml:4:18: error: cache key `cookie.session`: expected `query.NAME` or `header.NAME`",
        "cache.toml:4:43: error: cache ttl must be at most 3600s",
        "cache.toml:4:60: error: `P0ST` is not a method",
        "cache.toml:8:22: error: cache statuses must be a non-empty list",
        "cache.toml:12:22: error: cache capacity must be at least 4KiB",
        "cache.toml:12:45: error: cache invalidation `everyone`",
        "cache.toml:12:72: error: cache unauthorized `shrug`",
        "8 errors",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let (code, out, _) = turnpike(&["check", "-c", "configs/examples/cache.toml"]);
    assert_eq!(code, 0, "{out}");
}
