import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * GC churn: makes objects and hands them to the sink vat, which holds some in memory, keeps
 * a few in baggage (overwriting older ones) and drops the rest; takes objects from the sink
 * and drops them at once.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  let made = 0;
  const makeThing = () => {
    made += 1;
    const id = made;
    return makeDefaultExo('thing', {
      ping() {
        return id;
      },
    });
  };
  return makeDefaultExo('root', {
    setSink(sink) {
      if (baggage.has('sink')) {
        baggage.set('sink', sink);
      } else {
        baggage.init('sink', sink);
      }
    },
    async churn(n) {
      const sink = baggage.get('sink');
      const held = [];
      for (let i = 0; i < n; i += 1) {
        held.push(E(sink).hold(makeThing()));
      }
      await Promise.all(held);
      const theirs = await E(sink).make(n);
      const released = await E(sink).release();
      return theirs.length + released;
    },
  });
}
