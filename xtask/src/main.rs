//! Build tooling for the iomanager workspace, run as `cargo xtask <command>`.
//!
//! * `cargo xtask test` is the CI gate (`.ci/run` runs exactly this): formatting, clippy, the
//!   dependency rule of `iomanager-core`, the test suite (doctests included) and the docs, in
//!   that order, stopping at the first failing step.
//! * `cargo xtask bench` runs the criterion benchmarks of the workspace;
//!   `cargo xtask bench --compare-dagster` runs the side-by-side benchmark against Dagster
//!   (the `fs_vs_dagster` bench of `iomanager-fs`, `benches/dagster/bench_dagster.py` in a
//!   virtualenv, a `dd` run for the disk's own rate) and writes
//!   `target/iomanager-bench/report.md`; `cargo xtask bench --compare-dagster-s3` does the
//!   same for S3 against one moto server (`bench_s3`), writing `report_s3.md`.
//!
//! Only the standard library is used, so building this tool costs next to nothing.

mod bench_s3;
mod services;

use services::Services;
use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

  bench --compare-dagster [--quick] [--report-only] [<cargo bench args>...]
      Side-by-side benchmark against Dagster's own I/O managers, writing
      target/iomanager-bench/report.md:
        venv     make target/dagster-venv (python3 -m venv) and pip install
                 benches/dagster/requirements.txt into it, unless `import dagster` works there
        build    cargo bench --no-run -p iomanager-fs --bench fs_vs_dagster
        rust     cargo bench -p iomanager-fs --bench fs_vs_dagster [<cargo bench args>...]
                 (writes target/iomanager-bench/rust.json; IOMANAGER_BENCH_DIR names that
                 directory, IOMANAGER_BENCH_QUICK=1 with --quick)
        dagster  benches/dagster/bench_dagster.py --out target/iomanager-bench/dagster.json
        disk     dd 100 MiB from /dev/zero, without and with conv=fdatasync (disk.json)
        report   combine rust.json, dagster.json and disk.json into report.md
      A failing step does not stop the later ones; the report says what is missing.
      Before each bench a full run calls `sync` and waits IOMANAGER_BENCH_SETTLE_SECS
      (default 300): on ext4, files created soon after many were deleted are much slower.
      --quick        smaller counts and a single repetition on both sides (smoke run)
      --report-only  only rewrite report.md from the result files already there

  bench --compare-dagster-s3 [--quick] [--report-only] [<cargo bench args>...]
      iomanager's S3IoManager against Dagster's S3PickleIOManager (dagster-aws) on ONE moto
      server, writing target/iomanager-bench/report_s3.md:
        venv     as above, plus dagster-aws from requirements.txt when it is missing
        build    cargo bench --no-run -p iomanager-s3 --bench s3_vs_dagster
        moto     start moto on a free 127.0.0.1 port (as `test` does), create the bucket
        rust     cargo bench -p iomanager-s3 --bench s3_vs_dagster (rust_s3.json; the server
                 in IOMANAGER_BENCH_S3_ENDPOINT and IOMANAGER_BENCH_S3_BUCKET)
        dagster  benches/dagster/bench_dagster_s3.py against the same server
                 (dagster_s3.json); then moto is stopped
        report   combine rust_s3.json and dagster_s3.json into report_s3.md
      --quick        smaller counts and a single repetition on both sides (smoke run)
      --report-only  only rewrite report_s3.md from the result files already there

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
        Some("bench") if bench_s3::requested(&rest) => bench_s3::run(&rest),
        Some("bench") => match BenchArgs::parse(rest.iter().cloned()) {
            Ok(bench_args) if bench_args.compare_dagster => run_compare_dagster(&bench_args, &rest),
            Ok(bench_args) => run_bench(&bench_args.cargo_bench_args),
            Err(message) => usage_error(&message),
        },
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
                let services = Services::start(&workspace_root())
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

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace root when it is
/// relative), else `target` under the workspace root.
fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// Where criterion writes its reports, following criterion's own rules: `$CRITERION_HOME`,
/// else `$CARGO_TARGET_DIR/criterion`, else `target/criterion` under the workspace root.
fn criterion_dir(root: &Path) -> PathBuf {
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    target_dir(root).join("criterion")
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

/// Options of `cargo xtask bench`.
#[derive(Debug, Default, PartialEq, Eq)]
struct BenchArgs {
    /// `--compare-dagster`: run the side-by-side benchmark against Dagster and write the report.
    compare_dagster: bool,
    /// `--quick` (only with `--compare-dagster`): smaller counts and one repetition.
    quick: bool,
    /// `--report-only` (only with `--compare-dagster`): rewrite the report from the result
    /// files already there, running nothing else.
    report_only: bool,
    /// Every other argument, forwarded verbatim to `cargo bench` (`--` and what follows it
    /// included).
    cargo_bench_args: Vec<OsString>,
}

impl BenchArgs {
    /// Parses the arguments that follow `bench`. `--compare-dagster` and `--quick` are only
    /// recognised before a `--`.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.to_str() {
                Some("--compare-dagster") => parsed.compare_dagster = true,
                Some("--quick") => parsed.quick = true,
                Some("--report-only") => parsed.report_only = true,
                Some("--") => {
                    parsed.cargo_bench_args.push(arg);
                    parsed.cargo_bench_args.extend(args);
                    break;
                }
                _ => parsed.cargo_bench_args.push(arg),
            }
        }
        if parsed.quick && !parsed.compare_dagster {
            return Err("`--quick` only applies with `--compare-dagster` \
                 (criterion's own `--quick` goes after `--`)"
                .to_owned());
        }
        if parsed.report_only && !parsed.compare_dagster {
            return Err("`--report-only` only applies with `--compare-dagster`".to_owned());
        }
        Ok(parsed)
    }
}

/// The package and bench target that hold the Rust side of the Dagster comparison.
const RUST_COMPARE_BENCH: [&str; 5] = ["bench", "-p", "iomanager-fs", "--bench", "fs_vs_dagster"];

/// Size of the file `dd` writes to measure the disk's own rate, in MiB (`bs=1M count=..`).
const DD_MIB: u64 = 100;

/// Bytes in the "MB" of the report (a mebibyte, as in the Python and Rust benches).
const MIB: f64 = 1024.0 * 1024.0;

