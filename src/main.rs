//! The `turnpike` command line; everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use turnpike::control::{self, ConfigSource};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  turnpike run    [-c turnpike.toml]   serve; with no -c and no ./turnpike.toml, the built-in quickstart
  turnpike check  [-c turnpike.toml]   validate and compile; print every error; exit 1 if any
  turnpike routes [-c turnpike.toml]   print the compiled routing table";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("run", &[][..]),
    };
    let source = match config_arg(rest) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("{msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cmd {
        "run" => ExitCode::from(control::run(source) as u8),
        "check" | "routes" => match control::reload::load(&source) {
            Ok(plan) => {
                for w in &plan.warnings {
                    eprintln!("warning: {w}");
                }
                if cmd == "routes" {
                    print!("{}", plan.table());
                } else {
                    println!(
                        "{}: ok ({} routes, {} stages, {} upstreams)",
                        source.describe(),
                        plan.routes.len(),
                        plan.stages.len(),
                        plan.upstreams.len()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown command `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn config_arg(rest: &[String]) -> Result<ConfigSource, String> {
    match rest {
        [] => {
            let default = PathBuf::from("turnpike.toml");
            Ok(if default.exists() {
                ConfigSource::File(default)
            } else {
                ConfigSource::Builtin
            })
        }
        [flag, path] if flag == "-c" || flag == "--config" => {
            Ok(ConfigSource::File(PathBuf::from(path)))
        }
        _ => Err(format!("unexpected arguments: {}", rest.join(" "))),
    }
}
