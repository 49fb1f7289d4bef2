// Node 20 lacks Promise.withResolvers (Node 22+), which it-queue (used by libp2p 3.x) calls.
// Imported first by peer.mjs and relay.mjs; a no-op on Node 22 and later.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