/// Files and directories of `cargo xtask bench --compare-dagster`.
#[derive(Debug)]
struct ComparePaths {
    /// The workspace root (working directory of every command).
    root: PathBuf,
    /// The virtualenv that holds Dagster: `target/dagster-venv`.
    venv: PathBuf,
    /// The virtualenv's Python interpreter.
    venv_python: PathBuf,
    /// `benches/dagster/requirements.txt`, installed into the virtualenv.
    requirements: PathBuf,
    /// `benches/dagster/bench_dagster.py`, the Dagster side of the benchmark.
    script: PathBuf,
    /// `target/iomanager-bench`, where every result file goes.
    out_dir: PathBuf,
    /// Results of the Rust bench, written by `fs_vs_dagster`.
    rust_json: PathBuf,
    /// Results of the Python script.
    dagster_json: PathBuf,
    /// The disk's own rates measured with `dd`.
    disk_json: PathBuf,
    /// The combined markdown report.
    report: PathBuf,
    /// Scratch directory of the Python script (created and deleted by it).
    dagster_scratch: PathBuf,
    /// The file `dd` writes (deleted right after each run).
    dd_file: PathBuf,
}

impl ComparePaths {
    /// The paths for the workspace at `root`.
    fn new(root: &Path) -> Self {
        let target = target_dir(root);
        let venv = target.join("dagster-venv");
        let venv_python = if cfg!(windows) {
            venv.join("Scripts").join("python.exe")
        } else {
            venv.join("bin").join("python")
        };
        let out_dir = target.join("iomanager-bench");
        Self {
            root: root.to_path_buf(),
            venv_python,
            venv,
            requirements: root.join("benches/dagster/requirements.txt"),
            script: root.join("benches/dagster/bench_dagster.py"),
            rust_json: out_dir.join("rust.json"),
            dagster_json: out_dir.join("dagster.json"),
            disk_json: out_dir.join("disk.json"),
            report: out_dir.join("report.md"),
            dagster_scratch: out_dir.join("dagster-scratch"),
            dd_file: out_dir.join("dd.bin"),
            out_dir,
        }
    }

    /// `path` relative to the workspace root when it is inside it, for messages and the report.
    fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// `cargo xtask bench --compare-dagster`: runs the steps listed in [`USAGE`] in order, going
/// on after a failing step, and fails at the end if any step failed. `raw_args` are the
/// arguments as given, for the command line quoted in the report.
fn run_compare_dagster(args: &BenchArgs, raw_args: &[OsString]) -> ExitCode {
    let paths = ComparePaths::new(&workspace_root());
    let started = Instant::now();
    let command_line = compare_command_line(raw_args);
    if let Err(error) = fs::create_dir_all(&paths.out_dir) {
        eprintln!(
            "error: could not create {}: {error}",
            paths.out_dir.display()
        );
        return ExitCode::FAILURE;
    }

    let mut reports = Vec::new();
    let mut timed = |name: &'static str, step: &mut dyn FnMut() -> Result<(), String>| {
        let step_started = Instant::now();
        let result = step();
        let outcome = match &result {
            Ok(()) => Outcome::Passed,
            Err(reason) => {
                eprintln!("error: step `{name}` failed: {reason}");
                Outcome::Failed
            }
        };
        reports.push(StepReport {
            name,
            outcome,
            duration: step_started.elapsed(),
        });
        result.is_ok()
    };

