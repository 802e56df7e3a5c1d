//! Python packages a test needs (PyJWT, cryptography, …), installed by the test
//! harness itself with `pip install --target` under `target/pydeps/` (no venv module
//! and no system site-packages needed: only Python 3 with pip, as on a fresh
//! machine). One install per package set, shared by every test and run, guarded by
//! a file lock so parallel tests do not install twice. A failed install fails the
//! test with pip's output; nothing is skipped.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The directory holding `packages` (installed on first use), for `PYTHONPATH`.
pub fn deps(packages: &[&str]) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pydeps");
    std::fs::create_dir_all(&root).expect("create target/pydeps");
    let name: String = packages
        .iter()
        .map(|p| p.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        .collect::<Vec<_>>()
        .join("+");
    let dir = root.join(&name);
    let done = dir.join(".installed");
    if done.exists() {
        return dir;
    }
    let lock = std::fs::File::create(root.join(format!("{name}.lock"))).expect("lock file");
    // SAFETY: flock on a file descriptor this function owns for its whole run.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock target/pydeps");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&dir)
            .args(packages)
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .output()
            .expect("python3 -m pip (Python 3 with pip is required)");
        assert!(
            out.status.success(),
            "pip install {packages:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, b"").expect("mark pydeps installed");
    }
    dir
}

/// Runs `python3 -c script args…` with `packages` importable; panics with its
/// stderr when it fails.
pub fn run(packages: &[&str], script: &str, args: &[&str]) -> Output {
    let dir = deps(packages);
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .env("PYTHONPATH", &dir)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A Python server for a test: `python3 -u ARGS…` with `packages` importable,
/// which prints the port it listens on as its first line. Killed when dropped
/// (its stdin is a pipe, so servers that stop at end of input stop too).
pub struct Server {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl Server {
    pub fn start(packages: &[&str], args: &[&str]) -> Server {
        use std::io::BufRead;
        let mut cmd = Command::new("python3");
        cmd.arg("-u").args(args);
        if !packages.is_empty() {
            cmd.env("PYTHONPATH", deps(packages));
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server's first line");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("python server {args:?} said {line:?}"));
        Server {
            child,
            addr: ([127, 0, 0, 1], port).into(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python script (`python3 -u -c SCRIPT`, `packages` importable) talked to a line
/// at a time: its first line is read at start (`first`), `ask` writes a line and
/// reads the answer. Killed when dropped.
pub struct Script {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: std::io::BufReader<std::process::ChildStdout>,
    pub first: String,
}

impl Script {
    pub fn start(packages: &[&str], script: &str) -> Script {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .args(["-u", "-c", script])
            .env("PYTHONPATH", deps(packages))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take().expect("stdin");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("the script's first line");
        Script {
            child,
            stdin,
            out,
            first,
        }
    }

    /// A field of the first line (a JSON object).
    pub fn field(&self, key: &str) -> String {
        super::json_field(&self.first, key)
            .unwrap_or_else(|| panic!("the script said {:?}", self.first))
    }

    pub fn ask(&mut self, line: &str) -> String {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{line}").expect("the script's stdin");
        let mut answer = String::new();
        self.out
            .read_line(&mut answer)
            .expect("the script's answer");
        answer
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
