//! `berth bench URL`: zot's `zb`. Runs each test (pushes, pulls, catalog,
//! mixes) with `-c` clients for `-n` requests and reports counts by status
//! class, requests/s, MB/s and latency percentiles (pulls add the time to
//! first byte of each step). With `--compare URL2` every test runs against
//! both registries in alternating rounds (A, B, A, B …), so a noisy
//! machine affects both alike, and the report gives the ratio A/B.

mod report;
mod search;
mod stats;
mod workloads;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_client::{Client, ClientError};
use indicatif::{ProgressBar, ProgressStyle};

use stats::Sample;
pub(crate) use stats::Summary;
use workloads::{Runner, Test};

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// A readable report.
    Stdout,
    /// Every figure as JSON, on standard output.
    Json,
    /// `ci-cd.json` in the work directory: `[{name, unit, value}]`, as zb
    /// writes it.
    #[value(name = "ci-cd")]
    CiCd,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// The registry, e.g. http://127.0.0.1:8080.
    pub(crate) url: String,
    /// Clients at once.
    #[arg(short = 'c', long, default_value_t = 1)]
    pub(crate) concurrency: usize,
    /// Requests per test.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub(crate) requests: usize,
    /// Credentials, user:password.
    #[arg(short = 'A', long = "auth")]
    pub(crate) auth: Option<String>,
    /// The repository the tests push to and pull from.
    #[arg(short = 'r', long, default_value = "berth-bench")]
    pub(crate) repo: String,
    /// Where output files (ci-cd.json) go (default: the current directory).
    #[arg(short = 'd', long = "workdir")]
    pub(crate) workdir: Option<PathBuf>,
    /// Only the tests whose name matches this regular expression.
    #[arg(short = 't', long = "test")]
    pub(crate) test: Option<String>,
    /// List the tests and exit.
    #[arg(short = 'l', long = "list")]
    pub(crate) list: bool,
    /// Leave what the tests pushed.
    #[arg(long)]
    pub(crate) skip_cleanup: bool,
    /// stdout, json or ci-cd.
    #[arg(short = 'o', long = "output-format", value_enum, default_value_t = Output::Stdout)]
    pub(crate) output: Output,
    /// A second registry: every test runs against both, alternating.
    #[arg(long)]
    pub(crate) compare: Option<String>,
    /// Rounds per registry in a comparison.
    #[arg(long, default_value_t = 4)]
    pub(crate) rounds: usize,
    /// Size of each PATCH of the chunked-push tests, in MiB.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) chunk_mib: u16,
    /// Search tests: repositories in the data set.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) search_repos: usize,
    /// Search tests: tags of each of those repositories.
    #[arg(long, default_value_t = 10)]
    pub(crate) search_tags: usize,
    /// Search tests: tags of the one large repository.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) search_big_tags: usize,
}