    if args.report_only {
        println!(
            "==> report only: keeping the result files in {}",
            paths.display(&paths.out_dir)
        );
        timed("report", &mut || write_report(&paths, &command_line));
        println!("{}", summary_line(&reports, started.elapsed()));
        return if reports[0].outcome == Outcome::Passed {
            println!("report: {}", paths.report.display());
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }

    let settle = settle_duration(args.quick);
    let venv_ready = timed("venv", &mut || ensure_dagster_venv(&paths));
    let built = timed("build", &mut || build_rust_compare_bench(&paths, args));
    if built {
        settle_disk(settle);
        timed("rust", &mut || run_rust_compare_bench(&paths, args));
    } else {
        let _ = fs::remove_file(&paths.rust_json);
        println!("==> rust (not run: the bench did not build)");
    }
    settle_disk(settle);
    if venv_ready {
        timed("dagster", &mut || run_dagster_script(&paths, args.quick));
    } else {
        // Drop any earlier results so the report does not pass them off as this run's.
        let _ = fs::remove_file(&paths.dagster_json);
        println!("==> dagster (not run: the virtualenv is not ready)");
    }
    timed("disk", &mut || measure_disk(&paths));
    timed("report", &mut || write_report(&paths, &command_line));
    let not_run = |name| StepReport {
        name,
        outcome: Outcome::NotRun,
        duration: Duration::ZERO,
    };
    if !built {
        reports.insert(2, not_run("rust"));
    }
    if !venv_ready {
        reports.insert(3, not_run("dagster"));
    }

    println!("{}", summary_line(&reports, started.elapsed()));
    println!("report: {}", paths.report.display());
    if reports
        .iter()
        .any(|report| report.outcome != Outcome::Passed)
    {
        eprintln!("error: `cargo xtask bench --compare-dagster` had failing steps");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The command line as typed, e.g. `cargo xtask bench --compare-dagster --quick`.
fn compare_command_line(raw_args: &[OsString]) -> String {
    let mut line = String::from("cargo xtask bench");
    for arg in raw_args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

/// How long a full run waits, after `sync`, before each bench (`IOMANAGER_BENCH_SETTLE_SECS`
/// overrides it; `--quick` runs do not wait).
///
/// On ext4, creating files within minutes of deleting many is slow: the inode allocator scans
/// past recently deleted inodes (60 s after deletion, 300 s while their inode table block is
/// dirty). On the 2-CPU development VM, 10,000 plain Python `open`/`pickle.dump` calls took
/// 0.35-0.6 s five minutes after the last mass deletion and 2-5 s one minute after it (`perf`
/// showing `recently_deleted` on top), so the build's and each bench's deleted files would
/// land in the next bench's small-file numbers without this wait.
const DEFAULT_SETTLE: Duration = Duration::from_secs(300);

/// The wait before each bench: none with `--quick`, else `IOMANAGER_BENCH_SETTLE_SECS` when
/// it is a number of seconds, else [`DEFAULT_SETTLE`].
fn settle_duration(quick: bool) -> Duration {
    if quick {
        return Duration::ZERO;
    }
    env::var("IOMANAGER_BENCH_SETTLE_SECS")
        .ok()
        .and_then(|secs| secs.trim().parse::<u64>().ok())
        .map_or(DEFAULT_SETTLE, Duration::from_secs)
}

/// Runs `sync` and waits `wait`, so that the previous step's writes and deletions do not slow
/// down the next one (see [`DEFAULT_SETTLE`]).
fn settle_disk(wait: Duration) {
    let mut sync = Command::new("sync");
    println!("==> settle: {}", render(&sync));
    if let Err(reason) = run_status(&mut sync) {
        eprintln!("warning: {reason}");
    }
    if !wait.is_zero() {
        println!(
            "==> settle: waiting {}s so files deleted by the previous step stop slowing down \
             file creation (ext4 scans past recently deleted inodes; \
             IOMANAGER_BENCH_SETTLE_SECS changes the wait)",
            wait.as_secs()
        );
        std::thread::sleep(wait);
    }
}

/// Whether `python` runs and can `import dagster`.
fn dagster_importable(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-c", "import dagster"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// Step `venv`: makes sure `target/dagster-venv` exists and can import Dagster, creating it
/// with `python3 -m venv` and installing the pinned requirements when needed.
fn ensure_dagster_venv(paths: &ComparePaths) -> Result<(), String> {
    if dagster_importable(&paths.venv_python) {
        println!(
            "==> venv: {} already has dagster",
            paths.display(&paths.venv)
        );
        return Ok(());
    }
    if !paths.venv_python.is_file() {
        let mut venv = Command::new("python3");
        venv.args(["-m", "venv"])
            .arg(&paths.venv)
            .current_dir(&paths.root);
        println!("==> venv: {}", render(&venv));
        run_status(&mut venv)?;
    }
    let mut pip = Command::new(&paths.venv_python);
    pip.args(["-m", "pip", "install", "-r"])
        .arg(&paths.requirements)
        .current_dir(&paths.root);
    println!("==> venv: {}", render(&pip));
    let started = Instant::now();
    run_status(&mut pip)?;
    println!("pip install took {:.1}s", started.elapsed().as_secs_f64());
    if dagster_importable(&paths.venv_python) {
        Ok(())
    } else {
        Err(format!(
            "`import dagster` still fails with {}",
            paths.venv_python.display()
        ))
    }
}

/// Step `build`: `cargo bench --no-run` for the Rust bench, so that the compiler's file churn
/// happens before the disk settles. Takes the forwarded arguments before any `--`.
fn build_rust_compare_bench(paths: &ComparePaths, args: &BenchArgs) -> Result<(), String> {
    let mut build = cargo(&paths.root, &RUST_COMPARE_BENCH);
    build.arg("--no-run").args(
        args.cargo_bench_args
            .iter()
            .take_while(|arg| arg.as_os_str() != "--"),
    );
    println!("==> build: {}", render(&build));
    run_status(&mut build)
}

/// Step `rust`: `cargo bench -p iomanager-fs --bench fs_vs_dagster` with the forwarded
/// arguments, `IOMANAGER_BENCH_DIR` set to the result directory and, with `--quick`,
/// `IOMANAGER_BENCH_QUICK=1`. A `rust.json` left by an earlier run is removed first.
fn run_rust_compare_bench(paths: &ComparePaths, args: &BenchArgs) -> Result<(), String> {
    remove_stale(&paths.rust_json)?;
    let mut bench = cargo(&paths.root, &RUST_COMPARE_BENCH);
    bench
        .args(&args.cargo_bench_args)
        .env("IOMANAGER_BENCH_DIR", &paths.out_dir);
    if args.quick {
        bench.env("IOMANAGER_BENCH_QUICK", "1");
    }
    println!("==> rust: {}", render(&bench));
    run_status(&mut bench)?;
    if paths.rust_json.is_file() {
        Ok(())
    } else {
        Err(format!(
            "the bench passed but did not write {}",
            paths.display(&paths.rust_json)
        ))
    }
}

/// Step `dagster`: runs `bench_dagster.py` in the virtualenv, writing `dagster.json`.
fn run_dagster_script(paths: &ComparePaths, quick: bool) -> Result<(), String> {
    remove_stale(&paths.dagster_json)?;
    if paths.dagster_scratch.exists() {
        // Left behind by an interrupted run; the script refuses a non-empty scratch directory.
        fs::remove_dir_all(&paths.dagster_scratch).map_err(|error| {
            format!(
                "could not remove {}: {error}",
                paths.dagster_scratch.display()
            )
        })?;
    }
    let mut script = Command::new(&paths.venv_python);
    script
        .arg(&paths.script)
        .arg("--out")
        .arg(&paths.dagster_json)
        .arg("--base-dir")
        .arg(&paths.dagster_scratch)
        .current_dir(&paths.root);
    if quick {
        script.arg("--quick");
    }
    println!("==> dagster: {}", render(&script));
    run_status(&mut script)
}

/// Removes `path` if it exists (a result file of an earlier run).
fn remove_stale(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("could not remove {}: {error}", path.display())),
    }
}

/// Step `disk`: writes [`DD_MIB`] MiB with `dd`, without and with `conv=fdatasync`, and
/// records both rates in `disk.json` (`null` for a run that failed; the step then fails).
fn measure_disk(paths: &ComparePaths) -> Result<(), String> {
    let plain = run_dd(&paths.dd_file, false);
    let synced = run_dd(&paths.dd_file, true);
    let json = format!(
        "{{\"dd_mb_per_s\": {}, \"dd_fdatasync_mb_per_s\": {}}}\n",
        json_number(plain.as_ref().ok().copied()),
        json_number(synced.as_ref().ok().copied()),
    );
    fs::write(&paths.disk_json, json)
        .map_err(|error| format!("could not write {}: {error}", paths.disk_json.display()))?;
    plain?;
    synced?;
    Ok(())
}

/// `value` as a JSON number with three decimals, or `null`.
fn json_number(value: Option<f64>) -> String {
    value
        .filter(|value| value.is_finite())
        .map_or_else(|| "null".to_owned(), |value| format!("{value:.3}"))
}

/// Runs `dd if=/dev/zero of=<file> bs=1M count=DD_MIB [conv=fdatasync]` and returns its rate
/// in MiB/s, from the byte count and seconds `dd` reports (timed here when they cannot be
/// read). `file` is deleted afterwards.
fn run_dd(file: &Path, fdatasync: bool) -> Result<f64, String> {
    let mut dd = Command::new("dd");
    let mut of = OsString::from("of=");
    of.push(file);
    dd.arg("if=/dev/zero")
        .arg(of)
        .arg("bs=1M")
        .arg(format!("count={DD_MIB}"));
    if fdatasync {
        dd.arg("conv=fdatasync");
    }
    println!("==> disk: {}", render(&dd));
    let started = Instant::now();
    let output = dd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let elapsed = started.elapsed().as_secs_f64();
    let _ = fs::remove_file(file);
    let output = output.map_err(|error| format!("could not run `{}`: {error}", render(&dd)))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "`{}` failed ({}): {}",
            render(&dd),
            output.status,
            stderr.trim()
        ));
    }
    let (bytes, seconds) = parse_dd_summary(&stderr).unwrap_or((DD_MIB * 1024 * 1024, elapsed));
    let rate = bytes as f64 / MIB / seconds;
    println!(
        "{} bytes in {seconds:.3}s: {rate:.1} MB/s",
        group_thousands(bytes)
    );
    Ok(rate)
}

