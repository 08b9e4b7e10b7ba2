//! `import-customers --url URL [--token JWT] [--dry-run] [--rows-per-request N]
//! [--concurrency C] [--sheet NAME] FILE`:
//! see the crate documentation and `--help`.

use std::io::IsTerminal;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned());
    let token = std::env::var(import_customers::TOKEN_ENV).ok();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let err_is_terminal = err.is_terminal();
    let console = import_customers::Console {
        out: &mut out,
        err: &mut err,
        err_is_terminal,
    };
    ExitCode::from(import_customers::run(args, token, console).await)
}
