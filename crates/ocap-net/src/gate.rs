//! The connection gater of remote-comms.md §9.1: plain WebSocket (`/ws`, without `/wss` or
//! `/tls`) is dialed only to private and loopback hosts, to hosts the host application lists
//! ([`crate::NetOptions::allowed_ws_hosts`]) and to the hosts of plain-ws relays it
//! configured. Plain ws carries noise-encrypted libp2p traffic, but a public endpoint
//! without TLS is what browsers refuse and middleboxes break, so JS denies it by default.
//!
//! [`WsGate`] is a behaviour that denies such dials in
//! `NetworkBehaviour::handle_pending_outbound_connection`, which the swarm calls for every
//! dial, ours and those its behaviours make (relay reservations, the hop to a relay under a
//! circuit), before any transport sees the address. The dial then fails with
//! `DialError::Denied` carrying a [`WsDialDenied`].

use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// A plain-ws dial the gate refused; its text names the address (it reaches the kernel in
/// the failed sends' message).
#[derive(Debug, thiserror::Error)]
#[error("plain WebSocket dial to {addr} denied: host {host} is not private or loopback and not in allowed_ws_hosts")]
pub(crate) struct WsDialDenied {
    addr: Multiaddr,
    host: String,
}

/// Which hosts plain ws may be dialed on besides private and loopback ones.
#[derive(Debug, Default)]
pub(crate) struct WsHosts {
    allowed: Vec<String>,
}

impl WsHosts {
    /// `allowed` plus the hosts of the plain-ws addresses among `relays`.
    pub(crate) fn new(allowed: &[String], relays: &[Multiaddr]) -> Self {
        let mut hosts: Vec<String> = allowed.to_vec();
        hosts.extend(relays.iter().filter(|r| is_plain_ws(r)).filter_map(host));
        Self { allowed: hosts }
    }

    /// Refuses `addr` if it is plain ws to a host neither private nor allowed. Addresses
    /// without a host (nothing to judge) pass.
    pub(crate) fn check(&self, addr: &Multiaddr) -> Result<(), WsDialDenied> {
        if !is_plain_ws(addr) {
            return Ok(());
        }
        match host(addr) {
            Some(h) if !is_private(&h) && !self.allowed.iter().any(|a| same_host(a, &h)) => {
                Err(WsDialDenied { addr: addr.clone(), host: h })
            }
            _ => Ok(()),
        }
    }
}

/// `/ws` without `/wss` or `/tls` anywhere in the address (a relay circuit counts as the
/// relay hop it goes through).
fn is_plain_ws(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::Ws(_)))
        && !addr.iter().any(|p| matches!(p, Protocol::Wss(_) | Protocol::Tls))
}

/// The first IP or DNS component, as written in the multiaddr.
fn host(addr: &Multiaddr) -> Option<String> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip.to_string()),
        Protocol::Ip6(ip) => Some(ip.to_string()),
        Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) | Protocol::Dnsaddr(h) => Some(h.into_owned()),
        _ => None,
    })
}

/// IP literals compare as addresses (`::1` = `0:0:0:0:0:0:0:1`), names case-insensitively.
fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// `localhost`, and IP literals in 127/8, 10/8, 172.16/12, 192.168/16, `::1`, fc00::/7
/// (unique local) or fe80::/10 (link local), as JS's gater. Other names are not resolved:
/// a public name that resolves to a private address is still public here.
fn is_private(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private(),
        Ok(IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
        Err(_) => false,
    }
}

/// The behaviour that applies [`WsHosts`] to every dial of the swarm.
pub(crate) struct WsGate {
    hosts: WsHosts,
}

impl WsGate {
    pub(crate) fn new(hosts: WsHosts) -> Self {
        Self { hosts }
    }
}

impl NetworkBehaviour for WsGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: Option<PeerId>,
        addresses: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        for addr in addresses {
            if let Err(denied) = self.hosts.check(addr) {
                tracing::warn!("{denied}");
                return Err(ConnectionDenied::new(denied));
            }
        }
        Ok(Vec::new())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(hosts: &WsHosts, addr: &str) -> bool {
        hosts.check(&addr.parse().unwrap()).is_err()
    }

    #[test]
    fn plain_ws_needs_a_private_or_allowed_host() {
        let none = WsHosts::default();
        for ok in [
            "/ip4/127.0.0.1/tcp/1/ws",
            "/ip4/10.1.2.3/tcp/1/ws",
            "/ip4/172.16.0.1/tcp/1/ws",
            "/ip4/172.31.255.255/tcp/1/ws",
            "/ip4/192.168.1.1/tcp/1/ws",
            "/dns4/localhost/tcp/1/ws",
            "/ip6/::1/tcp/1/ws",
            "/ip6/fc00::1/tcp/1/ws",
            "/ip6/fd12:3456::1/tcp/1/ws",
            "/ip6/fe80::1/tcp/1/ws",
            "/ip6/febf::1/tcp/1/ws",
            // Not plain ws.
            "/ip4/8.8.8.8/tcp/443/wss",
            "/ip4/8.8.8.8/tcp/443/tls/ws",
            "/dns4/relay.example/tcp/443/tls/sni/relay.example/ws",
            "/ip4/8.8.8.8/tcp/1",
            "/ip4/8.8.8.8/udp/1/quic-v1",
        ] {
            assert!(!denied(&none, ok), "{ok}");
        }
        for bad in [
            "/ip4/8.8.8.8/tcp/80/ws",
            "/ip4/172.32.0.1/tcp/1/ws",
            "/ip4/0.0.0.0/tcp/1/ws",
            "/ip6/2001:db8::1/tcp/1/ws",
            "/ip6/fec0::1/tcp/1/ws",
            "/dns4/relay.example/tcp/80/ws",
            "/dns4/relay.example/tcp/80/ws/p2p/12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc/p2p-circuit",
        ] {
            assert!(denied(&none, bad), "{bad}");
        }
    }

    #[test]
    fn listed_hosts_and_plain_ws_relays_are_allowed() {
        let relays = [
            "/dns4/relay.example/tcp/80/ws/p2p/12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc".parse().unwrap(),
            // A wss relay allows nothing plain.
            "/dns4/secure.example/tcp/443/wss/p2p/12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc"
                .parse()
                .unwrap(),
        ];
        let hosts =
            WsHosts::new(&["8.8.8.8".to_owned(), "2001:db8::0:1".to_owned(), "Peer.Example".to_owned()], &relays);
        for ok in [
            "/ip4/8.8.8.8/tcp/80/ws",
            "/ip6/2001:db8::1/tcp/80/ws",
            "/dns4/peer.example/tcp/80/ws",
            "/dns4/relay.example/tcp/80/ws/p2p/12D3KooWJBDqsyHQF2MWiCdU4kdqx4zTsSTLRdShg7Ui6CRWB4uc/p2p-circuit",
        ] {
            assert!(!denied(&hosts, ok), "{ok}");
        }
        for bad in ["/ip4/8.8.4.4/tcp/80/ws", "/dns4/secure.example/tcp/80/ws"] {
            assert!(denied(&hosts, bad), "{bad}");
        }
        let err = hosts.check(&"/ip4/8.8.4.4/tcp/80/ws".parse().unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plain WebSocket dial to /ip4/8.8.4.4/tcp/80/ws denied: host 8.8.4.4 is not private or loopback and not in allowed_ws_hosts"
        );
    }
}
