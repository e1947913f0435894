//! `cargo xtask bench --compare-dagster-s3`: iomanager's `S3IoManager` against Dagster's
//! `S3PickleIOManager` (dagster-aws) on the same S3-compatible server, one moto process
//! serving both sides, written to `target/iomanager-bench/report_s3.md`.
//!
//! Steps, run in order (a failing step does not stop the ones that do not need it):
//!
//! * `venv`: `target/dagster-venv` with Dagster (as for `--compare-dagster`) and dagster-aws;
//!   when dagster-aws is missing, `benches/dagster/requirements.txt` is installed (which can
//!   move Dagster to the newest 1.13 release that has a matching dagster-aws).
//! * `build`: `cargo bench --no-run -p iomanager-s3 --bench s3_vs_dagster`.
//! * `moto`: moto started as for `cargo xtask test` ([`Services::start_moto_only`]) on a free
//!   127.0.0.1 port, and the bucket [`BUCKET`] created in it.
//! * `rust`: the bench against that server, writing `rust_s3.json`.
//! * `dagster`: `benches/dagster/bench_dagster_s3.py` against the same server, writing
//!   `dagster_s3.json`; then moto is stopped.
//! * `report`: `report_s3.md` from the two result files.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::services::{MOTO_VERSION, Services};
use crate::{
    CaseNumbers, ComparePaths, Json, MIB, MachineInfo, Outcome, StepReport, cargo, case_list,
    compare_command_line, ensure_dagster_venv, format_megabytes, format_ratio, group_thousands,
    header_field, load_json, remove_stale, render, run_status, settle_disk, summary_line,
    usage_error, utc_timestamp, workspace_root, write_unmatched_and_raw,
};

/// The option that selects this benchmark.
pub const FLAG: &str = "--compare-dagster-s3";

/// The bucket both sides store into.
const BUCKET: &str = "iomanager-bench";

/// The package and bench target of the Rust side.
const RUST_S3_BENCH: [&str; 5] = ["bench", "-p", "iomanager-s3", "--bench", "s3_vs_dagster"];

/// The peak RSS increase the streaming case must stay under.
const STREAM_RSS_TARGET: f64 = 200.0 * MIB;

/// Whether the `bench` arguments ask for this benchmark ([`FLAG`] before any `--`).
pub fn requested(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|arg| arg.as_os_str() != "--")
        .any(|arg| arg.as_os_str() == FLAG)
}

/// Options of `cargo xtask bench --compare-dagster-s3`.
#[derive(Debug, Default, PartialEq, Eq)]
struct S3BenchArgs {
    /// `--quick`: smaller counts and one repetition on both sides.
    quick: bool,
    /// `--report-only`: rewrite `report_s3.md` from the result files already there.
    report_only: bool,
    /// Every other argument, forwarded to `cargo bench` (`--` and what follows included).
    cargo_bench_args: Vec<OsString>,
}

impl S3BenchArgs {
    /// Parses the arguments that follow `bench`; options are only recognised before `--`.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.to_str() {
                Some(FLAG) => {}
                Some("--quick") => parsed.quick = true,
                Some("--report-only") => parsed.report_only = true,
                Some("--compare-dagster") => {
                    return Err(format!(
                        "`--compare-dagster` and `{FLAG}` are separate runs; give one of them"
                    ));
                }
                Some("--") => {
                    parsed.cargo_bench_args.push(arg);
                    parsed.cargo_bench_args.extend(args);
                    break;
                }
                _ => parsed.cargo_bench_args.push(arg),
            }
        }
        Ok(parsed)
    }
}

/// Files of the S3 comparison.
#[derive(Debug)]
struct S3Paths {
    /// The paths shared with `--compare-dagster` (root, virtualenv, requirements, out dir).
    compare: ComparePaths,
    /// `benches/dagster/bench_dagster_s3.py`.
    script: PathBuf,
    /// Results of the Rust bench.
    rust_json: PathBuf,
    /// Results of the Python script.
    dagster_json: PathBuf,
    /// The report.
    report: PathBuf,
}

