//! `dev-token <tenant> [--ttl-seconds N] [--claim NAME]`: prints an HS256 token that
//! `local-api` accepts, for the given tenant.

use local_stack::jwt::{self, DEFAULT_TENANT_CLAIM, JwtConfig};

const USAGE: &str = "usage: dev-token <tenant> [--ttl-seconds N] [--claim NAME]

Prints a JWT for local-api, signed with LOCAL_JWT_SECRET and carrying
LOCAL_JWT_ISSUER / LOCAL_JWT_AUDIENCE (local defaults when unset).
The tenant goes in the claim named by --claim, else TENANT_CLAIM, else tenant_id.";

fn main() {
    match run(std::env::args().skip(1).collect()) {
        Ok(token) => println!("{token}"),
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut tenant = None;
    let mut ttl: i64 = 3600;
    let mut claim = std::env::var("TENANT_CLAIM")
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_string());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--ttl-seconds" => {
                let raw = args.next().ok_or("--ttl-seconds needs a value")?;
                ttl = raw.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--ttl-seconds must be a positive integer, got `{raw}`")
                })?;
            }
            "--claim" => claim = args.next().ok_or("--claim needs a value")?,
            flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`")),
            value if tenant.is_none() => tenant = Some(value.to_string()),
            value => return Err(format!("unexpected argument `{value}`")),
        }
    }
    let tenant = tenant.ok_or("missing <tenant>")?;
    if tenant.trim().is_empty() {
        return Err("the tenant must not be empty".into());
    }
    let config = JwtConfig::from_env();
    let claims = jwt::dev_claims(&config, &claim, &tenant, ttl, jwt::now());
    Ok(jwt::sign(&config.secret, &claims))
}
