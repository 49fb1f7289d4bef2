import { E } from '@endo/far';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Echoes the lines of its IO channel `repl` (spec host-surface §6) back upper-cased, until the
 * client goes away. `bootstrap` gets the channel in `services` by its name.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const io = () => baggage.get('io');
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      if (!baggage.has('io')) {
        baggage.init('io', services.repl);
      }
      return Object.keys(services).sort().join(',');
    },
    async pump() {
      let n = 0;
      for (;;) {
        // eslint-disable-next-line no-await-in-loop
        const line = await E(io()).read();
        if (line === null) {
          return n;
        }
        // eslint-disable-next-line no-await-in-loop
        await E(io()).write(`echo ${n}: ${line.toUpperCase()}`);
        n += 1;
      }
    },
  });
}
