//! The AWS KMS emulator for tests: moto, in a virtual environment under `target/moto-venv`,
//! patched (`xtask/moto_patch.py`), started on a free loopback port, stopped on drop.
//!
//! * `cargo xtask moto` starts it in the foreground and prints the variables to export.
//! * `cargo xtask moto CMD ARGS...` runs `CMD` with those variables set, then stops it
//!   (e.g. `cargo xtask moto cargo test -p keyring-kms`).
//! * Other tasks call [`with_moto`] (or hold a [`MotoEnv`]) and pass [`MotoEnv::apply`] to
//!   the commands that need KMS.
//!
//! Only loopback addresses are used. Needs `python3` with the `venv` module and access to
//! PyPI on first use (about 80 s); later runs reuse the environment.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The pinned moto version (the patch checks it).
pub const MOTO_VERSION: &str = "5.2.5";
/// The region exported for tests.
pub const REGION: &str = "us-west-2";
/// How long the server may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Our patch for moto's KMS defects, run with the environment's python after each install.
const PATCH: &str = include_str!("../moto_patch.py");

/// A running moto server; dropping it stops the server.
pub struct MotoEnv {
    port: u16,
    endpoint: String,
    child: Child,
    log: PathBuf,
}

impl MotoEnv {
    /// Install (if needed), patch, start and wait for readiness.
    pub fn start(workspace: &Path) -> Result<Self, String> {
        let venv = ensure_installed(workspace)?;
        let port = free_port()?;
        let log = venv.join(format!("moto-server-{port}.log"));
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start moto_server: {e}"))?;
        let mut env = Self {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        env.wait_ready()?;
        Ok(env)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "moto_server exited during start-up ({status}); log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log)
                ));
            }
            if http_status(self.port, "GET", "/moto-api/data.json") == Some(200) {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "moto_server did not answer within {READY_TIMEOUT:?}; log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The endpoint URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The variables a test process needs: endpoint, dummy credentials, region, and no
    /// instance-metadata probing.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Set [`env_vars`](Self::env_vars) on `cmd`.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.envs(self.env_vars())
    }
}

impl Drop for MotoEnv {
    fn drop(&mut self) {
        // Kill only the server this guard started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start moto, run `f`, stop moto (also if `f` panics).
pub fn with_moto<T>(workspace: &Path, f: impl FnOnce(&MotoEnv) -> T) -> Result<T, String> {
    let env = MotoEnv::start(workspace)?;
    Ok(f(&env))
}

/// Create or reuse `target/moto-venv`, install the pinned moto, apply the patch; returns the
/// environment's directory.
pub fn ensure_installed(workspace: &Path) -> Result<PathBuf, String> {
    let venv = workspace.join("target/moto-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("xtask moto: creating {}", venv.display());
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    let installed = Command::new(&python)
        .args([
            "-c",
            &format!("import sys, moto; sys.exit(moto.__version__ != {MOTO_VERSION:?})"),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("xtask moto: installing moto[server]=={MOTO_VERSION} (about a minute)");
        run(
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("moto[server]=={MOTO_VERSION}"),
            ]),
            "pip install moto",
        )?;
    }
    let mut patch = Command::new(&python)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    patch
        .stdin
        .take()
        .ok_or("no stdin for the patch script")?
        .write_all(PATCH.as_bytes())
        .map_err(|e| format!("cannot send the patch script: {e}"))?;
    check(patch.wait(), "moto_patch.py")?;
    Ok(venv)
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    check(cmd.status(), what)
}

fn check(status: std::io::Result<ExitStatus>, what: &str) -> Result<(), String> {
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{what} failed ({s})")),
        Err(e) => Err(format!("cannot run {what}: {e}")),
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// The status code of a bodiless request to the local server, or `None` if it did not answer.
fn http_status(port: u16, method: &str, path: &str) -> Option<u16> {
    let addr = (Ipv4Addr::LOCALHOST, port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `cargo xtask moto [CMD ARGS...]`; returns the process exit code.
pub fn cli(workspace: &Path, args: &[String]) -> i32 {
    let result = if args.is_empty() {
        MotoEnv::start(workspace).map(|mut env| {
            println!(
                "moto {MOTO_VERSION} (patched) is listening at {}; in another shell:",
                env.endpoint()
            );
            for (k, v) in env.env_vars() {
                println!("export {k}={v}");
            }
            println!("Ctrl-C stops it.");
            match env.child.wait() {
                Ok(s) => s.code().unwrap_or(1),
                Err(_) => 1,
            }
        })
    } else {
        with_moto(workspace, |env| {
            let status = env.apply(Command::new(&args[0]).args(&args[1..])).status();
            match status {
                Ok(s) => s.code().unwrap_or(1),
                Err(e) => {
                    eprintln!("xtask moto: cannot run {}: {e}", args[0]);
                    127
                }
            }
        })
    };
    result.unwrap_or_else(|e| {
        eprintln!("xtask moto: {e}");
        1
    })
}
