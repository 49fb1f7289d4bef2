import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * IO echo over the subcluster's Unix-socket channel, kept in baggage so it works after a
 * restart: `pump` reads lines and writes them back upper-cased until the client goes.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  return makeDefaultExo('root', {
    setChannel(channel) {
      if (baggage.has('io')) {
        baggage.set('io', channel);
      } else {
        baggage.init('io', channel);
      }
    },
    async pump() {
      const io = baggage.get('io');
      let n = 0;
      for (;;) {
        // eslint-disable-next-line no-await-in-loop
        const line = await E(io).read();
        if (line === null) {
          return n;
        }
        // eslint-disable-next-line no-await-in-loop
        await E(io).write(line.toUpperCase());
        n += 1;
      }
    },
  });
}