/// Why a bench cannot run; its `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// `-c` or `-n` is zero.
    #[error("-c and -n must be above zero")]
    Zero,
    /// `-t` is no regular expression.
    #[error("-t: {0}")]
    Filter(#[from] regex::Error),
    /// `-t` matches no test.
    #[error("-t: no test matches")]
    NoTest,
    /// The async runtime cannot start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A registry's URL or credentials cannot make a client.
    #[error("{url}: {source}")]
    Client {
        url: String,
        #[source]
        source: ClientError,
    },
    /// A registry does not answer the ping.
    #[error("{url}: not a working registry: {source}")]
    Ping {
        url: String,
        #[source]
        source: ClientError,
    },
    /// A test's untimed set-up failed.
    #[error("{url}: setting up {test:?}: {source}")]
    Setup {
        url: String,
        test: String,
        #[source]
        source: ClientError,
    },
    /// The report file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the bench; the error is one line.
pub(crate) fn run(args: BenchArgs) -> Result<(), BenchError> {
    let selected = select(&args)?;
    if args.list {
        for t in &selected {
            println!("{}", t.name);
        }
        return Ok(());
    }
    if args.concurrency == 0 || args.requests == 0 {
        return Err(BenchError::Zero);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    runtime.block_on(run_all(&args, &selected))
}

fn select(args: &BenchArgs) -> Result<Vec<Test>, BenchError> {
    let filter = match &args.test {
        Some(t) => Some(regex::Regex::new(t)?),
        None => None,
    };
    let tests: Vec<Test> = workloads::all()
        .into_iter()
        .filter(|t| filter.as_ref().is_none_or(|f| f.is_match(&t.name)))
        .collect();
    if tests.is_empty() {
        return Err(BenchError::NoTest);
    }
    Ok(tests)
}

async fn run_all(args: &BenchArgs, tests: &[Test]) -> Result<(), BenchError> {
    let mut registries = vec![args.url.clone()];
    registries.extend(args.compare.clone());
    let clients = registries
        .iter()
        .map(|url| {
            Client::new(url, args.auth.as_deref()).map_err(|source| BenchError::Client {
                url: url.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for c in &clients {
        c.ping().await.map_err(|source| BenchError::Ping {
            url: c.base().to_string(),
            source,
        })?;
    }
    let rounds = if clients.len() > 1 {
        args.rounds.max(1)
    } else {
        1
    };
    let mut search_everywhere = true;
    for c in &clients {
        let endpoints = c.extension_endpoints().await.unwrap_or_default();
        search_everywhere &= endpoints.iter().any(|e| e == "/v2/_zot/ext/search");
    }
    let mut summaries: Vec<Vec<Summary>> = Vec::new();
    for test in tests {
        if workloads::is_search(test.kind) && !search_everywhere {
            eprintln!(
                "note: skipping {:?}: a registry does not list the search extension",
                test.name
            );
            continue;
        }
        let mut runners = Vec::new();
        for c in &clients {
            let set = search::SearchSet {
                repos: args.search_repos,
                tags: args.search_tags.max(1),
                big_tags: args.search_big_tags.max(1),
            };
            let mut r = Runner::new(c.clone(), &args.repo, test.kind, set);
            r.chunk = usize::from(args.chunk_mib) * workloads::MIB;
            r.setup().await.map_err(|source| BenchError::Setup {
                url: c.base().to_string(),
                test: test.name.clone(),
                source,
            })?;
            runners.push(Arc::new(r));
        }
        let bar = progress(args.requests * clients.len(), &test.name);
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); runners.len()];
        let mut walls = vec![Duration::ZERO; runners.len()];
        let per_round = args.requests.div_ceil(rounds);
        let mut done = 0;
        while done < args.requests {
            let n = per_round.min(args.requests - done);
            for (i, runner) in runners.iter().enumerate() {
                let (s, wall) = round(runner, done as u64, n, args.concurrency, &bar).await;
                samples[i].extend(s);
                walls[i] += wall;
            }
            done += n;
        }
        bar.finish_and_clear();
        let mut row = Vec::new();
        for (i, runner) in runners.iter().enumerate() {
            row.push(Summary::of(
                &test.name,
                &registries[i],
                &samples[i],
                walls[i],
            ));
            if !args.skip_cleanup {
                let refused = runner.cleanup().await;
                if refused > 0 {
                    eprintln!(
                        "note: {}: {refused} manifests could not be deleted after {:?}",
                        registries[i], test.name
                    );
                }
            }
        }
        if args.output == Output::Stdout {
            print!("{}", report::text(&row));
        }
        summaries.push(row);
    }
    match args.output {
        Output::Stdout => {
            if clients.len() > 1 {
                print!("{}", report::comparison(&summaries));
            }
        }
        Output::Json => println!("{}", report::json(&summaries)),
        Output::CiCd => {
            let dir = args.workdir.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("ci-cd.json");
            std::fs::write(&path, report::ci_cd(&summaries)).map_err(|source| {
                BenchError::Write {
                    path: path.clone(),
                    source,
                }
            })?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// `n` requests from `first` on, with `concurrency` clients; returns the
/// samples and the time they took: the busiest client's time in requests,
/// which leaves out making push data (done before each request's clock
/// starts, as zb makes its images beforehand).
async fn round(
    runner: &Arc<Runner>,
    first: u64,
    n: usize,
    concurrency: usize,
    bar: &ProgressBar,
) -> (Vec<Sample>, Duration) {
    let next = Arc::new(AtomicU64::new(first));
    let end = first + n as u64;
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(n) {
        let (runner, next, bar) = (runner.clone(), next.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                samples.push(runner.request(i).await);
                bar.inc(1);
            }
            samples
        }));
    }
    let mut samples = Vec::with_capacity(n);
    let mut busiest = Duration::ZERO;
    for w in workers {
        if let Ok(s) = w.await {
            busiest = busiest.max(s.iter().map(|x| x.latency).sum());
            samples.extend(s);
        }
    }
    (samples, busiest)
}

/// A progress bar on standard error when it is a terminal; hidden otherwise.
fn progress(len: usize, name: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    bar
}