/// The byte count and seconds of `dd`'s summary line, e.g. GNU's
/// `104857600 bytes (105 MB, 100 MiB) copied, 0.0473 s, 2.2 GB/s` or busybox's
/// `104857600 bytes (100.0MB) copied, 0.068 seconds, 1.4GB/s` (a decimal comma is accepted).
fn parse_dd_summary(stderr: &str) -> Option<(u64, f64)> {
    let line = stderr
        .lines()
        .rev()
        .find(|line| line.contains(" bytes") && line.contains("copied"))?;
    let bytes = line.split_whitespace().next()?.parse::<u64>().ok()?;
    let after = line.split_once("copied,")?.1;
    let seconds = after
        .split_whitespace()
        .next()?
        .replace(',', ".")
        .parse::<f64>()
        .ok()?;
    (seconds > 0.0).then_some((bytes, seconds))
}

/// Step `report`: reads the three result files and writes `report.md`.
fn write_report(paths: &ComparePaths, command_line: &str) -> Result<(), String> {
    let inputs = ReportInputs {
        command_line: command_line.to_owned(),
        date: utc_timestamp(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        ),
        machine: MachineInfo::detect(),
        rust: load_json(&paths.rust_json, &paths.display(&paths.rust_json)),
        dagster: load_json(&paths.dagster_json, &paths.display(&paths.dagster_json)),
        disk: load_json(&paths.disk_json, &paths.display(&paths.disk_json)),
    };
    let report = render_report(&inputs);
    fs::write(&paths.report, report)
        .map_err(|error| format!("could not write {}: {error}", paths.report.display()))?;
    println!("==> report: {}", paths.display(&paths.report));
    Ok(())
}

/// Reads and parses a result file; the error says what is wrong, naming it `shown`.
fn load_json(path: &Path, shown: &str) -> Result<Json, String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(format!("`{shown}` is missing"));
        }
        Err(error) => return Err(format!("`{shown}` could not be read: {error}")),
    };
    Json::parse(&text).map_err(|error| format!("`{shown}` is not valid JSON: {error}"))
}

/// The machine the benchmark ran on, as listed in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MachineInfo {
    /// Processing units available (`nproc`).
    cpus: String,
    /// The first `model name` of `/proc/cpuinfo`.
    cpu_model: String,
    /// `MemTotal` of `/proc/meminfo`, in GiB.
    memory: String,
    /// The kernel release (`uname -r`).
    kernel: String,
}

impl MachineInfo {
    /// Reads the machine's description; unknown parts are `"unknown"`.
    fn detect() -> Self {
        let unknown = || "unknown".to_owned();
        let cpus = command_stdout("nproc", &[]).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or_else(|_| unknown(), |n| n.to_string())
        });
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| proc_field(&text, "model name"))
            .unwrap_or_else(unknown);
        let memory = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| proc_field(&text, "MemTotal"))
            .and_then(|value| value.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(unknown, |kib| format!("{:.1} GiB", kib / (1024.0 * 1024.0)));
        let kernel = command_stdout("uname", &["-r"]).unwrap_or_else(unknown);
        Self {
            cpus,
            cpu_model,
            memory,
            kernel,
        }
    }
}

/// The trimmed stdout of `program args`, when it runs successfully and prints something.
fn command_stdout(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// The value of the first `name: value` line of a `/proc` file such as `/proc/cpuinfo`.
fn proc_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}

/// `secs` seconds after the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Civil date from a day count (Howard Hinnant's `civil_from_days`), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// Everything the report is made of; the result files are `Err` with a message when missing
/// or unreadable.
#[derive(Debug)]
struct ReportInputs {
    /// The command that produced the report.
    command_line: String,
    /// When the report was written (UTC).
    date: String,
    /// The machine it ran on.
    machine: MachineInfo,
    /// `rust.json`.
    rust: Result<Json, String>,
    /// `dagster.json`.
    dagster: Result<Json, String>,
    /// `disk.json`.
    disk: Result<Json, String>,
}

/// The numbers of one case of a result file.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CaseNumbers {
    /// Median wall time of the I/O calls, in seconds.
    seconds: f64,
    /// Number of values (records for `large_records`).
    count: Option<f64>,
    /// Size of the stored data in bytes.
    bytes: Option<f64>,
    /// Peak RSS increase during the call, in bytes.
    peak_rss_extra_bytes: Option<f64>,
}

impl CaseNumbers {
    /// Reads a case object; `None` unless it has a numeric `seconds`.
    fn from_json(value: &Json) -> Option<Self> {
        let number = |key: &str| value.get(key).and_then(Json::as_f64);
        Some(Self {
            seconds: number("seconds")?,
            count: number("count"),
            bytes: number("bytes"),
            peak_rss_extra_bytes: number("peak_rss_extra_bytes"),
        })
    }
}

/// The cases of a result file's `results` object, in file order.
fn case_list(file: &Json) -> Vec<(String, CaseNumbers)> {
    file.get("results")
        .and_then(Json::as_object)
        .unwrap_or_default()
        .iter()
        .filter_map(|(case, value)| Some((case.clone(), CaseNumbers::from_json(value)?)))
        .collect()
}

/// How a case's rate is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateUnit {
    /// Values per second (`count / seconds`).
    ValuesPerSecond,
    /// MiB per second (`bytes / seconds`).
    MegabytesPerSecond,
}

/// The unit of a case: MB/s for the single large values, values/s for the rest.
fn rate_unit(case: &str) -> RateUnit {
    let group = case.split('/').next().unwrap_or(case);
    if group.starts_with("large_records") || group.starts_with("buffer") {
        RateUnit::MegabytesPerSecond
    } else {
        RateUnit::ValuesPerSecond
    }
}

/// The rate of a case in its [`rate_unit`], when its numbers allow one.
fn case_rate(case: &str, numbers: &CaseNumbers) -> Option<f64> {
    if numbers.seconds <= 0.0 || !numbers.seconds.is_finite() {
        return None;
    }
    match rate_unit(case) {
        RateUnit::ValuesPerSecond => numbers.count.map(|count| count / numbers.seconds),
        RateUnit::MegabytesPerSecond => numbers.bytes.map(|bytes| bytes / MIB / numbers.seconds),
    }
}

/// Formats a rate in the unit of `case`, e.g. `15,165 values/s` or `126.5 MB/s`.
fn format_rate(case: &str, rate: Option<f64>) -> String {
    match (rate, rate_unit(case)) {
        (None, _) => "–".to_owned(),
        (Some(rate), RateUnit::ValuesPerSecond) => {
            format!("{} values/s", group_thousands(rate.round() as u64))
        }
        (Some(rate), RateUnit::MegabytesPerSecond) => format!("{rate:.1} MB/s"),
    }
}

