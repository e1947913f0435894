//! Build tooling for the iomanager workspace, run as `cargo xtask <command>`.
//!
//! * `cargo xtask test` is the CI gate (`.ci/run` runs exactly this): formatting, clippy, the
//!   dependency rule of `iomanager-core`, the test suite (doctests included) and the docs, in
//!   that order, stopping at the first failing step.
//! * `cargo xtask bench` runs the criterion benchmarks of the workspace.
//!
//! Only the standard library is used, so building this tool costs next to nothing.

use std::env;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Usage text printed by `cargo xtask help` and after a usage error.
const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--skip-lint] [-- <cargo test args>...]
      Run the CI gate from the workspace root, stopping at the first failing step:
        fmt     cargo fmt --all -- --check
        clippy  cargo clippy --workspace --all-targets --all-features -- -D warnings
        deps    cargo tree -p iomanager-core -e normal --prefix none
                (fails if iomanager-core depends on a cloud SDK, arrow, parquet or sqlx)
        test    cargo test --workspace --all-features [<cargo test args>...]
        doc     RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --all-features
      --skip-lint  skip fmt, clippy and doc (quick local runs)
      Arguments after `--` are appended to the `cargo test` command line, e.g.
        cargo xtask test --skip-lint -- roundtrip
        cargo xtask test -- --exclude iomanager -- --nocapture

  bench [<cargo bench args>...]
      Run `cargo bench --workspace [<cargo bench args>...]` (criterion benchmarks) and
      print where criterion writes its reports.

  help
      Print this text.

When the CI environment variable is set, cargo runs with CARGO_TERM_COLOR=never.
";

/// Crate-name prefixes that must never appear among the normal dependencies of
/// `iomanager-core`: the core stays free of cloud SDKs, columnar formats and SQL drivers,
/// which belong in the backend crates.
const FORBIDDEN_CORE_DEPENDENCY_PREFIXES: &[&str] = &[
    "aws-", "aws_", "google-", "gcloud", "azure", "arrow", "parquet", "sqlx",
];

/// The crate whose dependency tree the `deps` step checks.
const CORE_CRATE: &str = "iomanager-core";

/// Entry point: dispatches on the first argument.
fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let Some(command) = args.next() else {
        return usage_error("no command given");
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str() {
        Some("test") => match TestArgs::parse(rest) {
            Ok(TestArgs { help: true, .. }) => print_usage(),
            Ok(test_args) => run_test(&test_args),
            Err(message) => usage_error(&message),
        },
        Some("bench") => run_bench(&rest),
        Some("help" | "-h" | "--help") => print_usage(),
        _ => usage_error(&format!("unknown command `{}`", command.to_string_lossy())),
    }
}

/// Prints the usage text to stdout and reports success.
fn print_usage() -> ExitCode {
    print!("{USAGE}");
    ExitCode::SUCCESS
}

/// Prints `message` and the usage text to stderr and reports a usage error (exit code 2).
fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n");
    eprint!("{USAGE}");
    ExitCode::from(2)
}

/// Options of `cargo xtask test`.
#[derive(Debug, Default, PartialEq, Eq)]
struct TestArgs {
    /// `--help` / `-h` was given: print the usage text instead of running anything.
    help: bool,
    /// `--skip-lint`: skip the fmt, clippy and doc steps.
    skip_lint: bool,
    /// Everything after `--`, appended verbatim to the `cargo test` command line.
    cargo_test_args: Vec<OsString>,
}

