//! Harness for the HTTP integration tests (`tests/tests/integration/`, one binary, and
//! `tests/tests/hostile_memory.rs`).
//!
//! Each test binary starts its stacks on first use, [`Stack::get`]: a moto server (the
//! local DynamoDB API) and the `local-stack` binary on free ports, with a table of its
//! own. Tests isolate themselves by tenant ([`unique_tenant`]), so they run in
//! parallel against shared stacks. There are two stacks (`API_TESTS_STACKS`), and a
//! test gets the one the fewest running tests use: moto handles one request at a time
//! on one core, and was the bottleneck of the test run with one stack (docs/testing.md).
//! The processes die with the test binary: they are spawned with `PR_SET_PDEATHSIG`
//! from a thread that lives as long as the process.
//!
//! The stack holds no async state, so it can be shared by tests that each run their
//! own tokio runtime (`#[tokio::test]`).
//!
//! moto is started the way every script starts it, `infra/moto.sh run` (its Python is
//! `<repo>/.venv`'s, installed by `./infra/setup.sh`), on a port it picks itself; tokens
//! are signed by `local_stack::jwt`, as `local-stack token` signs them.
//!
//! Environment: `API_TESTS_STACKS` (how many stacks, default 2), `MOTO_SERVER` (instead of `infra/moto.sh run`: a command that takes
//! `infra/moto_server.py`'s `-H HOST -p 0 --port-file FILE`), `LOCAL_API_BIN` (default
//! `<target>/debug/local-stack`, built by `cargo test --workspace` (local-stack's own
//! integration test needs it) or `cargo build -p local-stack --bins`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use local_stack::jwt::{self, JwtConfig};
pub use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

pub const JWT_SECRET: &str = "api-tests-jwt-secret";
pub const JWT_ISSUER: &str = "http://localhost/api-tests-issuer";
pub const JWT_AUDIENCE: &str = "segmentation-api";
pub const TENANT_CLAIM: &str = "tenant_id";
pub const CURSOR_SECRET: &str = "api-tests-cursor-secret-0123456789";
/// The EventBridge bus (on moto) every `local-stack` of the tests publishes to.
pub const EVENT_BUS: &str = "api-tests-events";

const MOTO_START: Duration = Duration::from_secs(30);
const API_START: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// Paths

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// The command that starts moto on a free port and writes the port to `port_file` once
/// it listens: `infra/moto.sh run` (the one way moto is started: the `.venv` Python
/// running `infra/moto_server.py`, see there), or `$MOTO_SERVER` with the same options.
fn moto_command(port_file: &Path) -> Command {
    let mut command = match std::env::var_os("MOTO_SERVER") {
        Some(server) => Command::new(server),
        None => {
            let mut command = Command::new(repo_root().join("infra/moto.sh"));
            command.arg("run");
            command
        }
    };
    command.args(["-H", "127.0.0.1", "-p", "0", "--port-file"]);
    command.arg(port_file);
    command
}

/// The port moto wrote to its port file, once it listens.
fn listening_port(port_file: &Path) -> Option<u16> {
    std::fs::read_to_string(port_file).ok()?.trim().parse().ok()
}

fn local_api_path() -> PathBuf {
    let path = std::env::var_os("LOCAL_API_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug/local-stack"));
    if !path.exists() {
        panic!(
            "local-stack not found at {}: run ./infra/test.sh, or `cargo test --workspace \
             --no-run` (or `cargo build -p local-stack --bins`) first, or set LOCAL_API_BIN",
            path.display()
        );
    }
    if std::env::var_os("LOCAL_API_BIN").is_none() {
        check_fresh(&path);
    }
    path
}

