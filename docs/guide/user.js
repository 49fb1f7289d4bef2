import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Holds the keeper's objects in baggage, so that it can still use them after a restart of
 * either vat. `bootstrap` runs once in the vat's life, not once per incarnation.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  let answer = 'no answer yet';
  return makeDefaultExo('root', {
    async bootstrap(vats) {
      baggage.init('keeper', vats.keeper);
      baggage.init('counter', await E(vats.keeper).getCounter());
      baggage.init('note', await E(vats.keeper).getNote());
      baggage.init('bootstraps', 1);
      return 'the user keeps a durable counter and a heap note';
    },
    useCounter() {
      return E(baggage.get('counter')).increment();
    },
    readNote() {
      return E(baggage.get('note')).read();
    },
    ask() {
      E(baggage.get('keeper'))
        .later()
        .then(
          value => {
            answer = `answered ${value}`;
          },
          reason => {
            answer = `rejected: ${reason.message}`;
          },
        );
      return 'asked';
    },
    answer() {
      return answer;
    },
    bootstraps() {
      return baggage.get('bootstraps');
    },
  });
}
