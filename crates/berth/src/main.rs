//! `berth`: the registry server and its tools in one binary. This file only
//! reads arguments; the work is in `berth-server`.

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use berth_server::config::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "An OCI container registry")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry. Without CONFIG: 127.0.0.1:8080, data in ./berth-data.
    Serve {
        /// A config file in zot's schema (.json, .yaml, .yml or .toml).
        config: Option<PathBuf>,
        /// Rebuild the metadata store from storage before serving.
        #[arg(long)]
        force_reparse: bool,
    },
    /// Check a config file and exit non-zero, naming the bad key, if it is not valid.
    Verify {
        /// The config file to check.
        config: PathBuf,
    },
    /// Re-hash and check every image offline (the server must be stopped);
    /// exit non-zero if anything is affected. Changes nothing.
    Scrub {
        /// The server's config file.
        config: PathBuf,
        /// Output: an aligned table, or JSON rows.
        #[arg(long, value_enum, default_value = "table")]
        format: ScrubFormat,
    },
    /// Measure a registry the way zot's zb does (and, with --compare, two
    /// side by side).
    Bench(bench::BenchArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScrubFormat {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // Like zot's, verify checks the config itself; files it names (TLS)
        // are read by serve, which refuses to start without them.
        Command::Verify { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("berth: invalid config: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(args) => match bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("berth bench: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Scrub { config, format } => match Config::load(&config) {
            Ok(c) => match scrub(c, format) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("berth: {e}");
                    ExitCode::from(2)
                }
            },
            Err(e) => {
                eprintln!("berth: invalid config: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve {
            config,
            force_reparse,
        } => {
            let config_path = config.clone();
            let config = match config {
                Some(path) => match load(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("berth: invalid config: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                None => Config::embedded_default(),
            };
            match serve(config, config_path, force_reparse) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Loads a config and checks what it names on disk (TLS files).
fn load(path: &std::path::Path) -> Result<Config, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    if let Some(tls) = &config.http.tls {
        berth_server::tls::server_config(tls).map_err(|e| e.to_string())?;
    }
    Ok(config)
}

fn serve(config: Config, config_path: Option<PathBuf>, force_reparse: bool) -> Result<(), String> {
    berth_server::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        // The port first: a server already running on it must not see its
        // storage opened a second time.
        let addr = format!("{}:{}", config.http.address, config.http.port.0);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("http: cannot listen on {addr}: {e}"))?;
        let auth =
            berth_server::auth::Auth::from_config(&config.http, &config.storage.root_directory)
                .map_err(|e| e.to_string())?;
        let mut state = berth_server::server::build_state_with(&config, force_reparse)
            .await
            .map_err(|e| {
                // Name the key the failing part comes from.
                let key = match &e {
                    berth_server::storage::StorageError::Backend { location, .. }
                        if location == "the metadata store" =>
                    {
                        "storage.cacheDriver"
                    }
                    berth_server::storage::StorageError::Backend { .. } => "storage.storageDriver",
                    _ => "storage.rootDirectory",
                };
                format!("{key}: {e}")
            })?;
        let _htpasswd_reload = auth
            .as_ref()
            .and_then(|a| a.htpasswd())
            .map(|h| h.spawn_reload());
        state.auth = auth;
        state.audit = berth_server::api::audit::from_config(&config.log)?;
        #[cfg(feature = "events")]
        let _events = match &config.extensions.events {
            Some(e) => berth_server::ext::events::spawn(e, &state.registry)?,
            None => Vec::new(),
        };
        #[cfg(feature = "metrics")]
        let _metrics = match config.extensions.metrics_path() {
            Some(path) => {
                let m = berth_server::ext::metrics::Metrics::new(&path);
                let tasks = berth_server::ext::metrics::spawn(&m, &state.registry);
                state.metrics = Some(m);
                tasks
            }
            None => Vec::new(),
        };
        let _config_reload =
            config_path.map(|p| berth_server::server::spawn_config_reload(p, &state));
        // Background work starts once the port is ours.
        let _gc = berth_server::server::spawn_gc(&state, &config.storage);
        let _dedupe = berth_server::server::spawn_dedupe_reconcile(&state);
        let _scrub = config
            .extensions
            .scrub_interval()
            .map(|i| berth_server::server::spawn_scrub(&state, i));
        let local = listener
            .local_addr()
            .map_err(|e| format!("http: cannot read the bound address: {e}"))?;
        let tls = match &config.http.tls {
            Some(t) => Some((
                t.clone(),
                berth_server::tls::server_config(t).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        tracing::info!(
            root = %config.storage.root_directory.display(),
            "berth {} listening on {}://{local}",
            env!("CARGO_PKG_VERSION"),
            if tls.is_some() { "https" } else { "http" }
        );
        let registry = state.registry.clone();
        let shutdown = berth_server::server::shutdown_signal();
        let served = match tls {
            Some((settings, server_config)) => {
                let live = axum_server::tls_rustls::RustlsConfig::from_config(server_config);
                let _reload = berth_server::tls::spawn_reload(settings, live.clone());
                berth_server::server::run_tls(listener, state, live, shutdown).await
            }
            None => berth_server::server::run(listener, state, shutdown).await,
        }
        .map_err(|e| format!("server error: {e}"));
        registry.flush_meta();
        served
    })
}

/// Runs an offline scrub; `Ok(true)` when nothing is affected.
fn scrub(config: Config, format: ScrubFormat) -> Result<bool, String> {
    let port = config.http.port.0;
    if port != 0 {
        let addr = format!("{}:{port}", config.http.address);
        if let Err(e) = std::net::TcpListener::bind(&addr)
            && e.kind() == std::io::ErrorKind::AddrInUse
        {
            return Err(format!(
                "scrub runs offline, but something listens on {addr}: stop the server first"
            ));
        }
    }
    let settings = config.storage.roots();
    for r in &settings {
        if r.storage_driver.is_none() && !r.root_directory.is_dir() {
            let key = match &r.prefix {
                None => "storage.rootDirectory".to_string(),
                Some(p) => format!("storage.subPaths./{p}.rootDirectory"),
            };
            return Err(format!(
                "{key}: {} is not a directory",
                r.root_directory.display()
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let rows = runtime.block_on(async move {
        let mut main = None;
        let mut sub = Vec::new();
        for r in &settings {
            // Opened without the dedupe index: scrub writes nothing.
            let store = berth_server::server::open_root(&config, r, None, true)
                .await
                .map_err(|e| e.to_string())?;
            match &r.prefix {
                None => main = Some(store),
                Some(p) => sub.push((p.clone(), store)),
            }
        }
        let main = main.ok_or("no main storage root")?;
        let roots = berth_server::storage::Roots::new(main, sub);
        berth_server::scrub::scrub_all(&roots)
            .await
            .map_err(|e| e.to_string())
    })?;
    match format {
        ScrubFormat::Table => print!("{}", berth_server::scrub::render_table(&rows)),
        ScrubFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        ),
    }
    Ok(!rows.iter().any(|r| r.is_affected()))
}
