//! `tickwire hash-key`: the `sha256:<hex>` form of an API key, for
//! `[[auth.keys]] hash`, so the configuration never holds a key in clear.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

/// Print the hash of an API key read from stdin, for `[[auth.keys]]`.
///
/// Reads the key from stdin (one trailing newline is dropped), so it stays
/// out of the shell history and the process list, and prints
/// `sha256:<64 hex digits>`.
///
/// Example: `printf %s "$KEY" | tickwire hash-key`
#[derive(Debug, clap::Args)]
pub(crate) struct HashKeyArgs {}

/// Reads the key, prints its hash.
pub(crate) fn run(_args: HashKeyArgs) -> anyhow::Result<ExitCode> {
    let mut key = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut key)
        .context("cannot read the key from stdin (it must be UTF-8)")?;
    let key = key
        .strip_suffix("\r\n")
        .or_else(|| key.strip_suffix('\n'))
        .unwrap_or(&key);
    if key.is_empty() {
        anyhow::bail!("no key on stdin");
    }
    println!("{}", tickwire_gateway::auth::hash_key(key));
    Ok(ExitCode::SUCCESS)
}