impl S3Paths {
    /// The paths for the workspace at `root`.
    fn new(root: &Path) -> Self {
        let compare = ComparePaths::new(root);
        let out = &compare.out_dir;
        Self {
            script: root.join("benches/dagster/bench_dagster_s3.py"),
            rust_json: out.join("rust_s3.json"),
            dagster_json: out.join("dagster_s3.json"),
            report: out.join("report_s3.md"),
            compare,
        }
    }

    /// `path` relative to the workspace root, for messages and the report.
    fn display(&self, path: &Path) -> String {
        self.compare.display(path)
    }
}

/// Runs `step` as the step `name`, recording its outcome and duration; true when it passed.
fn timed(
    reports: &mut Vec<StepReport>,
    name: &'static str,
    step: impl FnOnce() -> Result<(), String>,
) -> bool {
    let started = Instant::now();
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
        duration: started.elapsed(),
    });
    result.is_ok()
}

/// Records that step `name` did not run and why, dropping the result file it would write so
/// the report does not pass an earlier run's numbers off as this run's.
fn not_run(reports: &mut Vec<StepReport>, name: &'static str, why: &str, stale: &Path) {
    let _ = fs::remove_file(stale);
    println!("==> {name} (not run: {why})");
    reports.push(StepReport {
        name,
        outcome: Outcome::NotRun,
        duration: Duration::ZERO,
    });
}

