//! `ocap send <kref> <method> [json-args...]`: send a message through the daemon and print
//! the decoded result. A rejection exits with status 1 and its message on stderr.

use clap::Args;
use ocap_kernel::KRef;
use serde_json::{json, Value as Json};

use super::decode_capdata;
use crate::client::ClientError;
use crate::display::{display, to_json};
use crate::error::CliError;
use crate::home::Home;
use crate::output::{print_json, Spinner};
use crate::rpc::codes;

#[derive(Args)]
pub struct SendArgs {
    /// The target object or promise (`ko12`, `kp3`).
    pub target: String,
    /// The method to call.
    pub method: String,
    /// Arguments, each one JSON value (quote strings: '"hello"'). `{"kref":"ko5"}` passes a reference.
    #[arg(allow_negative_numbers = true)]
    pub args: Vec<String>,
    /// Print the result's CapData ({body, slots}) undecoded.
    #[arg(long)]
    pub raw: bool,
    /// Seconds to wait for the result (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

pub async fn send(home: &Home, args: SendArgs, json: bool) -> Result<(), CliError> {
    let target: KRef = args.target.parse().map_err(|e| CliError::Usage(format!("bad target: {e}")))?;
    let mut values = Vec::new();
    for (i, text) in args.args.iter().enumerate() {
        // As deep as a vat could receive (smallcaps::MAX_DEPTH), not serde_json's 128.
        let v: Json = ocap_kernel::json::parse(text).map_err(|e| {
            CliError::Usage(format!("argument {} ({text}) is not JSON: {e}; quote strings, as in '\"hello\"'", i + 1))
        })?;
        values.push(v);
    }
    let client = super::daemon_client(home, args.timeout).await?;
    let spinner = Spinner::new(format!("{target}.{}(…)", args.method));
    let result = client.call("queueMessage", json!([target.to_string(), args.method, values])).await;
    drop(spinner);
    let result = match result {
        Ok(r) => r,
        Err(ClientError::Rpc(e)) if e.code == codes::REJECTED => return Err(CliError::Rejected(e.message)),
        Err(e) => return Err(e.into()),
    };
    if args.raw {
        print_json(&result, json);
        return Ok(());
    }
    let value = decode_capdata(&result)?;
    if json {
        let out = to_json(&value);
        print_json(&out, true);
        ocap_kernel::json::drop_deep(out);
    } else {
        println!("{}", display(&value));
    }
    ocap_kernel::smallcaps::drop_deep(value);
    Ok(())
}
