// The JS libp2p peer of crates/ocap-net/tests/js_interop.rs (see README.md).
//
// Usage: node peer.mjs <rust multiaddr with /p2p/> <full|optimistic> [tcp|ws|quic|circuit <relay>]
//
// A libp2p node configured as the JS ocap kernel's (Noise, Yamux, identify, ping) that speaks
// ocap's remote-comms framing on the bare protocol id `whatever`. Its transport (default
// `tcp`):
// - `tcp`: `@libp2p/tcp` only, listening on `/ip4/127.0.0.1/tcp/0`;
// - `ws`: `@libp2p/websockets` only, listening on `/ip4/127.0.0.1/tcp/0/ws` (so every
//   connection, both ways, is a plain WebSocket one);
// - `quic`: `@chainsafe/libp2p-quic` only, listening on `/ip4/127.0.0.1/udp/0/quic-v1`; QUIC
//   brings its own TLS 1.3 and stream multiplexing, so this node has no Noise or Yamux;
// - `circuit <relay multiaddr with /p2p/>`: `@libp2p/tcp` and `circuitRelayTransport()`,
//   listening only on `<relay>/p2p-circuit` (a reservation on that relay); its `JS_ADDR` is
//   its circuit address, and the target is expected to be one too. No
//   `runOnLimitedConnection`, as in the JS kernel: the relay must grant unlimited circuits.
// In every mode:
// - it handles `whatever`: reads the handshake frame, answers a handshakeAck with incarnation
//   `js-incarnation`, reads one frame and writes `js reply on the stream rust opened`;
// - it dials the Rust node on `whatever` (`full`: multistream-select negotiated before the
//   first write, libp2p's default; `optimistic`: `negotiateFully: false`, the protocol
//   proposal sent together with the first frame), writes a handshake with incarnation
//   `js-incarnation`, reads the ack, writes `hello from js` and reads one frame.
// Everything it reads is printed on stdout (`OUT_ACK …`, `OUT_REPLY …`, `IN_HANDSHAKE …`,
// `IN_FRAME …`; failures as `…_ERROR`), with the remote addresses of the connections the
// streams ran on (`OUT_VIA …`, `IN_VIA …`), then `DONE`; it stops once its stdin is closed.
import './polyfill.mjs'
import { stopWhenStdinCloses } from './lifecycle.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'

const [target, mode, transport = 'tcp', relay] = process.argv.slice(2)
if (
  !target ||
  !['full', 'optimistic'].includes(mode) ||
  !['tcp', 'ws', 'quic', 'circuit'].includes(transport) ||
  (transport === 'circuit') !== (relay != null)
) {
  console.error('usage: node peer.mjs <multiaddr> <full|optimistic> [tcp|ws|quic|circuit <relay multiaddr>]')
  process.exit(2)
}
// Imported in `quic` mode only: it loads a native binding when imported, and the other modes
// must not need one.
const quic = transport === 'quic' ? (await import('@chainsafe/libp2p-quic')).quic : null
// Noise and Yamux secure and multiplex the TCP-based transports; QUIC does both itself.
const upgrade = { connectionEncrypters: [noise()], streamMuxers: [yamux()] }
const config = {
  tcp: { transports: [tcp()], listen: ['/ip4/127.0.0.1/tcp/0'], ...upgrade },
  ws: { transports: [webSockets()], listen: ['/ip4/127.0.0.1/tcp/0/ws'], ...upgrade },
  quic: { transports: quic ? [quic()] : [], listen: ['/ip4/127.0.0.1/udp/0/quic-v1'], connectionEncrypters: [], streamMuxers: [] },
  circuit: { transports: [tcp(), circuitRelayTransport()], listen: [`${relay}/p2p-circuit`], ...upgrade },
}[transport]

// A hang guard: the Rust side bounds its waits too, and kills this process when it is done.
const WAIT_MS = 30000
setTimeout(() => {
  console.log('WATCHDOG_ERROR the exchange did not finish in time')
  process.exit(1)
}, 2 * WAIT_MS).unref()

const enc = (s) => new TextEncoder().encode(s)
const dec = (b) => new TextDecoder().decode(b.subarray())
const say = (...a) => console.log(...a)
const frame = (method) => JSON.stringify({ method, params: { incarnationId: 'js-incarnation' } })

const node = await createLibp2p({
  addresses: { listen: config.listen },
  transports: config.transports,
  connectionEncrypters: config.connectionEncrypters,
  streamMuxers: config.streamMuxers,
  services: { identify: identify(), ping: ping() },
})

let inboundDone
const inbound = new Promise((resolve) => { inboundDone = resolve })
await node.handle('whatever', async (stream, connection) => {
  try {
    const lp = lpStream(stream)
    say('IN_HANDSHAKE', dec(await lp.read()))
    await lp.write(enc(frame('handshakeAck')))
    say('IN_FRAME', dec(await lp.read()))
    await lp.write(enc('js reply on the stream rust opened'))
    say('IN_PROTOCOL', stream.protocol, connection.remotePeer.toString())
    say('IN_VIA', connection.remoteAddr.toString())
  } catch (e) {
    say('IN_ERROR', e.stack)
  }
  inboundDone()
})
say('JS_PEER', node.peerId.toString())
// Listening on `<relay>/p2p-circuit` resolves once the reservation is made, so the circuit
// address is there by now.
const ownAddr = node.getMultiaddrs().find((a) => (transport === 'circuit') === a.toString().includes('/p2p-circuit'))
if (ownAddr == null) {
  say('LISTEN_ERROR no', transport, 'address among', node.getMultiaddrs().map(String).join(' '))
}
say('JS_ADDR', String(ownAddr))

try {
  const options = mode === 'optimistic' ? { negotiateFully: false } : {}
  const stream = await node.dialProtocol(multiaddr(target), 'whatever', options)
  const lp = lpStream(stream)
  await lp.write(enc(frame('handshake')))
  say('OUT_ACK', dec(await lp.read()))
  await lp.write(enc('hello from js'))
  say('OUT_REPLY', dec(await lp.read()))
  say('OUT_PROTOCOL', stream.protocol)
  const targetPeer = target.split('/p2p/').pop()
  const conns = node.getConnections().filter((c) => c.remotePeer.toString() === targetPeer)
  say('OUT_VIA', conns.map((c) => c.remoteAddr.toString()).join(' '))
} catch (e) {
  say('OUT_ERROR', e.stack)
}
await Promise.race([inbound, new Promise((resolve) => setTimeout(resolve, WAIT_MS))])
say('DONE')
// Stay up until the test closes our stdin: stopping the node at once could drop the reply
// frame before the Rust side has read it.
await stopWhenStdinCloses(node)
