//! A real browser for the tests: Debian's Chromium, headless. `/usr/bin/chromium`
//! when the machine has it; otherwise the harness fetches Debian's `chromium`
//! package and whatever of its dependencies the machine lacks with `apt-get
//! --download-only` into `target/chromium/` (its own package lists and cache, no
//! root, no system change) and unpacks them there with `dpkg-deb -x`. One install,
//! shared by every test and run, under a file lock. A failed install fails the test
//! with apt's output; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser binary and the library directories it needs.
pub struct Chromium {
    bin: PathBuf,
    libs: Vec<PathBuf>,
}

impl Chromium {
    pub fn get() -> Chromium {
        if Path::new("/usr/bin/chromium").exists() {
            return Chromium {
                bin: "/usr/lib/chromium/chromium".into(),
                libs: Vec::new(),
            };
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/chromium");
        let tree = root.join("root");
        let done = root.join(".installed");
        let found = || Chromium {
            bin: tree.join("usr/lib/chromium/chromium"),
            libs: [
                "usr/lib/x86_64-linux-gnu",
                "lib/x86_64-linux-gnu",
                "usr/lib/chromium",
            ]
            .iter()
            .map(|d| tree.join(d))
            .collect(),
        };
        if done.exists() {
            return found();
        }
        std::fs::create_dir_all(root.join("lists/partial")).expect("target/chromium");
        std::fs::create_dir_all(root.join("cache/archives/partial")).expect("target/chromium");
        let lock = std::fs::File::create(root.join("lock")).expect("lock file");
        // SAFETY: flock on a file descriptor this function owns for its whole run.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock target/chromium");
        if done.exists() {
            return found();
        }
        let apt = |args: &[&str]| {
            let out = Command::new("apt-get")
                .args([
                    "-q",
                    "-y",
                    "-o",
                    "Debug::NoLocking=1",
                    "-o",
                    "APT::Sandbox::User=root",
                ])
                .arg("-o")
                .arg(format!(
                    "Dir::State::Lists={}",
                    root.join("lists").display()
                ))
                .arg("-o")
                .arg(format!("Dir::Cache={}", root.join("cache").display()))
                .args(args)
                .output()
                .expect("apt-get (Debian's package tool) is needed to fetch chromium");
            assert!(
                out.status.success(),
                "apt-get {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        apt(&["update"]);
        apt(&[
            "install",
            "--download-only",
            "--no-install-recommends",
            "chromium",
        ]);
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&tree).expect("target/chromium/root");
        for deb in std::fs::read_dir(root.join("cache/archives")).expect("archives") {
            let deb = deb.expect("archive entry").path();
            if deb.extension().is_some_and(|e| e == "deb") {
                let ok = Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(&deb)
                    .arg(&tree)
                    .status()
                    .expect("dpkg-deb");
                assert!(ok.success(), "dpkg-deb -x {}", deb.display());
                // unpacked: the archive is only disk now
                let _ = std::fs::remove_file(&deb);
            }
        }
        std::fs::write(&done, b"").expect("mark chromium installed");
        found()
    }

    /// Loads `url` headless, lets its scripts run (up to `budget` of virtual time,
    /// e.g. for fetches), and returns the DOM as serialized then.
    pub fn dump_dom(&self, url: &str, budget: Duration) -> String {
        let profile = super::TempDir::new("chromium");
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if !self.libs.is_empty() {
            let paths: Vec<String> = self.libs.iter().map(|p| p.display().to_string()).collect();
            cmd.env("LD_LIBRARY_PATH", paths.join(":"));
        }
        let mut child = cmd.spawn().expect("start chromium");
        // read as it comes: a full pipe would stall the browser
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
            out
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if child.try_wait().expect("chromium").is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish loading {url} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        reader.join().expect("chromium's output")
    }
}
