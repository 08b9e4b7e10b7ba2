//! `local-stack serve`: every function's handler on `127.0.0.1:$LOCAL_API_PORT`, behind
//! an emulated API Gateway and JWT authorizer, with the stream mappings feeding `assign`
//! and `events` (which publishes to the local EventBridge API);
//! the console at `/console/`, signing in with the local identity provider.
//! `local-stack token TENANT`: a token that the server accepts, for that tenant.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use evaluation::stream;
use local_stack::idp::Idp;
use local_stack::jwt::{self, DEFAULT_TENANT_CLAIM, JwtConfig};
use local_stack::{server, streams};

#[derive(Parser)]
#[command(
    name = "local-stack",
    version,
    about = "The product on one machine, over a local DynamoDB API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route and the console, and poll the table's stream (configured by
    /// environment variables).
    Serve {
        /// Serve the console's files from this folder, read on every request, instead of
        /// the embedded ones (for working on the console: functions/console/assets).
        #[arg(long)]
        console_dir: Option<std::path::PathBuf>,
    },
    /// Print an HS256 token for TENANT, signed with LOCAL_JWT_SECRET and carrying
    /// LOCAL_JWT_ISSUER / LOCAL_JWT_AUDIENCE (local defaults when unset).
    Token {
        tenant: String,
        /// Lifetime of the token.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..))]
        ttl_seconds: i64,
        /// The claim that carries the tenant (default: TENANT_CLAIM, else tenant_id).
        #[arg(long)]
        claim: Option<String>,
    },
}