impl TestArgs {
    /// Parses the arguments that follow `test`.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.to_str() {
                Some("--skip-lint") => parsed.skip_lint = true,
                Some("-h" | "--help") => parsed.help = true,
                Some("--") => {
                    parsed.cargo_test_args.extend(args);
                    break;
                }
                _ => {
                    return Err(format!(
                        "unknown option `{}` for `test` (arguments for `cargo test` go after `--`)",
                        arg.to_string_lossy()
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// A `cargo <args>` command run from `root` with inherited stdio.
///
/// Uses the cargo that invoked us (`$CARGO`) when known, so the toolchain stays the same, and
/// sets `CARGO_TERM_COLOR=never` when the `CI` environment variable is set.
fn cargo(root: &Path, args: &[&str]) -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(program);
    command.args(args).current_dir(root);
    if env::var_os("CI").is_some() {
        command.env("CARGO_TERM_COLOR", "never");
    }
    command
}

/// Renders `command` as a shell-like line for headers and error messages, e.g.
/// `RUSTDOCFLAGS="-D warnings" cargo doc --workspace`.
fn render(command: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            parts.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    let program = Path::new(command.get_program());
    let program = program.file_stem().unwrap_or(program.as_os_str());
    parts.push(quote(program));
    parts.extend(command.get_args().map(quote));
    parts.join(" ")
}

/// Quotes `word` for display when it is empty or contains whitespace or quotes.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        format!("{word:?}")
    } else {
        word.into_owned()
    }
}

/// Runs `command` to completion with inherited stdio; fails unless it exits successfully.
fn run_status(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|error| format!("could not run `{}`: {error}", render(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", render(command)))
    }
}

/// What a step of `cargo xtask test` does once its header is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Run the command; the step passes when it exits successfully.
    Run,
    /// Run `cargo tree` capturing its output and check the dependency rule of `iomanager-core`.
    DependencyRule,
    /// Start the [`Services`], run the command with their environment, then stop them.
    RunWithServices,
}

/// One step of `cargo xtask test`.
#[derive(Debug)]
struct Step {
    /// Short name, used in the header, error messages and the summary.
    name: &'static str,
    /// The cargo command the step runs.
    command: Command,
    /// How the command is run and judged.
    action: Action,
    /// Why the step is skipped, if it is.
    skip_reason: Option<&'static str>,
}

impl Step {
    /// Runs the step (its header already printed); `Err` carries the reason it failed.
    fn execute(&mut self) -> Result<(), String> {
        match self.action {
            Action::Run => run_status(&mut self.command),
            Action::DependencyRule => check_dependency_rule(&mut self.command),
            Action::RunWithServices => {
                // Dropped at the end of this block, whatever `cargo test` did: that stops the
                // services (also when starting one of them failed half-way).
                let services = Services::start()
                    .map_err(|error| format!("could not start the test services: {error}"))?;
                self.command.envs(services.env_vars());
                run_status(&mut self.command)
            }
        }
    }
}

/// The steps of `cargo xtask test`, in the order they run.
fn test_steps(root: &Path, args: &TestArgs) -> Vec<Step> {
    let lint_skip = args.skip_lint.then_some("--skip-lint");

    let fmt = cargo(root, &["fmt", "--all", "--", "--check"]);
    let clippy = cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
    );
    let deps = cargo(
        root,
        &["tree", "-p", CORE_CRATE, "-e", "normal", "--prefix", "none"],
    );
    let mut test = cargo(root, &["test", "--workspace", "--all-features"]);
    test.args(&args.cargo_test_args);
    let mut doc = cargo(root, &["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");

    let step = |name, command, action, skip_reason| Step {
        name,
        command,
        action,
        skip_reason,
    };
    vec![
        step("fmt", fmt, Action::Run, lint_skip),
        step("clippy", clippy, Action::Run, lint_skip),
        step("deps", deps, Action::DependencyRule, None),
        step("test", test, Action::RunWithServices, None),
        step("doc", doc, Action::Run, lint_skip),
    ]
}

/// How a step ended, for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The step ran and passed.
    Passed,
    /// The step ran and failed.
    Failed,
    /// The step was skipped on request (`--skip-lint`).
    Skipped,
    /// The step did not run because an earlier step failed.
    NotRun,
}

/// The outcome and duration of one step, for the summary line.
#[derive(Debug)]
struct StepReport {
    /// The step's name.
    name: &'static str,
    /// How it ended.
    outcome: Outcome,
    /// How long it ran (zero when it did not run).
    duration: Duration,
}

/// Formats the one-line summary printed at the end of `cargo xtask test`.
fn summary_line(reports: &[StepReport], total: Duration) -> String {
    let steps: Vec<String> = reports
        .iter()
        .map(|report| match report.outcome {
            Outcome::Passed => format!("{} ok {:.1}s", report.name, report.duration.as_secs_f64()),
            Outcome::Failed => format!(
                "{} FAILED {:.1}s",
                report.name,
                report.duration.as_secs_f64()
            ),
            Outcome::Skipped => format!("{} skipped", report.name),
            Outcome::NotRun => format!("{} not run", report.name),
        })
        .collect();
    format!(
        "==> summary: {}; total {:.1}s",
        steps.join(", "),
        total.as_secs_f64()
    )
}

