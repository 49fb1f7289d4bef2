//! Remote comms in the daemon (remote-comms.md §9–10; host-surface.md's `initRemoteComms`):
//! the options (`initRemoteComms` params, the config file's `remoteComms`), starting the
//! libp2p transport (`ocap-net`) for the kernel, and resuming it after a restart: the options
//! a start used (without the mnemonic) are kept in `<home>/remote-comms.json`, and the daemon
//! starts comms with them when it starts again.

use std::path::PathBuf;
use std::time::Duration;

use ocap_kernel::remote::identity::from_hex;
use ocap_kernel::{Kernel, KernelError, RemoteOptions};
use ocap_net::{Libp2pTransport, NetLimits, NetOptions};
use serde::{Deserialize, Serialize};

use crate::home::Home;
use crate::rpc::{codes, RpcError};

/// Frames per second to one peer the daemon allows by default. The JS kernel's 100 (§9.5)
/// would cap a busy link far below what the kernel sustains; `maxMessagesPerSecond` sets it.
pub const DEFAULT_MAX_MESSAGES_PER_SECOND: usize = 5_000;

/// The options of `initRemoteComms` and of the config's `remoteComms` (all optional; the
/// JS kernel's names, plus the transport's limits). Unknown keys are errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommsParams {
    /// Bootstrap relays: multiaddrs ending `/p2p/<relay peer ID>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relays: Option<Vec<String>>,
    /// Where to listen: `/ip4/…/tcp/N`, `/ip4/…/udp/N/quic-v1`, `/ip4/…/tcp/N/ws`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_listen_addresses: Option<Vec<String>>,
    /// A BIP39 recovery phrase for the kernel's identity; only when it has none yet. Never
    /// written anywhere.
    #[serde(default, skip_serializing)]
    pub mnemonic: Option<String>,
    /// Reconnection attempts before giving up on a peer (0: forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_attempts: Option<u32>,
    /// Unacked messages to one peer before new ones are refused (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_url_relay_hints: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_known_relays: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnection_base_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnection_max_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_inactivity_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_per_second: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_attempts_per_minute: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_connections: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size_bytes: Option<usize>,
    /// Hosts that plain (unencrypted) WebSocket dials may go to besides private and loopback
    /// ones (§9.1's connection gater).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ws_hosts: Option<Vec<String>>,
    /// The application protocol id channels are opened with (default `whatever`, the JS
    /// kernel's, `ocap_net::JS_PROTOCOL`; `/ocap-kernel/1.0.0` is the `/`-prefixed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

fn invalid(msg: impl Into<String>) -> RpcError {
    RpcError::invalid_params(msg.into())
}

impl CommsParams {
    /// Checks what serde cannot: positive caps, nonzero sizes.
    pub fn validate(&self) -> Result<(), RpcError> {
        for (name, v) in [("maxUrlRelayHints", self.max_url_relay_hints), ("maxKnownRelays", self.max_known_relays)] {
            if v == Some(0) {
                return Err(invalid(format!("{name} must be a positive integer")));
            }
        }
        if self.max_queue == Some(0) {
            return Err(invalid("maxQueue must be a positive integer"));
        }
        if self.max_message_size_bytes == Some(0) || self.max_messages_per_second == Some(0) {
            return Err(invalid("maxMessageSizeBytes and maxMessagesPerSecond must be positive"));
        }
        if self.ack_timeout_ms == Some(0) {
            return Err(invalid("ackTimeoutMs must be positive"));
        }
        Ok(())
    }

    fn kernel_options(&self) -> RemoteOptions {
        let d = RemoteOptions::default();
        RemoteOptions {
            ack_timeout: self.ack_timeout_ms.map_or(d.ack_timeout, Duration::from_millis),
            max_pending: self.max_queue.unwrap_or(d.max_pending),
            max_url_relay_hints: self.max_url_relay_hints.unwrap_or(d.max_url_relay_hints),
            max_known_relays: self.max_known_relays.unwrap_or(d.max_known_relays),
            max_frame_bytes: self.max_message_size_bytes.unwrap_or(d.max_frame_bytes),
            ..d
        }
    }

