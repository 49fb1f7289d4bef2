// The JS circuit relay of crates/ocap-net/tests/js_interop.rs (see README.md).
//
// Usage: node relay.mjs
//
// A circuit relay v2 server configured as the JS kernel-utils' `startRelay` for what matters
// here: `circuitRelayServer` with `applyDefaultLimit: false` (unlimited circuits, which the
// kernel's `whatever` streams need), Noise, Yamux, identify and ping; on TCP loopback only,
// with a random identity. It prints `RELAY_ADDR <address with /p2p/>` and stops once its
// stdin is closed.
import './polyfill.mjs'
import { stopWhenStdinCloses } from './lifecycle.mjs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'

// A hang guard: the test closes our stdin (or kills us) when it is done.
setTimeout(() => {
  console.log('WATCHDOG_ERROR the relay was not stopped in time')
  process.exit(1)
}, 120000).unref()

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    relay: circuitRelayServer({ reservations: { applyDefaultLimit: false, maxReservations: 1024 } }),
  },
})
console.log('RELAY_ADDR', node.getMultiaddrs()[0].toString())
await stopWhenStdinCloses(node)