/// Panics when a source of `local-stack` is newer than the binary: `cargo test` does not
/// rebuild other packages' binaries, and testing a stale server hides changes. The
/// sources are the workspace files listed in the binary's dep-info file (`local-stack.d`).
fn check_fresh(binary: &Path) {
    if std::env::var_os("API_TESTS_ALLOW_STALE").is_some() {
        return;
    }
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(built) = modified(binary) else {
        return;
    };
    let Ok(dep_info) = std::fs::read_to_string(binary.with_extension("d")) else {
        return;
    };
    let root = repo_root();
    // `target: dep dep ...`, with spaces inside paths escaped as `\ `.
    let deps = dep_info
        .split_once(": ")
        .map(|(_, deps)| deps)
        .unwrap_or_default();
    let deps = deps.replace("\\ ", "\u{0}");
    for dep in deps.split_whitespace() {
        let dep = PathBuf::from(dep.replace('\u{0}', " "));
        if !dep.starts_with(&root) {
            continue;
        }
        if modified(&dep).is_some_and(|m| m > built) {
            panic!(
                "{} is older than {}: run `cargo test --workspace --no-run` (./infra/test.sh \
                 does) or `cargo build -p local-stack --bins`, or set API_TESTS_ALLOW_STALE=1",
                binary.display(),
                dep.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Processes that die with the test binary

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` from a thread that lives as long as the process, so that
/// `PR_SET_PDEATHSIG` (tied to the spawning thread) fires only when the test binary
/// exits, however it exits.
fn spawn_watched(mut command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    die_with_parent(&mut command);
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("api-tests-spawner".into())
            .spawn(move || {
                for (mut command, reply) in queue {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawn the process spawner thread");
        Mutex::new(jobs)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .expect("the spawner thread is alive");
    answer.recv().expect("the spawner thread answers")
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: i32, ...) -> i32;
        fn getppid() -> i32;
    }
    const PR_SET_PDEATHSIG: i32 = 1;
    const SIGKILL: std::ffi::c_ulong = 9;
    let parent = std::process::id() as i32;
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid)
    // are made, and nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have exited before prctl took effect.
            if getppid() != parent {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// A child process, killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(name: &'static str, mut command: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err_file = file.try_clone().expect("clone log file handle");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file));
        let child = spawn_watched(command).unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child, log }
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits until `ready()` holds; panics with the log if the process exits first or
    /// `limit` passes.
    fn wait_until(&mut self, limit: Duration, ready: impl Fn() -> bool) {
        let started = Instant::now();
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{} exited during startup ({status}); log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            if started.elapsed() > limit {
                panic!(
                    "{} did not become ready within {}s; log {}:\n{}",
                    self.name,
                    limit.as_secs(),
                    self.log.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The status of a plain `GET` on 127.0.0.1:`port`, if anything answers.
fn probe(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}

/// Where this test binary's process logs go.
fn log_dir() -> PathBuf {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
        .unwrap_or_else(|| "tests".into());
    let dir = target_dir().join("api-tests").join(exe);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

// ---------------------------------------------------------------------------------
// The stack

/// moto plus one `local-stack`, shared by the tests of a test binary that lease it.
pub struct Stack {
    /// `http://127.0.0.1:PORT` of the shared local-stack.
    pub base_url: String,
    /// `http://127.0.0.1:PORT` of moto.
    pub moto_url: String,
    pub table: String,
    _moto: Mutex<Proc>,
    _api: Mutex<Proc>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The most stacks a test binary starts, whatever `API_TESTS_STACKS` asks.
const MAX_STACKS: usize = 4;

/// The stacks of this test binary (each started on first use) and how many running
/// tests hold each.
struct Pool {
    stacks: [OnceLock<Stack>; MAX_STACKS],
    holders: Mutex<[usize; MAX_STACKS]>,
    size: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        stacks: Default::default(),
        holders: Mutex::new([0; MAX_STACKS]),
        size: std::env::var("API_TESTS_STACKS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2)
            .clamp(1, MAX_STACKS),
    })
}

/// Which stack this thread's test holds, given back when the thread ends. libtest runs
/// each test on a thread of its own, and a test's code (its `#[tokio::test]` runtime
/// included) calls [`Stack::get`] on that thread, so one test always sees one stack.
struct Lease(usize);

impl Lease {
    fn take() -> Lease {
        let pool = pool();
        let mut holders = pool.holders.lock().unwrap_or_else(|e| e.into_inner());
        let index = (0..pool.size)
            .min_by_key(|&i| holders[i])
            .unwrap_or_default();
        holders[index] += 1;
        Lease(index)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut holders = pool().holders.lock().unwrap_or_else(|e| e.into_inner());
        holders[self.0] -= 1;
    }
}

thread_local! {
    static LEASE: Lease = Lease::take();
}

impl Stack {
    /// The stack of this test (the same for every call of one test), started on first
    /// use (about 1-3 s).
    pub async fn get() -> &'static Stack {
        let index = LEASE.with(|lease| lease.0);
        // Start-up blocks this test's thread only: the stack holds no async state.
        pool().stacks[index].get_or_init(|| Stack::start(index))
    }

    fn start(index: usize) -> Stack {
        let api_bin = local_api_path();
        let logs = log_dir();

        // Named by process: runs of one test binary at once share its log folder.
        let port_file = logs.join(format!("moto-{}-{index}.port", std::process::id()));
        let _ = std::fs::remove_file(&port_file);
        let mut moto = Proc::start(
            "moto",
            moto_command(&port_file),
            logs.join(format!("moto-{index}.log")),
        );
        moto.wait_until(MOTO_START, || listening_port(&port_file).is_some());
        let moto_port = listening_port(&port_file).expect("moto wrote its port");
        let _ = std::fs::remove_file(&port_file);

        let table = format!(
            "api-tests-{}-{index}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default()
        );
        let moto_url = format!("http://127.0.0.1:{moto_port}");
        let (api, api_port) = start_api(
            &api_bin,
            &moto_url,
            &table,
            &[],
            &logs.join(format!("local-stack-{index}.log")),
        );
        Stack {
            base_url: format!("http://127.0.0.1:{api_port}"),
            moto_url,
            table,
            _moto: Mutex::new(moto),
            _api: Mutex::new(api),
        }
    }

    /// A client whose requests carry a valid token for `tenant`.
    pub fn client(&self, tenant: &str) -> Client {
        Client::new(&self.base_url, Some(token(tenant)))
    }

    /// A client that sends no token.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.base_url, None)
    }

    /// Starts another, private `local-stack` on its own port against the same moto and
    /// table, e.g. to restart it in a test. `env` adds or overrides variables.
    pub fn spawn_api(&self, env: &[(&str, &str)]) -> ApiInstance {
        let log = log_dir().join(format!(
            "local-stack-private-{}.log",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        // The shared stack already polls the table's stream; a second poller would only
        // race it. A test that wants one passes `LOCAL_STREAMS=on`.
        let env: Vec<(String, String)> = std::iter::once(("LOCAL_STREAMS", "off"))
            .chain(env.iter().copied())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (proc, port) = start_api(&local_api_path(), &self.moto_url, &self.table, &env, &log);
        ApiInstance {
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            moto_url: self.moto_url.clone(),
            table: self.table.clone(),
            env,
            log,
            proc: Some(proc),
        }
    }
}

/// The table a `local-stack` serves: `table`, unless `env` names another.
fn served_table<'a>(table: &'a str, env: &'a [(String, String)]) -> &'a str {
    env.iter()
        .find(|(name, _)| name == "TABLE_NAME")
        .map_or(table, |(_, value)| value.as_str())
}

fn start_api(
    binary: &Path,
    moto_url: &str,
    table: &str,
    env: &[(String, String)],
    log: &Path,
) -> (Proc, u16) {
    start_api_on(binary, moto_url, table, env, log, free_port())
}

fn start_api_on(
    binary: &Path,
    moto_url: &str,
    table: &str,
    env: &[(String, String)],
    log: &Path,
    port: u16,
) -> (Proc, u16) {
    let mut command = Command::new(binary);
    command.arg("serve");
    for name in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_SESSION_TOKEN",
    ] {
        command.env_remove(name);
    }
    command
        .env("LOCAL_API_PORT", port.to_string())
        .env("TABLE_NAME", table)
        .env("DYNAMODB_ENDPOINT", moto_url)
        // Beside the logs, not in the repository's .local/: one table per test run.
        .env(
            "LOCAL_STREAM_CHECKPOINT",
            log_dir().join(format!("{}.checkpoint.json", served_table(table, env))),
        )
        .env("CURSOR_SECRET", CURSOR_SECRET)
        .env("EVENT_BUS_NAME", EVENT_BUS)
        .env("TENANT_CLAIM", TENANT_CLAIM)
        .env("LOCAL_JWT_SECRET", JWT_SECRET)
        .env("LOCAL_JWT_ISSUER", JWT_ISSUER)
        .env("LOCAL_JWT_AUDIENCE", JWT_AUDIENCE)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
    for (name, value) in env {
        command.env(name, value);
    }
    let mut proc = Proc::start("local-stack", command, log.to_path_buf());
    proc.wait_until(API_START, || probe(port, "/openapi.json") == Some(200));
    (proc, port)
}

/// A private `local-stack` process; killed when dropped.
pub struct ApiInstance {
    pub base_url: String,
    pub port: u16,
    moto_url: String,
    table: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    proc: Option<Proc>,
}

impl ApiInstance {
    pub fn client(&self, tenant: &str) -> Client {
        Client::new(&self.base_url, Some(token(tenant)))
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.base_url, None)
    }

    /// Kills the process (SIGKILL, like a crashed container).
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// Kills the process and starts it again on the same port with the same settings.
    pub fn restart(&mut self) {
        self.kill();
        let (proc, _) = start_api_on(
            &local_api_path(),
            &self.moto_url,
            &self.table,
            &self.env,
            &self.log,
            self.port,
        );
        self.proc = Some(proc);
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------
// Tokens and tenants

/// A tenant id no other test uses.
pub fn unique_tenant(prefix: &str) -> String {
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    let prefix = if prefix.is_empty() {
        "t".to_string()
    } else {
        prefix
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{:x}-{n}-{nanos:x}", std::process::id())
}

/// The settings the stack's `local-stack` checks tokens with.
fn jwt_config() -> JwtConfig {
    JwtConfig {
        secret: JWT_SECRET.into(),
        issuer: JWT_ISSUER.into(),
        audience: JWT_AUDIENCE.into(),
    }
}

/// The claims of a valid token for `tenant` (an hour long), for tests that alter one:
/// `local-stack token`'s ([`jwt::dev_claims`]).
pub fn claims(tenant: &str) -> Map<String, Value> {
    jwt::dev_claims(&jwt_config(), TENANT_CLAIM, tenant, 3600, jwt::now())
}

/// An HS256 token over `claims`, signed with `secret` as `local-stack token` signs
/// ([`jwt::sign`]).
pub fn sign_with(secret: &[u8], claims: &Map<String, Value>) -> String {
    jwt::sign(secret, claims)
}

/// A token the stack accepts, over `claims`.
pub fn sign(claims: &Map<String, Value>) -> String {
    sign_with(JWT_SECRET.as_bytes(), claims)
}

/// A valid token for `tenant`.
pub fn token(tenant: &str) -> String {
    sign(&claims(tenant))
}

// ---------------------------------------------------------------------------------
// HTTP

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body parsed as JSON, `Value::Null` when empty or not JSON.
    pub json: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as `T`; panics with the body when it does not fit.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("unexpected body ({e}): {}", self.text))
    }

    /// Panics with the whole reply unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "unexpected reply: {self:#?}");
        self
    }
}

