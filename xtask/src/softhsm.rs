//! A throw-away SoftHSM2 token for the PKCS#11 keyring's tests and benchmarks.
//!
//! [`SoftHsm::setup`] installs SoftHSM2 with apt-get when its module is missing (as root,
//! after `apt-get update`), writes a SoftHSM configuration in a new temporary directory,
//! initializes a token with a random user PIN, imports the keys the tests need (two AES keys
//! with known random bytes, and an RSA-2048 key pair from a PKCS#8 PEM generated here), and
//! lists the environment variables that point the tests at all of it. Dropping the guard
//! removes the directory. [`with_softhsm`] wraps that for `cargo xtask test` / `bench`;
//! [`cli`] is `cargo xtask softhsm`, for setting a token up by hand.
//!
//! Environment handed to the tests (see [`SoftHsm::env`]):
//!
//! | variable | value |
//! |---|---|
//! | `SOFTHSM2_CONF` | the temporary SoftHSM configuration |
//! | `ESDK_PKCS11_MODULE` | the module path |
//! | `ESDK_PKCS11_TOKEN` | the token label |
//! | `ESDK_PKCS11_PIN` | the user PIN |
//! | `ESDK_PKCS11_AES_LABEL`, `ESDK_PKCS11_AES_KEY_HEX` | AES-256 key: label, key bytes in hex |
//! | `ESDK_PKCS11_AES128_LABEL`, `ESDK_PKCS11_AES128_KEY_HEX` | AES-128 key: label, key bytes |
//! | `ESDK_PKCS11_RSA_LABEL`, `ESDK_PKCS11_RSA_KEY_PEM` | RSA-2048 key pair: label, PKCS#8 PEM path |

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where Debian's `softhsm2` package puts the module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The label of the token the set-up creates.
pub const TOKEN_LABEL: &str = "esdk-test";
/// Label of the imported AES-256 key.
pub const AES256_LABEL: &str = "esdk-aes-256";
/// Label of the imported AES-128 key.
pub const AES128_LABEL: &str = "esdk-aes-128";
/// Label of the imported RSA-2048 key pair (private and public objects share it).
pub const RSA_LABEL: &str = "esdk-rsa-2048";

/// Errors of the set-up, as text for the terminal.
pub type Result<T> = std::result::Result<T, String>;

/// A SoftHSM2 token in a temporary directory; the directory goes when the guard drops.
#[derive(Debug)]
pub struct SoftHsm {
    dir: PathBuf,
    keep: bool,
    env: Vec<(String, String)>,
}