    fn limits(&self) -> NetLimits {
        let d = NetLimits::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        NetLimits {
            max_message_size_bytes: self.max_message_size_bytes.unwrap_or(d.max_message_size_bytes),
            handshake_timeout: ms(self.handshake_timeout_ms, d.handshake_timeout),
            write_timeout: ms(self.write_timeout_ms, d.write_timeout),
            max_concurrent_connections: self.max_concurrent_connections.unwrap_or(d.max_concurrent_connections),
            max_messages_per_second: self.max_messages_per_second.unwrap_or(DEFAULT_MAX_MESSAGES_PER_SECOND),
            max_connection_attempts_per_minute: self
                .max_connection_attempts_per_minute
                .unwrap_or(d.max_connection_attempts_per_minute),
            reconnection_base_delay: ms(self.reconnection_base_delay_ms, d.reconnection_base_delay),
            reconnection_max_delay: ms(self.reconnection_max_delay_ms, d.reconnection_max_delay),
            max_retry_attempts: self.max_retry_attempts.unwrap_or(d.max_retry_attempts),
            stream_inactivity_timeout: ms(self.stream_inactivity_timeout_ms, d.stream_inactivity_timeout),
            ..d
        }
    }
}

/// Where the options of the last start are kept.
fn saved_path(home: &Home) -> PathBuf {
    home.remote_comms()
}

/// The options of the last successful start, if any.
pub fn saved(home: &Home) -> Option<CommsParams> {
    let text = std::fs::read_to_string(saved_path(home)).ok()?;
    match serde_json::from_str(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!("ignoring {}: {e}", saved_path(home).display());
            None
        }
    }
}

fn kernel_failure(e: KernelError) -> RpcError {
    match e {
        KernelError::Identity(why) | KernelError::Config(why) => invalid(why),
        other => RpcError::new(codes::INTERNAL_ERROR, other.to_string()),
    }
}

/// Starts (or restarts) remote comms for `kernel` with `params`, and records them for the
/// next start of the daemon.
pub async fn start(home: &Home, kernel: &Kernel, mut params: CommsParams) -> Result<(), RpcError> {
    attach(kernel, &params).await?;
    // A port the system chose (`/tcp/0`) is kept for the next start: the URLs this kernel
    // issued and the addresses its peers stored name it.
    let any_port = |a: &String| a.contains("/tcp/0") || a.contains("/udp/0/");
    if params.direct_listen_addresses.as_ref().is_some_and(|l| l.iter().any(any_port)) {
        if let Ok(status) = kernel.remote_comms_status().await {
            let bound: Vec<String> = status
                .listen_addresses
                .iter()
                .filter(|a| !a.contains("/p2p-circuit"))
                .map(|a| a.split("/p2p/").next().unwrap_or(a).to_owned())
                .collect();
            if !bound.is_empty() {
                params.direct_listen_addresses = Some(bound);
            }
        }
    }
    let text = serde_json::to_string_pretty(&params).unwrap_or_else(|_| "{}".into());
    // Private: the daemon's umask is 077.
    if let Err(e) = std::fs::write(saved_path(home), text.as_bytes()) {
        tracing::error!("cannot record the remote comms options: {e}");
    }
    Ok(())
}

/// Starts (or restarts) remote comms for `kernel` with `params`: the kernel's identity (from
/// the mnemonic if it has none), the relay pool, the libp2p transport, attached.
pub async fn attach(kernel: &Kernel, params: &CommsParams) -> Result<(), RpcError> {
    params.validate()?;
    let identity = kernel.remote_identity(params.mnemonic.clone()).await.map_err(kernel_failure)?;
    let seed = from_hex(&identity.key_seed).map_err(|e| invalid(format!("the stored keySeed is unusable: {e}")))?;
    let kernel_opts = params.kernel_options();
    let relays = params.relays.clone().unwrap_or_default();
    kernel.set_bootstrap_relays(relays.clone(), kernel_opts.max_known_relays).await.map_err(kernel_failure)?;
    let mut net = NetOptions::new(seed, identity.incarnation_id.clone());
    net.listen_addresses = params.direct_listen_addresses.clone().unwrap_or_default();
    net.relays = relays;
    net.allowed_ws_hosts = params.allowed_ws_hosts.clone().unwrap_or_default();
    net.limits = params.limits();
    // The JS kernel's protocol id by default, so JS kernels can be dialed; a node accepts
    // both `whatever` and `/ocap-kernel/1.0.0` inbound whatever it dials with.
    net.protocol = params.protocol.clone().unwrap_or_else(|| ocap_net::JS_PROTOCOL.to_owned());
    let transport = Libp2pTransport::start(net, kernel.remote_inbox()).map_err(|e| invalid(e.to_string()))?;
    kernel.start_remote_comms(transport, kernel_opts).await.map_err(kernel_failure)?;
    tracing::info!(peer = %identity.peer_id, "remote comms started");
    Ok(())
}

/// Stops remote comms, and no longer starts them with the daemon.
pub async fn stop(home: &Home, kernel: &Kernel) -> Result<(), RpcError> {
    kernel.stop_remote_comms().await.map_err(kernel_failure)?;
    match std::fs::remove_file(saved_path(home)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RpcError::new(codes::INTERNAL_ERROR, format!("cannot forget the remote comms options: {e}"))),
    }
}
