import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The torture test's bootstrap vat and durable counter. Every increment carries a tag unique
 * to the client's request, and is logged in baggage at the position it got (`log.<n>`), so
 * the test can tell an increment lost (an acknowledged tag missing) from one applied twice
 * (a tag at two positions).
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  if (!baggage.has('count')) {
    baggage.init('count', 0);
  }
  return makeDefaultExo('root', {
    async bootstrap(vats, services) {
      await Promise.all([
        E(vats.pipea).setPeer(vats.pipeb),
        E(vats.churn).setSink(vats.sink),
        E(vats.echo).setChannel(services.tio),
      ]);
      return 'ready';
    },
    increment(tag) {
      const n = baggage.get('count') + 1;
      baggage.set('count', n);
      baggage.init(`log.${n}`, tag);
      return n;
    },
    count() {
      return baggage.get('count');
    },
    /** The tags at positions `from..=to`. */
    readLog(from, to) {
      const out = [];
      for (let i = from; i <= to; i += 1) {
        out.push(baggage.get(`log.${i}`));
      }
      return out;
    },
  });
}
