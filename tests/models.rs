//! The official JSON-Schema-Test-Suite's draft-4 cases through turnpike's models
//! path (`transform::models::Model`, what `[apis.A.models.NAME]` compiles to). The
//! suite is fetched by the harness itself from PyPI, where the `jsonschema`
//! package's source distribution carries it (`json/tests/draft4/`, MIT-licensed
//! with the suite), into `target/jsonschema-suite/`.
//!
//! `refRemote.json` names schemas on `http://localhost:1234`: turnpike never
//! fetches a schema, so each of those must be refused when it is compiled (a
//! `check` error), never silently accepted.

use std::path::PathBuf;
use std::process::Command;

use turnpike::transform::models::Model;

const SUITE: &str = "jsonschema==4.23.0";

/// The draft-4 directory of the suite, fetched on first use.
fn suite() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/jsonschema-suite");
    let draft4 = root.join("draft4");
    if draft4.join(".complete").exists() {
        return draft4;
    }
    std::fs::create_dir_all(&root).expect("target/jsonschema-suite");
    let lock = std::fs::File::create(root.join(".lock")).expect("lock");
    // SAFETY: flock on a descriptor this function owns for its whole run.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    if draft4.join(".complete").exists() {
        return draft4;
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
        ])
        .arg(&root)
        .arg(SUITE)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .output()
        .expect("python3 -m pip (Python 3 with pip is required)");
    assert!(
        out.status.success(),
        "pip download {SUITE} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let extract = r#"
import glob, os, sys, tarfile
root, out = sys.argv[1], sys.argv[2]
[sdist] = glob.glob(os.path.join(root, "jsonschema-*.tar.gz"))
os.makedirs(out, exist_ok=True)
n = 0
with tarfile.open(sdist) as t:
    for m in t.getmembers():
        parts = m.name.split("/")
        if m.isfile() and parts[1:4] == ["json", "tests", "draft4"] and len(parts) == 5:
            open(os.path.join(out, parts[4]), "wb").write(t.extractfile(m).read())
            n += 1
        if m.isfile() and parts[1:] == ["json", "LICENSE"]:
            open(os.path.join(out, "LICENSE"), "wb").write(t.extractfile(m).read())
assert n > 20, n
open(os.path.join(out, ".complete"), "w").write(str(n))
"#;
    let out = Command::new("python3")
        .args(["-c", extract])
        .arg(&root)
        .arg(&draft4)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    draft4
}

#[test]
fn the_draft4_test_suite_passes_through_the_models_path() {
    let dir = suite();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    let (mut cases, mut refused) = (0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let groups: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        for g in groups.as_array().unwrap() {
            let schema = g["schema"].to_string();
            let desc = g["description"].as_str().unwrap_or("");
            let model = Model::compile(desc, &schema);
            if name == "refRemote.json" {
                assert!(
                    model.is_err(),
                    "{name}: {desc}: a remote reference was accepted"
                );
                refused += 1;
                continue;
            }
            let model = match model {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{name}: {desc}: {e}"));
                    continue;
                }
            };
            for t in g["tests"].as_array().unwrap() {
                cases += 1;
                let valid = t["valid"].as_bool().unwrap();
                let got = model.check_value(&t["data"]);
                if got.is_ok() != valid {
                    failures.push(format!(
                        "{name}: {desc}: {}: expected valid={valid}, got {got:?}",
                        t["description"]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases > 400, "only {cases} cases ran");
    assert!(refused > 0);
    eprintln!("{cases} draft-4 cases passed; {refused} remote-reference schemas refused");
}
