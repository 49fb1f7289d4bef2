import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Reads lines from the IO channel `console` and writes each back upper-cased, until the
 * client disconnects (`read()` answers null). The channel is a service of the bootstrap.
 */
export function buildRootObject() {
  return makeDefaultExo('root', {
    async bootstrap(vats, services) {
      const channel = services.console;
      let n = 0;
      for (;;) {
        // eslint-disable-next-line no-await-in-loop
        const line = await E(channel).read();
        if (line === null) {
          return `shouted ${n} lines`;
        }
        // eslint-disable-next-line no-await-in-loop
        await E(channel).write(line.toUpperCase());
        n += 1;
      }
    },
  });
}
