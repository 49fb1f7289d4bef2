import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A counter kept in baggage, so it survives restarts of the vat and the kernel.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  if (!baggage.has('count')) {
    baggage.init('count', 0);
  }
  const counter = makeDefaultExo('counter', {
    incrementBy(n) {
      const next = baggage.get('count') + n;
      baggage.set('count', next);
      return next;
    },
    read() {
      return baggage.get('count');
    },
  });
  return makeDefaultExo('root', {
    getCounter() {
      return counter;
    },
    increment() {
      return counter.incrementBy(1);
    },
  });
}
