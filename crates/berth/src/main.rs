//! `berth`: the registry server and its tools in one binary. This file only
//! reads arguments; the work is in `berth-server`.

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
    },
    /// Check a config file and exit non-zero, naming the bad key, if it is not valid.
    Verify {
        /// The config file to check.
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
        Command::Serve { config } => {
            let config = match config {
                Some(path) => match Config::load(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("berth: invalid config: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                None => Config::embedded_default(),
            };
            match serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve(config: Config) -> Result<(), String> {
    berth_server::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let state = berth_server::server::build_state(&config)
            .await
            .map_err(|e| format!("storage.rootDirectory: {e}"))?;
        let addr = format!("{}:{}", config.http.address, config.http.port.0);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("http: cannot listen on {addr}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("http: cannot read the bound address: {e}"))?;
        tracing::info!(
            root = %config.storage.root_directory.display(),
            "berth {} listening on http://{local}",
            env!("CARGO_PKG_VERSION")
        );
        berth_server::server::run(listener, state, berth_server::server::shutdown_signal())
            .await
            .map_err(|e| format!("server error: {e}"))
    })
}