/// `cargo xtask test`: runs the steps in order, stopping at the first failure.
fn run_test(args: &TestArgs) -> ExitCode {
    let root = workspace_root();
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut failed_step = None;

    for mut step in test_steps(&root, args) {
        if failed_step.is_some() {
            reports.push(StepReport {
                name: step.name,
                outcome: Outcome::NotRun,
                duration: Duration::ZERO,
            });
            continue;
        }
        if let Some(reason) = step.skip_reason {
            println!("==> {} (skipped: {reason})", step.name);
            reports.push(StepReport {
                name: step.name,
                outcome: Outcome::Skipped,
                duration: Duration::ZERO,
            });
            continue;
        }

        println!("==> {}: {}", step.name, render(&step.command));
        let step_started = Instant::now();
        let result = step.execute();
        let duration = step_started.elapsed();
        let outcome = match result {
            Ok(()) => Outcome::Passed,
            Err(reason) => {
                eprintln!("error: step `{}` failed: {reason}", step.name);
                failed_step = Some(step.name);
                Outcome::Failed
            }
        };
        reports.push(StepReport {
            name: step.name,
            outcome,
            duration,
        });
    }

    println!("{}", summary_line(&reports, started.elapsed()));
    match failed_step {
        None => ExitCode::SUCCESS,
        Some(name) => {
            eprintln!("error: `cargo xtask test` failed at step `{name}`");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cargo tree` (stdout captured, stderr inherited) and fails if `iomanager-core`
/// has a forbidden normal dependency, printing the offending lines.
fn check_dependency_rule(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("could not run `{}`: {error}", render(command)))?;
    if !output.status.success() {
        return Err(format!("`{}` failed ({})", render(command), output.status));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let checked = dependency_lines(&tree).len();
    let offending = forbidden_dependencies(&tree);
    if offending.is_empty() {
        println!(
            "{CORE_CRATE}: checked {checked} crate(s) of its normal dependency tree, none forbidden"
        );
        return Ok(());
    }
    eprintln!(
        "{CORE_CRATE} must not depend on crates named {} (directly or transitively); found:",
        FORBIDDEN_CORE_DEPENDENCY_PREFIXES
            .iter()
            .map(|prefix| format!("{prefix}*"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for line in &offending {
        eprintln!("    {line}");
    }
    Err(format!(
        "{} forbidden crate(s) in the dependency tree of {CORE_CRATE}",
        offending.len()
    ))
}

/// The distinct non-empty lines of `cargo tree --prefix none` output, without the `(*)`
/// marker cargo appends to crates already shown.
fn dependency_lines(tree: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    for line in tree.lines() {
        let line = line.trim().trim_end_matches("(*)").trim_end();
        if !line.is_empty() && !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// The lines of `cargo tree --prefix none` output that name a forbidden crate.
fn forbidden_dependencies(tree: &str) -> Vec<&str> {
    dependency_lines(tree)
        .into_iter()
        .filter(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(is_forbidden_crate)
        })
        .collect()
}

/// Whether `name` starts with one of [`FORBIDDEN_CORE_DEPENDENCY_PREFIXES`].
fn is_forbidden_crate(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    FORBIDDEN_CORE_DEPENDENCY_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// External services the tests talk to, running for the duration of the `test` step.
///
/// Empty for now: no test needs a service yet. This is the place where later issues start
/// them, in [`Services::start`]:
///
/// * moto (S3 API),
/// * fake-gcs-server (Google Cloud Storage API),
/// * Azurite (Azure Blob Storage API),
/// * PostgreSQL,
///
/// each bound to `127.0.0.1` on a free port (bind a `std::net::TcpListener` to
/// `127.0.0.1:0`, read its port, drop it, start the service on that port and wait until it
/// accepts connections). A started service pushes its process onto `processes` and its
/// endpoint onto `env` (names like `IOMANAGER_TEST_S3_ENDPOINT`, to be fixed by those
/// issues); `cargo test` then runs with those variables set, so tests find the endpoints
/// there. Dropping the value stops every process, so the services are shut down when the
/// `test` step ends, whether it passed or not, and when starting a later service fails.
#[derive(Debug, Default)]
struct Services {
    /// Running service processes with a display name; killed and reaped on drop.
    processes: Vec<(&'static str, Child)>,
    /// Environment variables passed to `cargo test` (endpoints, credentials for emulators).
    env: Vec<(String, String)>,
}

impl Services {
    /// Starts every service the tests need and returns once they are all ready.
    ///
    /// None yet; later issues add one `start_*` call per service here (see [`Services`]).
    fn start() -> io::Result<Self> {
        let services = Self::default();
        for (key, value) in &services.env {
            println!("    {key}={value}");
        }
        Ok(services)
    }

    /// The environment variables to pass to `cargo test`.
    fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
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

/// Where criterion writes its reports, following criterion's own rules: `$CRITERION_HOME`,
/// else `$CARGO_TARGET_DIR/criterion`, else `target/criterion` under the workspace root.
fn criterion_dir(root: &Path) -> PathBuf {
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target_dir =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir));
    target_dir.join("criterion")
}

/// `cargo xtask bench`: runs `cargo bench --workspace` with the given arguments.
fn run_bench(args: &[OsString]) -> ExitCode {
    let root = workspace_root();
    let mut command = cargo(&root, &["bench", "--workspace"]);
    command.args(args);
    println!("==> bench: {}", render(&command));
    let result = run_status(&mut command);

    let reports = criterion_dir(&root);
    println!("criterion reports: {}", reports.display());
    let index = reports.join("report").join("index.html");
    if index.is_file() {
        println!("HTML report: {}", index.display());
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("error: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Unit tests of the argument parsing, the dependency rule and the summary line.
#[cfg(test)]
mod tests {
    use super::*;

    /// Converts string literals to the `OsString`s `TestArgs::parse` takes.
    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// `--skip-lint` is recognised and everything after `--` is forwarded verbatim.
    #[test]
    fn parses_test_args() {
        let parsed = TestArgs::parse(os(&["--skip-lint", "--", "filter", "--", "--nocapture"]));
        assert_eq!(
            parsed,
            Ok(TestArgs {
                help: false,
                skip_lint: true,
                cargo_test_args: os(&["filter", "--", "--nocapture"]),
            })
        );
        assert_eq!(TestArgs::parse(os(&[])), Ok(TestArgs::default()));
        assert!(TestArgs::parse(os(&["--", "--help"])).is_ok_and(|args| !args.help));
        assert!(TestArgs::parse(os(&["--help"])).is_ok_and(|args| args.help));
    }

    /// Options before `--` other than the known ones are rejected.
    #[test]
    fn rejects_unknown_test_options() {
        assert!(TestArgs::parse(os(&["--nocapture"])).is_err());
    }

    /// The forbidden prefixes match crate names only, not versions or paths.
    #[test]
    fn finds_forbidden_dependencies() {
        let tree = "\
iomanager-core v0.1.0 (/work/main/crates/iomanager-core)
serde v1.0.219
aws-sdk-s3 v1.0.0
arrow-array v55.0.0
arrow-array v55.0.0 (*)
azure_storage_blobs v0.21.0
sqlx-core v0.8.0
parquet v55.0.0
gcloud-storage v1.0.0
google-cloud-storage v0.24.0
aws_lambda_events v0.16.0
arrayvec v0.7.6
tokio v1.46.0 (/home/aws-builds/tokio)
";
        assert_eq!(
            forbidden_dependencies(tree),
            vec![
                "aws-sdk-s3 v1.0.0",
                "arrow-array v55.0.0",
                "azure_storage_blobs v0.21.0",
                "sqlx-core v0.8.0",
                "parquet v55.0.0",
                "gcloud-storage v1.0.0",
                "google-cloud-storage v0.24.0",
                "aws_lambda_events v0.16.0",
            ]
        );
        assert!(forbidden_dependencies("iomanager-core v0.1.0\nserde v1.0.0 (*)\n").is_empty());
        assert_eq!(
            dependency_lines("a v1\na v1 (*)\n\nb v2\n"),
            vec!["a v1", "b v2"]
        );
    }

    /// The summary lists every step with its outcome and, when it ran, its duration.
    #[test]
    fn formats_summary_line() {
        let report = |name, outcome, millis| StepReport {
            name,
            outcome,
            duration: Duration::from_millis(millis),
        };
        let reports = [
            report("fmt", Outcome::Skipped, 0),
            report("deps", Outcome::Passed, 260),
            report("test", Outcome::Failed, 12_340),
            report("doc", Outcome::NotRun, 0),
        ];
        assert_eq!(
            summary_line(&reports, Duration::from_millis(12_600)),
            "==> summary: fmt skipped, deps ok 0.3s, test FAILED 12.3s, doc not run; total 12.6s"
        );
    }

    /// Commands render like a shell line, quoting values with spaces.
    #[test]
    fn renders_commands() {
        let mut command = Command::new("/usr/bin/cargo");
        command
            .args(["doc", "--workspace"])
            .env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(
            render(&command),
            "RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace"
        );
    }

    /// The workspace root is the directory holding the workspace manifest.
    #[test]
    fn finds_workspace_root() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
