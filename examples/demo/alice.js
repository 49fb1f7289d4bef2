import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The bootstrap vat of the demo: it greets Bob, passes him a promise that it resolves
 * later, and bumps the durable counter a few times.
 */
export function buildRootObject(vatPowers, parameters) {
  const name = parameters?.name ?? 'alice';
  return makeDefaultExo('root', {
    async bootstrap(vats) {
      const greeting = await E(vats.bob).hello(name);
      // Promises travel between vats: Bob awaits one that Alice settles afterwards.
      let settle;
      const later = new Promise(resolve => {
        settle = resolve;
      });
      const echoed = E(vats.bob).echoWhenReady(later);
      settle('a promise kept');
      const kept = await echoed;
      // Promise pipelining: call a method on the result of a call before it settles.
      const tally = await E(E(vats.counter).getCounter()).incrementBy(3);
      return `${greeting}; Bob says "${kept}"; counter is at ${tally}`;
    },
  });
}
