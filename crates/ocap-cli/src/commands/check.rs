//! `ocap check`: runs the kernel's invariant checker (`ocap_kernel::invariants`) on a kernel
//! database and prints what is wrong; exit status 1 if anything is.
//!
//! With `--db`, the file is opened read-only and checked on one snapshot. Without it, the
//! home's database is checked through the daemon if it is running (between two cranks, with
//! the `checkInvariants` RPC method), else directly.

use std::path::{Path, PathBuf};

use clap::Args;
use ocap_kernel::store::Store;
use serde_json::{json, Value as Json};

use crate::client::Client;
use crate::error::CliError;
use crate::home::{Home, HomeError};
use crate::output::print_json;

#[derive(Args)]
pub struct CheckArgs {
    /// A kernel database to check (default: the home's, through its daemon if it runs).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// Checks a database file directly, on a read-only snapshot.
fn check_file(db: &Path) -> Result<Vec<String>, CliError> {
    if !db.is_file() {
        return Err(CliError::Other(format!("no kernel database at {}", db.display())));
    }
    let store = Store::open_read_only(db)
        .map_err(|e| CliError::Other(format!("cannot open {} as a kernel database: {e}", db.display())))?;
    Ok(ocap_kernel::invariants::check_snapshot(&store).err().unwrap_or_default())
}

pub async fn check(
    home: impl FnOnce() -> Result<Home, HomeError>,
    args: CheckArgs,
    json: bool,
) -> Result<(), CliError> {
    let (checked, violations) = match args.db {
        Some(db) => (db.display().to_string(), check_file(&db)?),
        None => {
            let home = home()?;
            let client = Client::new(&home, None);
            if client.ping().await {
                let answer = client.call("checkInvariants", json!([])).await?;
                let violations = answer
                    .get("violations")
                    .and_then(Json::as_array)
                    .map(|v| v.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
                    .unwrap_or_default();
                (format!("the daemon's kernel ({})", home.db().display()), violations)
            } else {
                (home.db().display().to_string(), check_file(&home.db())?)
            }
        }
    };
    if json {
        print_json(&json!({"ok": violations.is_empty(), "checked": checked, "violations": violations}), true);
    } else if violations.is_empty() {
        println!("ok: {checked} is consistent");
    } else {
        println!("{checked}: {} problem(s)", violations.len());
        for v in &violations {
            println!("  - {v}");
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(CliError::Exit(1))
    }
}
