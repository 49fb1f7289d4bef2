import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Reads lines from its IO channel and writes them back upper-cased. The channel reference
 * lives in baggage, so it still works after the kernel restarts.
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
        await E(io()).write(line.toUpperCase());
        n += 1;
      }
    },
    read() {
      return E(io()).read();
    },
    write(s) {
      return E(io()).write(s);
    },
  });
}