impl SoftHsm {
    /// Install SoftHSM2 if needed, create a token in a new temporary directory and import the
    /// test keys.
    pub fn setup() -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("esdk-softhsm-{}-{}", std::process::id(), nanos()));
        Self::setup_in(dir, false)
    }

    /// As [`setup`](Self::setup), in `dir` (created; must not exist yet). With `keep`, the
    /// directory outlives the guard.
    pub fn setup_in(dir: PathBuf, keep: bool) -> Result<Self> {
        ensure_installed()?;
        if dir.exists() {
            return Err(format!(
                "{} already exists; pick a new directory",
                dir.display()
            ));
        }
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens)
            .map_err(|e| format!("creating {}: {e}", tokens.display()))?;
        // From here on the guard owns the directory, so a failure below cleans it up.
        let mut hsm = Self {
            dir,
            keep,
            env: Vec::new(),
        };
        let conf = hsm.dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .map_err(|e| format!("writing {}: {e}", conf.display()))?;
        let conf = conf.display().to_string();
        let pin = hex(&random_bytes(6)?);
        let so_pin = hex(&random_bytes(6)?);
        let util = |args: &[&str]| run_tool("softhsm2-util", args, &conf);
        util(&[
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            &pin,
            "--so-pin",
            &so_pin,
        ])?;

        let aes256 = importable_aes_key(32)?;
        let aes128 = importable_aes_key(16)?;
        for (label, id, key) in [
            (AES256_LABEL, "a256", &aes256),
            (AES128_LABEL, "a128", &aes128),
        ] {
            let file = hsm.dir.join(format!("{label}.bin"));
            std::fs::write(&file, key).map_err(|e| format!("writing {}: {e}", file.display()))?;
            let file = file.display().to_string();
            util(&[
                "--import",
                &file,
                "--aes",
                "--token",
                TOKEN_LABEL,
                "--label",
                label,
                "--id",
                id,
                "--pin",
                &pin,
            ])?;
        }

        let pem = hsm.dir.join(format!("{RSA_LABEL}.pem"));
        let pem_s = pem.display().to_string();
        run_tool(
            "openssl",
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &pem_s,
            ],
            &conf,
        )?;
        util(&[
            "--import",
            &pem_s,
            "--token",
            TOKEN_LABEL,
            "--label",
            RSA_LABEL,
            "--id",
            "52",
            "--pin",
            &pin,
        ])?;

        hsm.env = vec![
            ("SOFTHSM2_CONF".into(), conf),
            ("ESDK_PKCS11_MODULE".into(), SOFTHSM_MODULE.into()),
            ("ESDK_PKCS11_TOKEN".into(), TOKEN_LABEL.into()),
            ("ESDK_PKCS11_PIN".into(), pin),
            ("ESDK_PKCS11_AES_LABEL".into(), AES256_LABEL.into()),
            ("ESDK_PKCS11_AES_KEY_HEX".into(), hex(&aes256)),
            ("ESDK_PKCS11_AES128_LABEL".into(), AES128_LABEL.into()),
            ("ESDK_PKCS11_AES128_KEY_HEX".into(), hex(&aes128)),
            ("ESDK_PKCS11_RSA_LABEL".into(), RSA_LABEL.into()),
            ("ESDK_PKCS11_RSA_KEY_PEM".into(), pem_s),
        ];
        Ok(hsm)
    }

    /// The environment variables that point tests at this token.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Add [`env`](Self::env) to a command.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
    }

    /// The temporary directory holding the configuration, token and key files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SoftHsm {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Set up a token, run `f` with it, and remove the token directory afterwards (also when `f`
/// panics). For `cargo xtask test`: `with_softhsm(|hsm| { hsm.apply(&mut cargo_test); ... })`.
pub fn with_softhsm<T>(f: impl FnOnce(&SoftHsm) -> T) -> Result<T> {
    let hsm = SoftHsm::setup()?;
    Ok(f(&hsm))
}

