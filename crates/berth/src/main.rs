//! `berth`: the registry server and its tools in one binary. This file only
//! reads arguments; the work is in `berth-server` (and, for `berth scan`,
//! in `scan/` over `berth-vuln`).

mod bench;
mod cli;
mod copy;
mod generate;
mod health;
mod login;
mod query;
#[cfg(feature = "scan")]
mod scan;

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use berth_server::config::Config;
use berth_server::server::{self, ServeOptions, Server};
use clap::Parser;

use cli::{Cli, Command, ScrubFormat};

/// Says what went wrong on one line and gives `code`.
fn fail(prefix: &str, e: impl Display, code: u8) -> ExitCode {
    eprintln!("{prefix}{e}");
    ExitCode::from(code)
}

/// Runs `work` on a new runtime; a failure is said and exits with `code`.
fn block_on<T, E: Display>(
    code: u8,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail("berth: cannot start the runtime: ", e, code))?;
    runtime.block_on(work).map_err(|e| fail("berth: ", e, code))
}

fn main() -> ExitCode {
    match Cli::parse().command {
        // Like zot's, verify checks the config itself; files it names (TLS)
        // are read by serve, which refuses to start without them.
        Command::Verify { config } => match Config::load(&config) {
            Ok(c) => {
                for note in &c.notes {
                    eprintln!("berth: note: {note}");
                }
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail("berth: invalid config: ", e, 1),
        },
        Command::Bench(args) => match bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail("berth bench: ", e, 1),
        },
        #[cfg(feature = "scan")]
        Command::Scan(args) => scan::main(&args),
        Command::Completions { shell } => {
            generate::completions(shell);
            ExitCode::SUCCESS
        }
        Command::Man { dir } => match generate::man_pages(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("berth man: {}: ", dir.display()), e, 1),
        },
        Command::Login(args) => match block_on(1, login::login(args)) {
            Ok(done) => {
                println!("{done}");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Logout(args) => match login::logout(args) {
            Ok(done) => {
                println!("{done}");
                ExitCode::SUCCESS
            }
            Err(e) => fail("berth: ", e, 1),
        },
        Command::Remote(cmd) => query::remote(cmd),
        Command::Images { repo, target } => query::images(target, repo),
        Command::Image(args) => query::image(args),
        Command::Cve { command, target } => query::cve(target, command),
        Command::Repos { target } => query::repos(target),
        Command::Search { text, target } => query::search(target, text),
        Command::Referrers { artifact, target } => query::referrers(target, artifact),
        Command::Status { target } => query::status(target),
        Command::Copy(args) => client_command("copy", copy::copy(args)),
        Command::Pull(args) => client_command("pull", copy::pull(args)),
        Command::Push(args) => client_command("push", copy::push(args)),
        Command::Tag(args) => client_command("tag", copy::tag(args)),
        Command::Delete(args) => client_command("delete", copy::delete(args)),
        Command::Inspect(args) => client_command("inspect", copy::inspect(args)),
        Command::Ls(args) => client_command("ls", copy::ls(args)),
        Command::Sync(args) => client_command("sync", copy::sync(args)),
        Command::Health { url } => match block_on(1, health::probe(&url)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Command::Scrub { config, format } => match Config::load(&config) {
            Ok(c) => scrub(&c, format),
            Err(e) => fail("berth: invalid config: ", e, 1),
        },
        Command::Serve {
            config,
            force_reparse,
        } => {
            let loaded = config
                .as_deref()
                .map_or_else(|| Ok(Config::embedded_default()), server::load_config);
            match loaded {
                Ok(c) => serve(
                    &c,
                    ServeOptions {
                        force_reparse,
                        config_path: config,
                    },
                ),
                Err(e) => fail("berth: invalid config: ", e, 1),
            }
        }
    }
}

/// Runs a client command: its output printed, or its failure said on one
/// line (`berth NAME: …`) with exit 1 (130 when interrupted).
fn client_command(
    name: &str,
    work: impl Future<Output = Result<String, copy::CliError>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("berth {name}: cannot start the runtime: "), e, 1),
    };
    let done = runtime.block_on(work);
    // Streams still open (a cut copy) are dropped without waiting.
    runtime.shutdown_background();
    match done {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e @ copy::CliError::Interrupted) => fail(&format!("berth {name}: "), e, 130),
        Err(e) => fail(&format!("berth {name}: "), e, 1),
    }
}

fn serve(config: &Config, options: ServeOptions) -> ExitCode {
    if let Err(e) = berth_server::logging::init(&config.log) {
        return fail("berth: ", e, 1);
    }
    for note in &config.notes {
        tracing::warn!("{note}");
    }
    // Before the server is built: the default of `http.maxConnections`
    // is sized from the limit.
    let open_files = server::raise_open_files_limit();
    let served = block_on(1, async {
        // The port first: a server already running on it must not see its
        // storage opened a second time.
        let listener = server::bind(config).await?;
        let server = Server::build(config, options).await?;
        open_files.log();
        server.run(listener, server::shutdown_signal()).await
    });
    served.map_or_else(|code| code, |()| ExitCode::SUCCESS)
}

/// Runs an offline scrub: success when nothing is affected.
fn scrub(config: &Config, format: ScrubFormat) -> ExitCode {
    let rows = match block_on(2, server::scrub_offline(config)) {
        Ok(rows) => rows,
        Err(code) => return code,
    };
    let shown = match format {
        ScrubFormat::Table => Ok(berth_server::scrub::render_table(&rows)),
        ScrubFormat::Json => serde_json::to_string_pretty(&rows).map(|json| json + "\n"),
    };
    match shown {
        Ok(text) => print!("{text}"),
        Err(e) => return fail("berth: ", e, 2),
    }
    if rows.iter().any(|r| r.is_affected()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
