import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The notify-batch test's vat (tests/notify_batch.rs): `sendAll` sends `n` messages to a
 * peer at once and notes the order in which their answers arrive, by each result's own
 * reaction and by a reaction chained twice behind it.
 */
export function buildRootObject() {
  let peer;
  return makeDefaultExo('root', {
    bootstrap(vats) {
      peer = vats.echo;
      return 'ready';
    },
    echo(i) {
      return i;
    },
    async sendAll(n) {
      const first = [];
      const chained = [];
      const all = [];
      for (let i = 0; i < n; i += 1) {
        const answer = E(peer).echo(i);
        all.push(answer.then(v => first.push(v)));
        all.push(
          answer
            .then(v => v * 2)
            .then(v => chained.push(v / 2)),
        );
      }
      await Promise.all(all);
      return harden({ first, chained });
    },
  });
}