/// `value` with commas between groups of three digits.
fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A byte count as MiB with one decimal, or `–`.
fn format_megabytes(bytes: Option<f64>) -> String {
    bytes.map_or_else(|| "–".to_owned(), |bytes| format!("{:.1} MB", bytes / MIB))
}

/// A byte count as MiB, or KiB below one MiB, with one decimal, or `–`.
fn format_size(bytes: Option<f64>) -> String {
    match bytes {
        Some(bytes) if bytes < MIB => format!("{:.1} kB", bytes / 1024.0),
        _ => format_megabytes(bytes),
    }
}

/// A ratio such as `12.3×`, or `–`.
fn format_ratio(ratio: Option<f64>) -> String {
    match ratio.filter(|ratio| ratio.is_finite()) {
        None => "–".to_owned(),
        Some(ratio) if ratio >= 100.0 => format!("{ratio:.0}×"),
        Some(ratio) if ratio >= 10.0 => format!("{ratio:.1}×"),
        Some(ratio) => format!("{ratio:.2}×"),
    }
}

/// A percentage with no decimals, or `–`.
fn format_percent(percent: Option<f64>) -> String {
    percent
        .filter(|percent| percent.is_finite())
        .map_or_else(|| "–".to_owned(), |percent| format!("{percent:.0}%"))
}

/// The Dagster case a Rust case is compared with: the backend `fs`, `fs_durable` or
/// `fs_nondurable` maps to Dagster's `fs`, `memory` to `memory`; `None` for other shapes.
fn dagster_case_for(rust_case: &str) -> Option<String> {
    let mut parts = rust_case.split('/');
    let (group, backend, operation) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let backend = match backend {
        "fs" | "fs_durable" | "fs_nondurable" => "fs",
        "memory" => "memory",
        _ => return None,
    };
    Some(format!("{group}/{backend}/{operation}"))
}

/// For buffer cases, which `dd` rate of `disk.json` to compare with: the `fdatasync` one for
/// durable stores, the plain one for the rest; `None` for the other cases.
fn dd_key_for(rust_case: &str) -> Option<&'static str> {
    if !rust_case.starts_with("buffer") {
        return None;
    }
    if rust_case.split('/').nth(1) == Some("fs_durable") {
        Some("dd_fdatasync_mb_per_s")
    } else {
        Some("dd_mb_per_s")
    }
}