/// Local defaults, applied only when the variable is unset, so that a bare
/// `cargo run -p local-stack -- serve` works against `./infra/moto.sh start`.
const LOCAL_DEFAULTS: &[(&str, &str)] = &[
    ("TABLE_NAME", "segmentation-local"),
    ("EVENT_BUS_NAME", "segmentation-local-events"),
    ("DYNAMODB_ENDPOINT", "http://127.0.0.1:5000"),
    ("CURSOR_SECRET", "local-cursor-secret-0123456789"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// How long to wait for the DynamoDB API to come up.
const STORE_WAIT: Duration = Duration::from_secs(15);

/// Why `local-stack` stopped with an error.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("the tenant must not be empty")]
    EmptyTenant,
    #[error("LOCAL_API_PORT must be a port number, got `{0}`")]
    Port(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Start(#[from] rules_api::StartError),
    #[error(transparent)]
    Config(#[from] store::ConfigError),
    #[error("the table could not be created within {}s: {source}", STORE_WAIT.as_secs())]
    Table { source: store::StoreError },
    #[error("the event bus could not be created: {0}")]
    Bus(events::PublishError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("server failed: {0}")]
    Server(std::io::Error),
    #[error(transparent)]
    Streams(#[from] streams::Error),
}

fn main() -> ExitCode {
    match run_command(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-stack: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(command: Command) -> Result<(), Error> {
    match command {
        Command::Serve { console_dir } => serve(console_dir),
        Command::Token {
            tenant,
            ttl_seconds,
            claim,
        } => {
            if tenant.trim().is_empty() {
                return Err(Error::EmptyTenant);
            }
            let claim = claim
                .or_else(|| std::env::var("TENANT_CLAIM").ok().filter(|c| !c.is_empty()))
                .unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_owned());
            let config = JwtConfig::from_env();
            let claims = jwt::dev_claims(&config, &claim, &tenant, ttl_seconds, jwt::now());
            println!("{}", jwt::sign(&config.secret, &claims));
            Ok(())
        }
    }
}

fn serve(console_dir: Option<std::path::PathBuf>) -> Result<(), Error> {
    for (name, value) in LOCAL_DEFAULTS {
        if std::env::var_os(name).is_none() {
            // SAFETY: no other thread exists yet; the runtime is built below.
            unsafe { std::env::set_var(name, value) };
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?
        .block_on(run(console_dir))
}

async fn run(console_dir: Option<std::path::PathBuf>) -> Result<(), Error> {
    let port: u16 = match std::env::var("LOCAL_API_PORT") {
        Ok(raw) if !raw.is_empty() => raw.parse().map_err(|_| Error::Port(raw))?,
        _ => 3000,
    };
    // The API reads and writes workbooks here, as the deployed customers function does.
    let api = api::App::from_env()
        .await
        .map_err(rules_api::StartError::from)?
        .with_workbooks(std::sync::Arc::new(workbook::Workbooks));
    let app = rules_api::App::new(api)?;
    wait_for_table(&app).await?;
    let bus = events::EventBridge::connect(
        &store::StoreConfig::from_env()?,
        events::bus_name_from_env()?,
    )
    .await;
    bus.ensure_bus().await.map_err(Error::Bus)?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| Error::Listen { port, source })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("listening on http://127.0.0.1:{port}");
    let streams = async {
        let polled = stream_poller(&app).await;
        if let Err(err) = &polled {
            tracing::error!(error = %err, "the stream poller stopped; customers are not assigned");
        }
        polled
    };
    let publishing = async {
        let polled = events_poller(bus).await;
        if let Err(err) = &polled {
            tracing::error!(error = %err, "the events poller stopped; no events are published");
        }
        polled
    };
    let idp = Idp::from_env(JwtConfig::from_env());
    let mut console = console::Console::new(Some(idp.sign_in()));
    if let Some(folder) = console_dir {
        console = console.from_folder(folder);
    }
    let site = server::Site { console, idp };
    let server = async {
        server::serve(
            listener,
            app.clone(),
            JwtConfig::from_env(),
            Some(site),
            shutdown_signal(),
        )
        .await
        .map_err(Error::Server)
    };
    let (served, polled, published) = tokio::join!(server, streams, publishing);
    polled?;
    published?;
    served
}

/// Plays the Lambda event source mapping of `template.yaml`: polls the table's stream
/// and hands the assign handler the same batches, filters and retries. Off with
/// `LOCAL_STREAMS=off`; its checkpoint survives restarts (`LOCAL_STREAM_CHECKPOINT`).
async fn stream_poller(app: &rules_api::App) -> Result<(), Error> {
    if std::env::var("LOCAL_STREAMS").is_ok_and(|v| v == "off") {
        return Ok(());
    }
    let config = store::StoreConfig::from_env()?;
    let checkpoint = stream_checkpoint(&config);
    let mapping = streams::EventSourceMapping {
        filters: stream::filter_patterns(),
        batch_size: stream::BATCH_SIZE,
        maximum_retry_attempts: stream::MAXIMUM_RETRY_ATTEMPTS,
        bisect_batch_on_function_error: true,
        poll_interval: Duration::from_millis(250),
        checkpoint,
    };
    let client = streams::client(&config).await;
    let assigner = stream::Assigner::new(app.runner().clone());
    streams::run(
        client,
        config.table_name,
        mapping,
        move |event| {
            let assigner = assigner.clone();
            async move { Box::pin(assigner.handle(event)).await }
        },
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// The assign mapping's checkpoint file: `LOCAL_STREAM_CHECKPOINT`, else
/// `.local/streams/<table>.json`.
fn stream_checkpoint(config: &store::StoreConfig) -> std::path::PathBuf {
    match std::env::var("LOCAL_STREAM_CHECKPOINT") {
        Ok(path) if !path.is_empty() => path.into(),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.local/streams")
            .join(format!("{}.json", config.table_name)),
    }
}

/// Plays the events function's event source mapping, the stream's second reader: its
/// own filters, retries and checkpoint (in `events/` beside the assign mapping's, with
/// its own `on-failure.jsonl`), publishing to `bus` on the local EventBridge API (moto,
/// at `DYNAMODB_ENDPOINT`). Off with the assign mapping (`LOCAL_STREAMS=off`).
async fn events_poller(bus: events::EventBridge) -> Result<(), Error> {
    if std::env::var("LOCAL_STREAMS").is_ok_and(|v| v == "off") {
        return Ok(());
    }
    let config = store::StoreConfig::from_env()?;
    let assign = stream_checkpoint(&config);
    let file = assign.file_name().unwrap_or_default().to_owned();
    let checkpoint = assign.with_file_name("events").join(file);
    let mapping = streams::EventSourceMapping {
        filters: events::stream::filter_patterns(),
        batch_size: events::stream::BATCH_SIZE,
        maximum_retry_attempts: events::stream::MAXIMUM_RETRY_ATTEMPTS,
        bisect_batch_on_function_error: true,
        poll_interval: Duration::from_millis(250),
        checkpoint,
    };
    let client = streams::client(&config).await;
    let publisher = events::Publisher::new(bus);
    streams::run(
        client,
        config.table_name,
        mapping,
        move |event| {
            let publisher = publisher.clone();
            async move { publisher.handle(event).await }
        },
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Creates the table if it is missing, retrying while the DynamoDB API starts.
async fn wait_for_table(app: &rules_api::App) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        match app.store().ensure_table().await {
            Ok(()) => return Ok(()),
            Err(err) if started.elapsed() < STORE_WAIT => {
                tracing::debug!(error = %err, "table not ready yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(source) => return Err(Error::Table { source }),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