/// `cargo xtask bench --compare-dagster-s3 [--quick] [--report-only] [<cargo bench args>...]`.
pub fn run(raw_args: &[OsString]) -> ExitCode {
    let args = match S3BenchArgs::parse(raw_args.iter().cloned()) {
        Ok(args) => args,
        Err(message) => return usage_error(&message),
    };
    let paths = S3Paths::new(&workspace_root());
    let started = Instant::now();
    let command_line = compare_command_line(raw_args);
    if let Err(error) = fs::create_dir_all(&paths.compare.out_dir) {
        eprintln!(
            "error: could not create {}: {error}",
            paths.compare.out_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let mut reports = Vec::new();

    if !args.report_only {
        let venv_ready = timed(&mut reports, "venv", || ensure_venv(&paths));
        let built = timed(&mut reports, "build", || build(&paths, &args));
        let mut moto = None;
        timed(&mut reports, "moto", || {
            moto = Some(start_moto(&paths.compare.root)?);
            Ok(())
        });
        match &moto {
            Some(services) if built => {
                settle_disk(Duration::ZERO);
                timed(&mut reports, "rust", || run_rust(&paths, &args, services));
            }
            Some(_) => not_run(
                &mut reports,
                "rust",
                "the bench did not build",
                &paths.rust_json,
            ),
            None => not_run(&mut reports, "rust", "moto did not start", &paths.rust_json),
        }
        match &moto {
            Some(services) if venv_ready => {
                settle_disk(Duration::ZERO);
                timed(&mut reports, "dagster", || {
                    run_dagster(&paths, args.quick, services)
                });
            }
            Some(_) => not_run(
                &mut reports,
                "dagster",
                "the virtualenv is not ready",
                &paths.dagster_json,
            ),
            None => not_run(
                &mut reports,
                "dagster",
                "moto did not start",
                &paths.dagster_json,
            ),
        }
        if moto.take().is_some() {
            println!("==> moto: stopped");
        }
    } else {
        println!(
            "==> report only: keeping the result files in {}",
            paths.display(&paths.compare.out_dir)
        );
    }
    timed(&mut reports, "report", || {
        write_report(&paths, &command_line)
    });

    println!("{}", summary_line(&reports, started.elapsed()));
    println!("report: {}", paths.report.display());
    if reports
        .iter()
        .all(|report| report.outcome == Outcome::Passed)
    {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: `cargo xtask bench {FLAG}` had failing steps");
        ExitCode::FAILURE
    }
}

/// Whether `python -c <code>` succeeds.
fn python_ok(python: &Path, code: &str) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-c", code])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// The Dagster version `python` imports, if it imports one.
fn dagster_version(python: &Path) -> Option<String> {
    let output = Command::new(python)
        .args(["-c", "import dagster; print(dagster.__version__)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !version.is_empty()).then_some(version)
}

/// Step `venv`: Dagster (installed as for `--compare-dagster`) and dagster-aws, installed from
/// `requirements.txt` when missing. dagster-aws 0.29.N requires exactly dagster 1.13.N, and not
/// every Dagster release has a dagster-aws release, so pip may move Dagster to the newest
/// 1.13 release that has one; that is printed.
fn ensure_venv(paths: &S3Paths) -> Result<(), String> {
    ensure_dagster_venv(&paths.compare)?;
    let python = &paths.compare.venv_python;
    if python_ok(python, "import dagster_aws") {
        println!(
            "==> venv: {} already has dagster-aws",
            paths.display(&paths.compare.venv)
        );
        return Ok(());
    }
    let before = dagster_version(python);
    let mut pip = Command::new(python);
    pip.args(["-m", "pip", "install", "-r"])
        .arg(&paths.compare.requirements)
        .current_dir(&paths.compare.root);
    println!("==> venv: {}", render(&pip));
    run_status(&mut pip)?;
    let after = dagster_version(python);
    if before != after {
        println!(
            "==> venv: Dagster {} -> {} (the newest 1.13 release with a matching dagster-aws)",
            before.as_deref().unwrap_or("?"),
            after.as_deref().unwrap_or("?")
        );
    }
    if python_ok(python, "import dagster_aws") {
        Ok(())
    } else {
        Err(format!(
            "`import dagster_aws` still fails with {}",
            python.display()
        ))
    }
}

/// Step `build`: builds the Rust bench (with the forwarded arguments before any `--`).
fn build(paths: &S3Paths, args: &S3BenchArgs) -> Result<(), String> {
    let mut build = cargo(&paths.compare.root, &RUST_S3_BENCH);
    build.arg("--no-run").args(
        args.cargo_bench_args
            .iter()
            .take_while(|arg| arg.as_os_str() != "--"),
    );
    println!("==> build: {}", render(&build));
    run_status(&mut build)
}

/// Step `moto`: starts moto and creates [`BUCKET`] in it.
fn start_moto(root: &Path) -> Result<Services, String> {
    println!("==> moto: starting moto {MOTO_VERSION} on 127.0.0.1");
    let services = Services::start_moto_only(root)?;
    let endpoint = services
        .s3_endpoint()
        .ok_or("moto started but its endpoint is unknown")?;
    create_bucket(endpoint, BUCKET)?;
    println!("==> moto: bucket `{BUCKET}` at {endpoint}");
    Ok(services)
}

/// Creates `bucket` with one unsigned `PUT /<bucket>` (moto does not check signatures); an
/// existing bucket of ours is fine.
fn create_bucket(endpoint: &str, bucket: &str) -> Result<(), String> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// endpoint: {endpoint}"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .map_err(|error| format!("cannot connect to {endpoint}: {error}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("cannot send to {endpoint}: {error}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|error| format!("no answer from {endpoint}: {error}"))?;
    let response = String::from_utf8_lossy(&response);
    let status = response.split_whitespace().nth(1).unwrap_or("");
    if status == "200" || (status == "409" && response.contains("BucketAlreadyOwnedByYou")) {
        Ok(())
    } else {
        let excerpt: String = response.chars().take(600).collect();
        Err(format!(
            "creating bucket `{bucket}` at {endpoint} failed:\n{excerpt}"
        ))
    }
}

/// Step `rust`: `cargo bench -p iomanager-s3 --bench s3_vs_dagster` against moto.
fn run_rust(paths: &S3Paths, args: &S3BenchArgs, moto: &Services) -> Result<(), String> {
    remove_stale(&paths.rust_json)?;
    let endpoint = moto.s3_endpoint().unwrap_or_default();
    let mut bench = cargo(&paths.compare.root, &RUST_S3_BENCH);
    bench
        .args(&args.cargo_bench_args)
        .envs(moto.env_vars())
        .env("IOMANAGER_BENCH_DIR", &paths.compare.out_dir)
        .env("IOMANAGER_BENCH_S3_ENDPOINT", endpoint)
        .env("IOMANAGER_BENCH_S3_BUCKET", BUCKET);
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

/// Step `dagster`: `bench_dagster_s3.py` in the virtualenv against the same moto.
fn run_dagster(paths: &S3Paths, quick: bool, moto: &Services) -> Result<(), String> {
    remove_stale(&paths.dagster_json)?;
    let mut script = Command::new(&paths.compare.venv_python);
    script
        .arg(&paths.script)
        .arg("--out")
        .arg(&paths.dagster_json)
        .arg("--endpoint")
        .arg(moto.s3_endpoint().unwrap_or_default())
        .arg("--bucket")
        .arg(BUCKET)
        .envs(moto.env_vars())
        .current_dir(&paths.compare.root);
    if quick {
        script.arg("--quick");
    }
    println!("==> dagster: {}", render(&script));
    run_status(&mut script)
}

/// Step `report`: reads the two result files and writes `report_s3.md`.
fn write_report(paths: &S3Paths, command_line: &str) -> Result<(), String> {
    let inputs = S3ReportInputs {
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
    };
    fs::write(&paths.report, render_s3_report(&inputs))
        .map_err(|error| format!("could not write {}: {error}", paths.report.display()))?;
    println!("==> report: {}", paths.display(&paths.report));
    Ok(())
}

/// Everything `report_s3.md` is made of; a result file is `Err` with a message when missing
/// or unreadable.
#[derive(Debug)]
struct S3ReportInputs {
    /// The command that produced the report.
    command_line: String,
    /// When the report was written (UTC).
    date: String,
    /// The machine it ran on.
    machine: MachineInfo,
    /// `rust_s3.json`.
    rust: Result<Json, String>,
    /// `dagster_s3.json`.
    dagster: Result<Json, String>,
}

/// Whether a case's rate is in MB/s (the single buffer and the stream) rather than values/s.
fn in_megabytes(case: &str) -> bool {
    let group = case.split('/').next().unwrap_or(case);
    group.starts_with("s3_buffer") || group.starts_with("s3_stream")
}

/// Whether a case is one of the streaming rows (iomanager only).
fn is_stream(case: &str) -> bool {
    case.starts_with("s3_stream")
}

/// The rate of a case: MB/s (MB = 2^20 bytes) or values/s, when its numbers allow one.
fn s3_rate(case: &str, numbers: &CaseNumbers) -> Option<f64> {
    if numbers.seconds <= 0.0 || !numbers.seconds.is_finite() {
        return None;
    }
    if in_megabytes(case) {
        numbers.bytes.map(|bytes| bytes / MIB / numbers.seconds)
    } else {
        numbers.count.map(|count| count / numbers.seconds)
    }
}

/// Formats a rate in the unit of `case`.
fn format_s3_rate(case: &str, rate: Option<f64>) -> String {
    match rate {
        None => "–".to_owned(),
        Some(rate) if in_megabytes(case) => format!("{rate:.1} MB/s"),
        Some(rate) => format!("{} values/s", group_thousands(rate.round() as u64)),
    }
}

/// `yes`/`NO` for a peak RSS against [`STREAM_RSS_TARGET`], or `–` when unmeasured.
fn under_target(peak: Option<f64>) -> &'static str {
    match peak {
        Some(peak) if peak < STREAM_RSS_TARGET => "yes",
        Some(_) => "NO",
        None => "–",
    }
}

/// The size of the streamed object, e.g. `1.0 GiB` or `128 MiB`.
fn format_stream_size(bytes: Option<f64>) -> String {
    match bytes {
        Some(bytes) if bytes >= 1024.0 * MIB => format!("{:.1} GiB", bytes / 1024.0 / MIB),
        Some(bytes) => format!("{:.0} MiB", bytes / MIB),
        None => "–".to_owned(),
    }
}

/// Renders `report_s3.md`.
fn render_s3_report(inputs: &S3ReportInputs) -> String {
    let mut out = String::new();
    let rust_cases = inputs.rust.as_ref().map(case_list).unwrap_or_default();
    let dagster_cases = inputs.dagster.as_ref().map(case_list).unwrap_or_default();
    let dagster_numbers = |case: &str| {
        dagster_cases
            .iter()
            .find(|(name, _)| name == case)
            .map(|(_, numbers)| *numbers)
    };
    let dagster_field = |key: &str| {
        inputs
            .dagster
            .as_ref()
            .ok()
            .and_then(|file| header_field(file, key))
    };

    let _ = writeln!(
        out,
        "# iomanager vs Dagster on S3: side-by-side benchmark\n"
    );
    let _ = writeln!(out, "- Date: {}", inputs.date);
    let _ = writeln!(out, "- Command: `{}`", inputs.command_line);
    let machine = &inputs.machine;
    let _ = writeln!(
        out,
        "- Machine: {} CPUs ({}), {} memory, kernel {}",
        machine.cpus, machine.cpu_model, machine.memory, machine.kernel
    );
    let _ = writeln!(
        out,
        "- S3 server: moto {MOTO_VERSION} (`moto_server` from `target/services-venv`) at {}, \
         ONE process serving both sides (iomanager first, then Dagster), bucket `{}`",
        dagster_field("endpoint").unwrap_or_else(|| "127.0.0.1".to_owned()),
        dagster_field("bucket").unwrap_or_else(|| BUCKET.to_owned()),
    );
    match &inputs.dagster {
        Ok(_) => {
            let field = |key| dagster_field(key).unwrap_or_else(|| "?".to_owned());
            let _ = writeln!(
                out,
                "- Dagster {} with dagster-aws {} (`S3PickleIOManager`, boto3 {}) on Python {} \
                 (quick: {}, repetitions: {}, DEBUG logs: {})",
                field("dagster_version"),
                field("dagster_aws_version"),
                field("boto3_version"),
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
            let _ = writeln!(
                out,
                "- iomanager results: {} case(s){}",
                rust_cases.len(),
                header_field(file, "quick")
                    .map(|quick| format!(" (quick: {quick})"))
                    .unwrap_or_default()
            );
        }
        Err(message) => {
            let _ = writeln!(out, "- iomanager results: {message}");
        }
    }
    let streams: Vec<&(String, CaseNumbers)> = rust_cases
        .iter()
        .filter(|(case, _)| is_stream(case))
        .collect();
    if !streams.is_empty() {
        let peaks: Vec<String> = streams
            .iter()
            .map(|(case, numbers)| {
                format!(
                    "{} +{}",
                    case.rsplit('/').next().unwrap_or(case),
                    format_megabytes(numbers.peak_rss_extra_bytes)
                )
            })
            .collect();
        let all_under = streams
            .iter()
            .all(|(_, numbers)| under_target(numbers.peak_rss_extra_bytes) == "yes");
        let _ = writeln!(
            out,
            "- Streaming ({} through `put_stream`/`get_stream`): peak RSS {}: {} the 200 MiB \
             target",
            format_stream_size(streams[0].1.bytes),
            peaks.join(", "),
            if all_under { "under" } else { "NOT under" }
        );
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
             Dagster peak RSS extra | peak RSS under 200 MiB |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|:-:|");
        for (case, rust) in &rust_cases {
            let dagster = dagster_numbers(case);
            let rust_rate = s3_rate(case, rust);
            let dagster_rate = dagster.and_then(|numbers| s3_rate(case, &numbers));
            let ratio = rust_rate.zip(dagster_rate).map(|(a, b)| a / b);
            let dagster_label = match dagster {
                Some(_) => format_s3_rate(case, dagster_rate),
                None if is_stream(case) => "no counterpart".to_owned(),
                None => format!("no `{case}`"),
            };
            let target = if is_stream(case) {
                under_target(rust.peak_rss_extra_bytes)
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "| `{case}` | {} | {dagster_label} | {} | {} | {} | {target} |",
                format_s3_rate(case, rust_rate),
                format_ratio(ratio),
                format_megabytes(rust.peak_rss_extra_bytes),
                format_megabytes(dagster.and_then(|numbers| numbers.peak_rss_extra_bytes)),
            );
        }
    }

    write_unmatched_and_raw(
        &mut out,
        &rust_cases,
        &dagster_cases,
        |name| rust_cases.iter().any(|(case, _)| case == name),
        |case, numbers| format_s3_rate(case, s3_rate(case, numbers)),
    );

    let _ = writeln!(
        out,
        "\n## Notes\n\n\
         - Rates: values/s (`count / seconds`) for `s3_small_values` and `s3_partitions_1000`, \
         MB/s (`bytes / seconds`, MB = 2^20 bytes) for `s3_buffer_100mb` and `s3_stream_1gib`. \
         The ratio is iomanager's rate over Dagster's: above 1 means iomanager is faster. \
         Every number is the median of the repetitions of the I/O calls alone (contexts and \
         values built beforehand).\n\
         - One moto server answers both sides, one side after the other, so both pay the same \
         server; moto is a Python server, so absolute rates say little about AWS and the \
         server's share of every request narrows the ratios. moto serves requests from Python \
         threads under one interpreter lock, so requests in flight at once (partitions, \
         multipart parts) gain little against it. Every repetition writes under a fresh key \
         prefix, deleted afterwards (untimed), so Dagster's existence check before each write \
         (a GET answered 404) never finds an object to delete.\n\
         - `s3_small_values`: both sides store the values one after the other, then load them \
         one after the other (MessagePack for iomanager, pickle for Dagster).\n\
         - `s3_buffer_100mb`: iomanager stores raw bytes through `BytesCodec` (a checksummed \
         envelope), as a multipart upload above 16 MiB (8 MiB parts, 4 in flight); Dagster \
         pickles the `bytes` and uploads them with boto3's `upload_fileobj` (s3transfer: \
         multipart above 8 MiB, 8 MiB parts, up to 10 threads).\n\
         - `s3_partitions_1000`: iomanager stores the partitions with one \
         `handle_output_partitions` call and loads them with one `load_partitions` call, both \
         with at most 16 partitions in flight; Dagster stores one `handle_output` per \
         partition and its `UPathIOManager` loads the partitions of the one input one after \
         the other. Each partition write costs iomanager one HEAD (is there an \
         unpartitioned object to replace?) besides the PUT, and Dagster one GET (the \
         existence check) besides the PUT.\n\
         - `s3_stream_1gib` (iomanager only: a Dagster I/O manager always holds the whole \
         value): `S3Storage::put_stream` fed by a generator of 8 MiB chunks, and `get_stream` \
         consumed chunk by chunk; it runs first in the bench process, before any large buffer \
         has passed through the allocator. The target is a peak RSS increase under 200 MiB.\n\
         - Peak RSS extra is the growth of the peak resident set during the call (`VmHWM` \
         after minus `VmRSS` before, with the peak reset through `/proc/self/clear_refs`), the \
         largest over the repetitions. A buffer smaller than glibc's largest mmap threshold \
         (32 MiB, as in `--quick`) can reuse heap memory freed by an earlier case, and then \
         shows less than its size.\n\
         - Clients: aws-sdk-s3 with iomanager's S3 defaults (request checksums only where an \
         operation requires them, on a custom endpoint); Dagster's `S3Resource` with an \
         endpoint, static keys and a region, boto3 otherwise at its defaults (recent boto3 \
         adds a CRC32 checksum to every upload and validates it on download: \
         `when_supported`). See \
         `crates/iomanager-s3/benches/s3_vs_dagster.rs` and \
         `benches/dagster/bench_dagster_s3.py`."
    );
    out
}

/// Unit tests of the argument parsing and the report.
#[cfg(test)]
mod tests {
    use super::*;

    /// Converts string literals to `OsString`s.
    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// The flag is recognised before `--` only; the other options are taken out.
    #[test]
    fn parses_args() {
        assert!(requested(&os(&["--quick", FLAG])));
        assert!(!requested(&os(&["--", FLAG])));
        assert!(!requested(&os(&["--compare-dagster"])));
        assert_eq!(
            S3BenchArgs::parse(os(&[FLAG, "--quick", "--", "--quick"])),
            Ok(S3BenchArgs {
                quick: true,
                report_only: false,
                cargo_bench_args: os(&["--", "--quick"]),
            })
        );
        assert!(
            S3BenchArgs::parse(os(&[FLAG, "--report-only"])).is_ok_and(|args| args.report_only)
        );
        assert!(S3BenchArgs::parse(os(&[FLAG, "--compare-dagster"])).is_err());
    }

    /// Buffers and streams are in MB/s, the rest in values/s.
    #[test]
    fn picks_units() {
        let numbers = CaseNumbers {
            seconds: 0.5,
            count: Some(1_000.0),
            bytes: Some(100.0 * MIB),
            peak_rss_extra_bytes: None,
        };
        let rate = |case| format_s3_rate(case, s3_rate(case, &numbers));
        assert_eq!(rate("s3_small_values/s3/store"), "2,000 values/s");
        assert_eq!(rate("s3_partitions_1000/s3/load"), "2,000 values/s");
        assert_eq!(rate("s3_buffer_100mb/s3/store"), "200.0 MB/s");
        assert_eq!(rate("s3_stream_1gib/s3/load"), "200.0 MB/s");
        assert_eq!(under_target(Some(199.0 * MIB)), "yes");
        assert_eq!(under_target(Some(200.0 * MIB)), "NO");
        assert_eq!(under_target(None), "–");
    }

    /// The report pairs cases by name and gives the streaming rows their RSS verdict.
    #[test]
    fn renders_report() {
        let rust = Json::parse(
            r#"{"quick": false, "results": {
                "s3_small_values/s3/store": {"seconds": 1.0, "count": 1000, "bytes": 200000,
                    "peak_rss_extra_bytes": null},
                "s3_buffer_100mb/s3/load": {"seconds": 0.5, "count": 1, "bytes": 104857600,
                    "peak_rss_extra_bytes": 104857600},
                "s3_stream_1gib/s3/store": {"seconds": 4.0, "count": 1,
                    "bytes": 1073741824, "peak_rss_extra_bytes": 52428800},
                "s3_stream_1gib/s3/load": {"seconds": 2.0, "count": 1,
                    "bytes": 1073741824, "peak_rss_extra_bytes": 262144000}}}"#,
        );
        let dagster = Json::parse(
            r#"{"dagster_version": "1.13.29", "dagster_aws_version": "0.29.29",
                "boto3_version": "1.40.0", "python": "3.11.7", "quick": false, "repeats": 3,
                "debug_logs": false, "endpoint": "http://127.0.0.1:4242",
                "bucket": "iomanager-bench", "results": {
                "s3_small_values/s3/store": {"seconds": 4.0, "count": 1000, "bytes": 300000,
                    "peak_rss_extra_bytes": null, "runs_seconds": [4.0]},
                "s3_buffer_100mb/s3/load": {"seconds": 1.0, "count": 1, "bytes": 104857600,
                    "peak_rss_extra_bytes": 209715200, "runs_seconds": [1.0]}}}"#,
        );
        let inputs = S3ReportInputs {
            command_line: "cargo xtask bench --compare-dagster-s3".to_owned(),
            date: utc_timestamp(0),
            machine: MachineInfo {
                cpus: "2".to_owned(),
                cpu_model: "Example CPU".to_owned(),
                memory: "23.5 GiB".to_owned(),
                kernel: "6.1.0".to_owned(),
            },
            rust,
            dagster,
        };
        let report = render_s3_report(&inputs);
        assert!(report.contains("`cargo xtask bench --compare-dagster-s3`"));
        assert!(
            report.contains("at http://127.0.0.1:4242, ONE process"),
            "{report}"
        );
        assert!(report.contains("dagster-aws 0.29.29"), "{report}");
        assert!(
            report.contains(
                "| `s3_small_values/s3/store` | 1,000 values/s | 250 values/s | 4.00× | – | – |  |"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "| `s3_buffer_100mb/s3/load` | 200.0 MB/s | 100.0 MB/s | 2.00× | 100.0 MB | \
                 200.0 MB |  |"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "| `s3_stream_1gib/s3/store` | 256.0 MB/s | no counterpart | – | 50.0 MB | – | \
                 yes |"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "| `s3_stream_1gib/s3/load` | 512.0 MB/s | no counterpart | – | 250.0 MB | – | NO |"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "- Streaming (1.0 GiB through `put_stream`/`get_stream`): peak RSS store +50.0 MB, \
                 load +250.0 MB: NOT under the 200 MiB target"
            ),
            "{report}"
        );

        let missing = S3ReportInputs {
            rust: Err("`target/iomanager-bench/rust_s3.json` is missing".to_owned()),
            dagster: Err("`target/iomanager-bench/dagster_s3.json` is missing".to_owned()),
            ..inputs
        };
        let report = render_s3_report(&missing);
        assert!(report.contains("- iomanager results: `target/iomanager-bench/rust_s3.json`"));
        assert!(report.contains("- Dagster results: `target/iomanager-bench/dagster_s3.json`"));
        assert!(report.contains("No iomanager cases to compare"));
    }
}