/// A top-level string or bool field of a result file, for the header lines.
fn header_field(file: &Json, key: &str) -> Option<String> {
    match file.get(key)? {
        Json::String(text) => Some(text.clone()),
        Json::Bool(flag) => Some(flag.to_string()),
        Json::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Renders the markdown report.
fn render_report(inputs: &ReportInputs) -> String {
    let mut out = String::new();
    let rust_cases = inputs.rust.as_ref().map(case_list).unwrap_or_default();
    let dagster_cases = inputs.dagster.as_ref().map(case_list).unwrap_or_default();
    let dagster_numbers = |case: &str| {
        dagster_cases
            .iter()
            .find(|(name, _)| name == case)
            .map(|(_, numbers)| *numbers)
    };
    let dd_rate = |key: &str| {
        inputs
            .disk
            .as_ref()
            .ok()
            .and_then(|disk| disk.get(key))
            .and_then(Json::as_f64)
    };

    let _ = writeln!(out, "# iomanager vs Dagster: side-by-side benchmark\n");
    let _ = writeln!(out, "- Date: {}", inputs.date);
    let _ = writeln!(out, "- Command: `{}`", inputs.command_line);
    let machine = &inputs.machine;
    let _ = writeln!(
        out,
        "- Machine: {} CPUs ({}), {} memory, kernel {}",
        machine.cpus, machine.cpu_model, machine.memory, machine.kernel
    );
    match &inputs.dagster {
        Ok(file) => {
            let field = |key| header_field(file, key).unwrap_or_else(|| "?".to_owned());
            let _ = writeln!(
                out,
                "- Dagster {} on Python {} (quick: {}, repetitions: {}, DEBUG logs: {})",
                field("dagster_version"),
                field("python"),
                field("quick"),
                field("repeats"),
                field("debug_logs"),
            );
        }
        Err(message) => {
            let _ = writeln!(out, "- Dagster results: {message}");
        }
    }
    match &inputs.rust {
        Ok(file) => {
            let quick = header_field(file, "quick");
            let _ = writeln!(
                out,
                "- iomanager results: {} case(s){}",
                rust_cases.len(),
                quick
                    .map(|quick| format!(" (quick: {quick})"))
                    .unwrap_or_default()
            );
        }
        Err(message) => {
            let _ = writeln!(out, "- iomanager results: {message}");
        }
    }
    match &inputs.disk {
        Ok(_) => {
            let _ = writeln!(
                out,
                "- Disk (`dd` of {DD_MIB} MiB from /dev/zero): {} plain, {} with \
                 `conv=fdatasync`",
                format_rate("buffer", dd_rate("dd_mb_per_s")),
                format_rate("buffer", dd_rate("dd_fdatasync_mb_per_s")),
            );
        }
        Err(message) => {
            let _ = writeln!(out, "- Disk rate: {message}");
        }
    }

    let _ = writeln!(out, "\n## Side by side\n");
    if rust_cases.is_empty() {
        let _ = writeln!(
            out,
            "No iomanager cases to compare ({}).",
            inputs
                .rust
                .as_ref()
                .err()
                .map_or("`results` is empty", String::as_str)
        );
    } else {
        let _ = writeln!(
            out,
            "| case | iomanager | Dagster | ratio | iomanager peak RSS extra | \
             Dagster peak RSS extra | iomanager % of dd | Dagster % of plain dd |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|");
        for (case, rust) in &rust_cases {
            let dagster_case = dagster_case_for(case);
            let dagster = dagster_case.as_deref().and_then(dagster_numbers);
            let rust_rate = case_rate(case, rust);
            let dagster_rate = dagster.and_then(|numbers| case_rate(case, &numbers));
            let ratio = rust_rate.zip(dagster_rate).map(|(a, b)| a / b);
            // Dagster never syncs, so its rate is always set against the plain dd rate.
            let percent = |rate: Option<f64>, dd_key: Option<&str>| match dd_key_for(case) {
                None => String::new(),
                Some(row_key) => {
                    let dd = dd_rate(dd_key.unwrap_or(row_key));
                    format_percent(rate.zip(dd).map(|(rate, dd)| rate / dd * 100.0))
                }
            };
            let dagster_label = match (&dagster_case, dagster) {
                (Some(name), Some(_)) if name != case => {
                    format!("{} ({name})", format_rate(case, dagster_rate))
                }
                (_, Some(_)) => format_rate(case, dagster_rate),
                (Some(name), None) => format!("no `{name}`"),
                (None, None) => "no counterpart".to_owned(),
            };
            let _ = writeln!(
                out,
                "| `{case}` | {} | {dagster_label} | {} | {} | {} | {} | {} |",
                format_rate(case, rust_rate),
                format_ratio(ratio),
                format_megabytes(rust.peak_rss_extra_bytes),
                format_megabytes(dagster.and_then(|numbers| numbers.peak_rss_extra_bytes)),
                percent(rust_rate, None),
                percent(dagster_rate, Some("dd_mb_per_s")),
            );
        }
    }

    write_unmatched_and_raw(
        &mut out,
        &rust_cases,
        &dagster_cases,
        |name| {
            rust_cases
                .iter()
                .any(|(case, _)| dagster_case_for(case).as_deref() == Some(name))
        },
        |case, numbers| format_rate(case, case_rate(case, numbers)),
    );

    let _ = writeln!(
        out,
        "\n## Notes\n\n\
         - Rates: values/s (`count / seconds`) for `small_values*` and `partitions_1000`, \
         MB/s (`bytes / seconds`, MB = 2^20 bytes) for `large_records` and `buffer_100mb`. \
         The ratio is iomanager's rate over Dagster's: above 1 means iomanager is faster.\n\
         - `fs_durable` and `fs_nondurable` both compare with Dagster's `fs`, which writes \
         with a plain `open`/`pickle.dump` and never calls fsync.\n\
         - \"% of dd\" (buffer rows only): iomanager's rate against `dd ... conv=fdatasync` \
         for `fs_durable` rows and against plain `dd` for the others; Dagster's always against \
         plain `dd`, as it never syncs.\n\
         - Peak RSS extra is the growth of the peak resident set during the call \
         (`VmHWM` after minus `VmRSS` before, with the peak reset through \
         `/proc/self/clear_refs`).\n\
         - On ext4, creating many files within minutes of deleting many is several times \
         slower (the inode allocator scans past recently deleted inodes): a full run syncs \
         and waits before each bench (`IOMANAGER_BENCH_SETTLE_SECS`, default 300), but the \
         many-file store rows stay the noisiest.\n\
         - Dagster's contexts are built before the timed loops with one shared ephemeral \
         instance, except in `small_values_with_context`, whose loop also builds each context \
         the default way (a fresh ephemeral instance per context). See \
         `benches/dagster/bench_dagster.py`."
    );
    out
}

/// A parsed JSON value, enough for the flat result files of the benchmarks.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any number, as an `f64`.
    Number(f64),
    /// A string, escapes resolved.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in file order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a complete JSON document.
    fn parse(text: &str) -> Result<Self, String> {
        let mut parser = JsonParser { text, pos: 0 };
        parser.skip_whitespace();
        let value = parser.value(0)?;
        parser.skip_whitespace();
        if parser.pos == text.len() {
            Ok(value)
        } else {
            Err(parser.error("trailing characters"))
        }
    }

    /// The member `key` of an object (the first one, should it repeat).
    fn get(&self, key: &str) -> Option<&Self> {
        self.as_object()?
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// The members of an object.
    fn as_object(&self) -> Option<&[(String, Self)]> {
        match self {
            Self::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The value of a number.
    fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(number) => Some(*number),
            _ => None,
        }
    }
}

/// Nesting depth beyond which [`JsonParser`] gives up (the result files nest three deep).
const JSON_MAX_DEPTH: usize = 64;

/// A recursive-descent parser over a JSON text.
struct JsonParser<'a> {
    /// The whole text.
    text: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
}

impl JsonParser<'_> {
    /// An error message naming the current byte offset.
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    /// The next byte, if any.
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Skips spaces, tabs and line breaks.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Consumes `literal` or fails.
    fn expect(&mut self, literal: &str) -> Result<(), String> {
        if self.text[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(self.error(&format!("expected `{literal}`")))
        }
    }

    /// Parses the value starting at the current position (whitespace already skipped).
    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > JSON_MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.expect("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.expect("false").map(|()| Json::Bool(false)),
            Some(b'n') => self.expect("null").map(|()| Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    /// Parses an object; the current byte is `{`.
    fn object(&mut self, depth: usize) -> Result<Json, String> {
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            self.expect(":")?;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// Parses an array; the current byte is `[`.
    fn array(&mut self, depth: usize) -> Result<Json, String> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// Parses a string; the current byte is `"`.
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            // `"` and `\` are ASCII, so the run before them ends on a character boundary.
            let rest = &self.text[self.pos..];
            let run = rest
                .find(|c: char| c == '"' || c == '\\' || c < ' ')
                .ok_or_else(|| self.error("unterminated string"))?;
            out.push_str(&rest[..run]);
            self.pos += run;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                _ => return Err(self.error("control character in string")),
            }
        }
    }

    /// Reads the 4 hex digits after `\u` (and a following low surrogate escape when the
    /// first is a high surrogate); lone surrogates become U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return Ok(char::from_u32(high).unwrap_or('\u{FFFD}'));
        }
        if !self.text[self.pos..].starts_with("\\u") {
            return Ok('\u{FFFD}');
        }
        self.pos += 2;
        let low = self.hex4()?;
        if !(0xDC00..0xE000).contains(&low) {
            return Ok('\u{FFFD}');
        }
        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        Ok(char::from_u32(code).unwrap_or('\u{FFFD}'))
    }

    /// Reads 4 hex digits.
    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected 4 hex digits"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|error| error.to_string())
    }

    /// Parses a number.
    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.pos += 1;
        }
        self.text[start..self.pos]
            .parse::<f64>()
            .map(Json::Number)
            .map_err(|_| format!("invalid number at byte {start}"))
    }
}