/// `cargo xtask softhsm [--dir DIR] [-- COMMAND ARGS...]`.
///
/// With a command: set up a temporary token, run the command with the token's environment,
/// remove the token, and exit with the command's status. Without one: set the token up in
/// DIR (default: a new temporary directory), keep it, and print `export` lines for a shell.
pub fn cli(args: &[String]) -> ExitCode {
    // Options come first; the command starts at the first other argument or after `--`.
    // (`cargo xtask softhsm -- cargo test` reaches here as `cargo test`: clap takes the `--`.)
    let mut dir = None;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        match arg.as_str() {
            "--" => {
                i += 1;
                break;
            }
            "--dir" => {
                let Some(d) = args.get(i + 1) else {
                    eprintln!("xtask softhsm: --dir needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                };
                dir = Some(PathBuf::from(d));
                i += 2;
            }
            "-h" | "--help" => {
                println!("{}", USAGE);
                return ExitCode::SUCCESS;
            }
            other if other.starts_with('-') => {
                eprintln!("xtask softhsm: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => break,
        }
    }
    let command = args.get(i..).unwrap_or_default();
    if command.is_empty() {
        let setup = match dir {
            Some(d) => SoftHsm::setup_in(d, true),
            None => SoftHsm::setup().map(|mut h| {
                h.keep = true;
                h
            }),
        };
        return match setup {
            Ok(hsm) => {
                for (k, v) in hsm.env() {
                    println!("export {k}='{v}'");
                }
                eprintln!(
                    "# token kept; remove it with: rm -rf '{}'",
                    hsm.dir().display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask softhsm: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let run = |hsm: &SoftHsm| {
        let mut cmd = Command::new(&command[0]);
        cmd.args(&command[1..]);
        hsm.apply(&mut cmd);
        match cmd.status() {
            Ok(status) if status.success() => ExitCode::SUCCESS,
            Ok(status) => {
                eprintln!("xtask softhsm: {:?} exited with {status}", command[0]);
                ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1))
            }
            Err(e) => {
                eprintln!("xtask softhsm: cannot run {:?}: {e}", command[0]);
                ExitCode::FAILURE
            }
        }
    };
    let outcome = match dir {
        Some(d) => SoftHsm::setup_in(d, false).map(|hsm| run(&hsm)),
        None => with_softhsm(run),
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("xtask softhsm: {e}");
        ExitCode::FAILURE
    })
}

const USAGE: &str = "usage: cargo xtask softhsm [--dir DIR] [-- COMMAND ARGS...]
  with COMMAND: create a temporary SoftHSM2 token, run COMMAND with ESDK_PKCS11_* and
                SOFTHSM2_CONF set, then delete the token
  without:      create the token in DIR (default: a new temporary directory), keep it,
                and print the export lines";

/// Install `softhsm2` (and `openssl`, for the RSA key) with apt-get if missing.
fn ensure_installed() -> Result<()> {
    let mut missing = Vec::new();
    if !Path::new(SOFTHSM_MODULE).exists() || !on_path("softhsm2-util") {
        missing.push("softhsm2");
    }
    if !on_path("openssl") {
        missing.push("openssl");
    }
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask softhsm: installing {} with apt-get",
        missing.join(" ")
    );
    let status = |cmd: &mut Command, what: &str| -> Result<()> {
        let s = cmd.status().map_err(|e| format!("{what}: {e}"))?;
        if s.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({s}); SoftHSM2 is installed as root with apt-get"
            ))
        }
    };
    status(
        Command::new("apt-get").args(["update", "-q"]),
        "apt-get update",
    )?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )?;
    if !Path::new(SOFTHSM_MODULE).exists() {
        return Err(format!(
            "softhsm2 installed but {SOFTHSM_MODULE} is still missing"
        ));
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .unwrap_or_else(|| OsString::from("/usr/bin:/bin"))
        .to_string_lossy()
        .split(':')
        .any(|dir| Path::new(dir).join(tool).is_file())
}

/// Run a set-up tool with `SOFTHSM2_CONF`; its output is shown only when it fails.
fn run_tool(tool: &str, args: &[&str], conf: &str) -> Result<()> {
    let out = Command::new(tool)
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    // The PINs are random per set-up and never reused, but keep them out of the message anyway.
    let shown: Vec<&str> = args
        .iter()
        .scan(false, |hide, a| {
            let shown = if *hide { "***" } else { a };
            *hide = matches!(*a, "--pin" | "--so-pin");
            Some(shown)
        })
        .collect();
    Err(format!(
        "{tool} {} failed ({}):\n{}{}",
        shown.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(buf)
}

/// Random AES key bytes that `softhsm2-util --import --aes` reads whole: SoftHSM2 2.6 reads
/// the key file with `fgets` and measures it with `strlen`, so a 0x0A byte ends the key early
/// and a 0x00 byte truncates it (the token then holds a shorter key). Redraw until neither
/// occurs (about 4 in 5 draws of 32 bytes qualify).
fn importable_aes_key(len: usize) -> Result<Vec<u8>> {
    for _ in 0..64 {
        let key = random_bytes(len)?;
        if !key.iter().any(|b| matches!(b, 0x00 | 0x0A)) {
            return Ok(key);
        }
    }
    Err("could not draw an AES key free of 0x00 and 0x0A bytes".into())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