/// Requests on behalf of one tenant (or none).
#[derive(Clone)]
pub struct Client {
    base_url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base_url: &str, token: Option<String>) -> Client {
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("build the HTTP client"),
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request to finish with headers and a body of any kind, then `send()`.
    pub fn request(&self, method: Method, path: &str) -> Request {
        Request {
            client: self.clone(),
            method,
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
            token: self.token.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path).send().await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path).send().await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::POST, path).json(body).send().await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::PUT, path).json(body).send().await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::PATCH, path).json(body).send().await
    }
}

/// A request being built; see [`Client::request`].
pub struct Request {
    client: Client,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    token: Option<String>,
}

impl Request {
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json(self, body: &Value) -> Request {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Raw body bytes, sent as they are (no content type is added).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Sends no `Authorization` header.
    pub fn without_token(mut self) -> Request {
        self.token = None;
        self
    }

    /// Sends `Authorization: Bearer <token>` with this token instead.
    pub fn bearer(mut self, token: &str) -> Request {
        self.token = Some(token.to_string());
        self
    }

    pub async fn send(self) -> Reply {
        let url = format!("{}{}", self.client.base_url, self.path);
        let mut builder = self.client.http.request(self.method.clone(), &url);
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = self.body {
            builder = builder.body(body);
        }
        let response = builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {url} failed: {e}", self.method));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{} {url}: reading the body failed: {e}", self.method));
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            text,
        }
    }
}
