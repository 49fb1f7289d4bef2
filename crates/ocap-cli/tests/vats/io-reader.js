import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Reads its IO channel (`repl`) in bulk, and hands the channel itself to whoever asks
 * (tests/io.rs: back-pressure, and calls to a channel that has been closed).
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const io = () => baggage.get('io');
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      baggage.init('io', services.repl);
      return 'ready';
    },
    read() {
      return E(io()).read();
    },
    /** Reads `n` lines; the lines are expected to start with their index, from `from`. */
    async readMany(from, n) {
      for (let i = from; i < from + n; i += 1) {
        // eslint-disable-next-line no-await-in-loop
        const line = await E(io()).read();
        if (line === null || !line.startsWith(`${i} `)) {
          return `line ${i}: ${line === null ? 'null' : line.slice(0, 40)}`;
        }
      }
      return n;
    },
    channel() {
      return io();
    },
  });
}
