import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** A counter in baggage: survives restarts of the vat and of the kernel. */
export function buildRootObject(vatPowers, parameters, baggage) {
  if (!baggage.has('count')) {
    baggage.init('count', 0);
  }
  return makeDefaultExo('root', {
    bootstrap() {
      return 'ready';
    },
    increment() {
      const next = baggage.get('count') + 1;
      baggage.set('count', next);
      return next;
    },
    read() {
      return baggage.get('count');
    },
  });
}
