//! The external services the tests talk to, started for the `test` step of `cargo xtask test`
//! and stopped when it ends.
//!
//! Each service is installed when missing (from PyPI into `target/services-venv`, or from
//! npm), bound to `127.0.0.1` on a free port, and waited for until it answers. Its endpoint is
//! passed to `cargo test` in an environment variable (`IOMANAGER_TEST_*`); tests that need a
//! service fail — never skip — when the variable is missing. A service that does not start
//! fails the step, with the tail of its log.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto release the S3 tests run against (5.2.1's CompleteMultipartUpload answer breaks
/// aws-sdk-s3).
const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";
/// The moto version `MOTO_REQUIREMENT` installs.
pub const MOTO_VERSION: &str = "5.2.5";
/// The variable that passes moto's endpoint to the S3 tests.
const S3_ENDPOINT_VAR: &str = "IOMANAGER_TEST_S3_ENDPOINT";
/// How long a service may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Running services; dropping the value stops them (in reverse start order).
#[derive(Debug, Default)]
pub struct Services {
    /// Running service processes with a display name; killed and reaped on drop.
    processes: Vec<(&'static str, Child)>,
    /// Environment variables passed to `cargo test`.
    env: Vec<(String, String)>,
}

impl Services {
    /// Installs what is missing, starts every service and returns once all answer.
    pub fn start(root: &Path) -> Result<Self, String> {
        let (mut services, logs) = Self::prepare(root)?;
        services.start_moto(root, &logs)?;
        services.print_env();
        Ok(services)
    }

    /// Installs moto when missing and starts only moto, exactly as [`Services::start`] does
    /// (for `cargo xtask bench --compare-dagster-s3`); its endpoint is
    /// [`Services::s3_endpoint`].
    pub fn start_moto_only(root: &Path) -> Result<Self, String> {
        let (mut services, logs) = Self::prepare(root)?;
        services.start_moto(root, &logs)?;
        services.print_env();
        Ok(services)
    }

    /// moto's endpoint (`http://127.0.0.1:<port>`), when it was started.
    pub fn s3_endpoint(&self) -> Option<&str> {
        self.env_vars()
            .find(|(key, _)| *key == S3_ENDPOINT_VAR)
            .map(|(_, value)| value)
    }

    /// No service yet, the environment every service shares, and the log directory.
    fn prepare(root: &Path) -> Result<(Self, PathBuf), String> {
        let logs = root.join("target").join("services");
        fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let mut services = Self::default();
        // The SDKs under test never probe a cloud metadata address.
        services
            .env
            .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
        Ok((services, logs))
    }

    /// Prints the environment passed on.
    fn print_env(&self) {
        for (key, value) in &self.env {
            println!("    {key}={value}");
        }
    }

    /// The environment variables to pass to `cargo test`.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// moto's S3 server: `IOMANAGER_TEST_S3_ENDPOINT`.
    fn start_moto(&mut self, root: &Path, logs: &Path) -> Result<(), String> {
        let venv = services_venv(root)?;
        let python = venv.join("bin").join("python");
        let installed = Command::new(&python)
            .args(["-c", "import moto; print(moto.__version__)"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if installed.as_deref() != Some(MOTO_VERSION) {
            println!("    installing {MOTO_REQUIREMENT} into {}", venv.display());
            pip_install(&venv, &[MOTO_REQUIREMENT])?;
        }
        let port = free_port()?;
        let log = logs.join("moto.log");
        let child = Command::new(venv.join("bin").join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file(&log)?)
            .stderr(log_file(&log)?)
            .spawn()
            .map_err(|e| format!("cannot start moto_server: {e}"))?;
        self.processes.push(("moto", child));
        self.wait_http("moto", port, &log)?;
        self.env
            .push((S3_ENDPOINT_VAR.into(), format!("http://127.0.0.1:{port}")));
        println!(
            "    moto {MOTO_VERSION} on 127.0.0.1:{port} (log: {})",
            log.display()
        );
        Ok(())
    }

    /// Waits until the service named `name` answers an HTTP request on `port`, failing early
    /// when its process exits.
    fn wait_http(&mut self, name: &str, port: u16, log: &Path) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Some((_, child)) = self.processes.iter_mut().find(|(n, _)| *n == name)
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "{name} exited ({status}) before answering:\n{}",
                    tail(log)
                ));
            }
            if http_answers(port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "{name} did not answer on 127.0.0.1:{port} within {START_TIMEOUT:?}:\n{}",
            tail(log)
        ))
    }
}

impl Drop for Services {
    /// Stops the services in reverse start order.
    fn drop(&mut self) {
        for (name, child) in self.processes.iter_mut().rev() {
            if let Err(error) = child.kill() {
                eprintln!("warning: could not stop {name}: {error}");
            }
            // Reap the process so it does not linger as a zombie.
            let _ = child.wait();
        }
    }
}

/// The virtualenv the Python services are installed into, created when missing.
fn services_venv(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target").join("services-venv");
    if !venv.join("bin").join("python").exists() {
        println!("    creating {}", venv.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| format!("cannot run python3 -m venv: {e}"))?;
        if !status.success() {
            return Err(format!(
                "python3 -m venv {} failed ({status})",
                venv.display()
            ));
        }
    }
    Ok(venv)
}

/// `pip install` into `venv`.
fn pip_install(venv: &Path, requirements: &[&str]) -> Result<(), String> {
    let status = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(requirements)
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "pip install {} failed ({status})",
            requirements.join(" ")
        ))
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn log_file(path: &Path) -> Result<fs::File, String> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// True when something on `127.0.0.1:port` answers an HTTP request with a status line.
fn http_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    lines[start..].join("\n")
}