/// Unit tests of the argument parsing, the dependency rule and the summary line.
/// Writes what every side-by-side report shares after its main table: the Dagster cases that
/// no iomanager case matched (`matched(name)` says whether one does), and the raw numbers of
/// both sides.
fn write_unmatched_and_raw(
    out: &mut String,
    rust_cases: &[(String, CaseNumbers)],
    dagster_cases: &[(String, CaseNumbers)],
    matched: impl Fn(&str) -> bool,
    rate: impl Fn(&str, &CaseNumbers) -> String,
) {
    let unmatched: Vec<&(String, CaseNumbers)> = dagster_cases
        .iter()
        .filter(|(name, _)| !matched(name))
        .collect();
    if !unmatched.is_empty() {
        let _ = writeln!(out, "\n## Dagster cases without an iomanager counterpart\n");
        let _ = writeln!(out, "| case | Dagster | peak RSS extra |");
        let _ = writeln!(out, "|---|--:|--:|");
        for (case, numbers) in unmatched {
            let _ = writeln!(
                out,
                "| `{case}` | {} | {} |",
                rate(case, numbers),
                format_megabytes(numbers.peak_rss_extra_bytes)
            );
        }
    }

    let _ = writeln!(out, "\n## Raw numbers\n");
    let _ = writeln!(
        out,
        "| side | case | seconds | count | stored | peak RSS extra |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|");
    for (side, cases) in [("iomanager", rust_cases), ("Dagster", dagster_cases)] {
        for (case, numbers) in cases {
            let _ = writeln!(
                out,
                "| {side} | `{case}` | {:.4} | {} | {} | {} |",
                numbers.seconds,
                numbers
                    .count
                    .map_or_else(|| "–".to_owned(), |count| group_thousands(count as u64)),
                format_size(numbers.bytes),
                format_megabytes(numbers.peak_rss_extra_bytes)
            );
        }
    }
}

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

    /// `--compare-dagster`, `--quick` and `--report-only` are taken out before `--`; the
    /// rest is forwarded to `cargo bench`.
    #[test]
    fn parses_bench_args() {
        assert_eq!(
            BenchArgs::parse(os(&["--quick", "--compare-dagster", "--", "--quick"])),
            Ok(BenchArgs {
                compare_dagster: true,
                quick: true,
                report_only: false,
                cargo_bench_args: os(&["--", "--quick"]),
            })
        );
        assert_eq!(
            BenchArgs::parse(os(&["--bench", "roundtrip"])),
            Ok(BenchArgs {
                cargo_bench_args: os(&["--bench", "roundtrip"]),
                ..BenchArgs::default()
            })
        );
        assert!(BenchArgs::parse(os(&["--quick"])).is_err());
        assert_eq!(settle_duration(true), Duration::ZERO);
        assert!(BenchArgs::parse(os(&["--report-only"])).is_err());
        assert!(
            BenchArgs::parse(os(&["--compare-dagster", "--report-only"]))
                .is_ok_and(|args| args.report_only)
        );
    }

    /// The JSON reader handles the value kinds of the result files, escapes included.
    #[test]
    fn parses_json() {
        let text = r#" {"a": {"seconds": 1.5e-3, "count": 10, "bytes": null},
            "s": "x\"y\\\u00e9\ud83d\ude00\n", "t": true, "f": false, "l": [1, -2.5, []],
            "e": {}, "u": "élan"} "#;
        let json = Json::parse(text).expect("valid JSON");
        let case = json.get("a").expect("member a");
        assert_eq!(case.get("seconds").and_then(Json::as_f64), Some(0.0015));
        assert_eq!(case.get("count").and_then(Json::as_f64), Some(10.0));
        assert_eq!(case.get("bytes"), Some(&Json::Null));
        assert_eq!(json.get("s"), Some(&Json::String("x\"y\\é😀\n".to_owned())));
        assert_eq!(json.get("t"), Some(&Json::Bool(true)));
        assert_eq!(json.get("f"), Some(&Json::Bool(false)));
        assert_eq!(
            json.get("l"),
            Some(&Json::Array(vec![
                Json::Number(1.0),
                Json::Number(-2.5),
                Json::Array(vec![])
            ]))
        );
        assert_eq!(json.get("e"), Some(&Json::Object(vec![])));
        assert_eq!(json.get("u"), Some(&Json::String("élan".to_owned())));
        assert_eq!(
            json.as_object().map(|members| members.len()),
            Some(7),
            "members keep their order and count"
        );
        for bad in [
            "",
            "{",
            "{\"a\" 1}",
            "[1,]",
            "{\"a\": 1} x",
            "\"abc",
            "tru",
            "-",
            "{1: 2}",
        ] {
            assert!(Json::parse(bad).is_err(), "accepted {bad:?}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(Json::parse(&deep).is_err());
    }

    /// GNU and busybox `dd` summaries are read; anything else falls back to our own timing.
    #[test]
    fn parses_dd_summary() {
        let gnu = "100+0 records in\n100+0 records out\n\
                   104857600 bytes (105 MB, 100 MiB) copied, 0.0473 s, 2.2 GB/s\n";
        assert_eq!(parse_dd_summary(gnu), Some((104_857_600, 0.0473)));
        let comma = "104857600 bytes (105 MB, 100 MiB) copied, 0,5 s, 210 MB/s\n";
        assert_eq!(parse_dd_summary(comma), Some((104_857_600, 0.5)));
        let busybox = "104857600 bytes (100.0MB) copied, 0.068093 seconds, 1.4GB/s\n";
        assert_eq!(parse_dd_summary(busybox), Some((104_857_600, 0.068_093)));
        assert_eq!(parse_dd_summary("dd: error writing: No space left\n"), None);
        assert_eq!(
            parse_dd_summary("5 bytes (5 B) copied, 0 s, inf B/s\n"),
            None,
            "a zero duration gives no rate"
        );
    }

    /// Rust cases map onto Dagster's `fs` and `memory` cases; buffer rows pick their dd rate.
    #[test]
    fn maps_cases() {
        assert_eq!(
            dagster_case_for("small_values/fs_durable/store").as_deref(),
            Some("small_values/fs/store")
        );
        assert_eq!(
            dagster_case_for("large_records/fs_nondurable/store").as_deref(),
            Some("large_records/fs/store")
        );
        assert_eq!(
            dagster_case_for("partitions_1000/fs/load").as_deref(),
            Some("partitions_1000/fs/load")
        );
        assert_eq!(
            dagster_case_for("small_values/memory/load").as_deref(),
            Some("small_values/memory/load")
        );
        assert_eq!(dagster_case_for("small_values/s3/load"), None);
        assert_eq!(dagster_case_for("small_values/fs"), None);
        assert_eq!(
            dd_key_for("buffer_100mb/fs_durable/store"),
            Some("dd_fdatasync_mb_per_s")
        );
        assert_eq!(
            dd_key_for("buffer_100mb/fs_nondurable/store"),
            Some("dd_mb_per_s")
        );
        assert_eq!(dd_key_for("buffer_100mb/fs/load"), Some("dd_mb_per_s"));
        assert_eq!(dd_key_for("large_records/fs_durable/store"), None);
        assert_eq!(
            rate_unit("buffer_100mb/fs/load"),
            RateUnit::MegabytesPerSecond
        );
        assert_eq!(
            rate_unit("large_records/fs/load"),
            RateUnit::MegabytesPerSecond
        );
        assert_eq!(
            rate_unit("partitions_1000/fs/load"),
            RateUnit::ValuesPerSecond
        );
    }

    /// Rates, ratios and sizes are formatted for the report.
    #[test]
    fn formats_numbers() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        let numbers = CaseNumbers {
            seconds: 0.5,
            count: Some(1_000.0),
            bytes: Some(100.0 * MIB),
            peak_rss_extra_bytes: None,
        };
        let values = case_rate("small_values/fs/store", &numbers);
        assert_eq!(
            format_rate("small_values/fs/store", values),
            "2,000 values/s"
        );
        let megabytes = case_rate("buffer_100mb/fs/store", &numbers);
        assert_eq!(
            format_rate("buffer_100mb/fs/store", megabytes),
            "200.0 MB/s"
        );
        assert_eq!(format_rate("small_values/fs/store", None), "–");
        assert_eq!(format_ratio(Some(250.4)), "250×");
        assert_eq!(format_ratio(Some(12.34)), "12.3×");
        assert_eq!(format_ratio(Some(0.456)), "0.46×");
        assert_eq!(format_ratio(Some(f64::INFINITY)), "–");
        assert_eq!(format_megabytes(Some(1.5 * MIB)), "1.5 MB");
        assert_eq!(format_size(Some(1.5 * MIB)), "1.5 MB");
        assert_eq!(format_size(Some(1536.0)), "1.5 kB");
        assert_eq!(format_size(None), "–");
        assert_eq!(format_percent(Some(45.4)), "45%");
        assert_eq!(json_number(Some(1.23456)), "1.235");
        assert_eq!(json_number(None), "null");
        assert_eq!(json_number(Some(f64::NAN)), "null");
    }

    /// Unix time converts to a UTC civil date.
    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_timestamp(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    /// `/proc` files are read by field name.
    #[test]
    fn reads_proc_fields() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t\t: fpu\n";
        assert_eq!(
            proc_field(cpuinfo, "model name").as_deref(),
            Some("Example CPU @ 2.0GHz")
        );
        assert_eq!(proc_field(cpuinfo, "model"), None);
    }

    /// The report pairs each Rust case with its Dagster case, adds the dd percentages for
    /// buffer rows, lists unmatched Dagster cases and says which files are missing.
    #[test]
    fn renders_report() {
        let rust = Json::parse(
            r#"{"quick": true, "results": {
                "small_values/fs_durable/store": {"seconds": 2.0, "count": 1000,
                    "bytes": 1000, "peak_rss_extra_bytes": null},
                "buffer_100mb/fs_durable/store": {"seconds": 1.0, "count": 1,
                    "bytes": 104857600, "peak_rss_extra_bytes": 2097152},
                "buffer_100mb/fs_nondurable/store": {"seconds": 0.25, "count": 1,
                    "bytes": 104857600, "peak_rss_extra_bytes": 0},
                "small_values/s3/store": {"seconds": 1.0, "count": 10, "bytes": null,
                    "peak_rss_extra_bytes": null}}}"#,
        );
        let dagster = Json::parse(
            r#"{"dagster_version": "1.13.29", "python": "3.11.7", "quick": true,
                "repeats": 1, "debug_logs": false, "results": {
                "small_values/fs/store": {"seconds": 4.0, "count": 1000, "bytes": 2000,
                    "peak_rss_extra_bytes": null, "runs_seconds": [4.0]},
                "buffer_100mb/fs/store": {"seconds": 0.5, "count": 1, "bytes": 104857600,
                    "peak_rss_extra_bytes": 1048576, "runs_seconds": [0.5]},
                "small_values/memory/load": {"seconds": 0.01, "count": 1000, "bytes": null,
                    "peak_rss_extra_bytes": null, "runs_seconds": [0.01]}}}"#,
        );
        let disk = Json::parse(r#"{"dd_mb_per_s": 800.0, "dd_fdatasync_mb_per_s": 200.0}"#);
        let machine = MachineInfo {
            cpus: "2".to_owned(),
            cpu_model: "Example CPU".to_owned(),
            memory: "23.5 GiB".to_owned(),
            kernel: "6.1.0".to_owned(),
        };
        let inputs = ReportInputs {
            command_line: "cargo xtask bench --compare-dagster --quick".to_owned(),
            date: utc_timestamp(0),
            machine: machine.clone(),
            rust,
            dagster,
            disk,
        };
        let report = render_report(&inputs);
        assert!(
            report.contains("- Date: 1970-01-01 00:00:00 UTC"),
            "{report}"
        );
        assert!(report.contains("`cargo xtask bench --compare-dagster --quick`"));
        assert!(report.contains("2 CPUs (Example CPU), 23.5 GiB memory, kernel 6.1.0"));
        assert!(report.contains("Dagster 1.13.29 on Python 3.11.7 (quick: true"));
        assert!(report.contains("800.0 MB/s plain, 200.0 MB/s with `conv=fdatasync`"));
        assert!(
            report.contains(
                "| `small_values/fs_durable/store` | 500 values/s | \
                 250 values/s (small_values/fs/store) | 2.00× | – | – |  |  |"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "| `buffer_100mb/fs_durable/store` | 100.0 MB/s | \
                 200.0 MB/s (buffer_100mb/fs/store) | 0.50× | 2.0 MB | 1.0 MB | 50% | 25% |"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "| `buffer_100mb/fs_nondurable/store` | 400.0 MB/s | \
                 200.0 MB/s (buffer_100mb/fs/store) | 2.00× | 0.0 MB | 1.0 MB | 50% | 25% |"
            ),
            "{report}"
        );
        assert!(report.contains("| `small_values/s3/store` | 10 values/s | no counterpart |"));
        assert!(
            report.contains("| `small_values/memory/load` | 100,000 values/s | – |"),
            "{report}"
        );

        let missing = ReportInputs {
            command_line: "cargo xtask bench --compare-dagster".to_owned(),
            date: utc_timestamp(0),
            machine,
            rust: Err("`target/iomanager-bench/rust.json` is missing".to_owned()),
            dagster: Err("`target/iomanager-bench/dagster.json` is missing".to_owned()),
            disk: Err("`target/iomanager-bench/disk.json` is missing".to_owned()),
        };
        let report = render_report(&missing);
        assert!(
            report.contains("- iomanager results: `target/iomanager-bench/rust.json` is missing")
        );
        assert!(
            report.contains("- Dagster results: `target/iomanager-bench/dagster.json` is missing")
        );
        assert!(report.contains("- Disk rate: `target/iomanager-bench/disk.json` is missing"));
        assert!(report.contains("No iomanager cases to compare"));
    }
}
