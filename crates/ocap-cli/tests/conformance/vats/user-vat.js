import { E } from '@endo/far';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Holds an ephemeral (non-durable) export of keeper-vat.js (the JS kernel's
 * orphaned-ephemeral-consumer vat). Once the keeper has restarted, that export is orphaned:
 * a message to it must be rejected with `[KERNEL:OBJECT_DELETED]`.
 */
export function buildRootObject() {
  let keeper;
  let ephemeral;
  return makeDefaultExo('root', {
    async bootstrap(vats) {
      keeper = vats.keeper;
      ephemeral = await E(keeper).makeEphemeral('first');
      return E(ephemeral).hello();
    },
    callEphemeral() {
      return E(ephemeral).hello();
    },
    incrementKeeper() {
      return E(keeper).increment();
    },
  });
}
