import { E } from '@endo/far';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * U: the bootstrap vat of the restart tests. It takes K's durable counter and heap exo
 * and keeps both (in RAM: U itself is not restarted in these tests).
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  let keeper;
  let counter;
  let ephemeral;
  return makeDefaultExo('root', {
    async bootstrap(vats) {
      keeper = vats.keeper;
      counter = await E(keeper).getCounter();
      ephemeral = await E(vats.keeper).getEphemeral();
      return 'ready';
    },
    useCounter() {
      return E(counter).increment();
    },
    useEphemeral() {
      return E(ephemeral).hello();
    },
    /** Keeps the counter in baggage: durable state that survives U's own restart. */
    keepCounter() {
      baggage.init('counter', counter);
      return 'kept';
    },
    useKeptCounter() {
      return E(baggage.get('counter')).increment();
    },
    /** Waits on a promise K decides; K answers it only when told to. */
    waitForKeeper() {
      return E(keeper).later();
    },
  });
}
