import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The benchmark vat (crates/ocap-cli/bench): every workload of benchmarks.md talks to it.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  if (!baggage.has('count')) {
    baggage.init('count', 0);
  }
  let peers = [];
  return makeDefaultExo('root', {
    bootstrap(vats) {
      peers = Object.values(vats);
      return peers.length;
    },
    ping(i) {
      return i;
    },
    /** The `runaway` workload: loops until the kernel's delivery budget stops it. */
    spin() {
      for (;;) {
        // Nothing: only the delivery budget ends this.
      }
    },
    increment() {
      const next = baggage.get('count') + 1;
      baggage.set('count', next);
      return next;
    },
    read() {
      return baggage.get('count');
    },
    async runSeq(peer, n) {
      for (let i = 0; i < n; i += 1) {
        // eslint-disable-next-line no-await-in-loop
        await E(peer).ping(i);
      }
      return n;
    },
    async runPipelined(peer, n) {
      const all = [];
      for (let i = 0; i < n; i += 1) {
        all.push(E(peer).ping(i));
      }
      await Promise.all(all);
      return n;
    },
    /**
     * The `fan-out` workload: each round sends `ping` to every peer at once and awaits them
     * all before the next round.
     */
    async fanOut(targets, rounds) {
      for (let r = 0; r < rounds; r += 1) {
        // eslint-disable-next-line no-await-in-loop
        await Promise.all(targets.map((peer) => E(peer).ping(r)));
      }
      return rounds * targets.length;
    },
    makeMany(n) {
      const out = [];
      for (let i = 0; i < n; i += 1) {
        out.push(makeDefaultExo('thing', { id: () => i }));
      }
      return harden(out);
    },
    async fetchAndDrop(peer, n) {
      const things = await E(peer).makeMany(n);
      return things.length;
    },
  });
}
