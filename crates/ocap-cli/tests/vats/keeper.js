import { makeExo } from '@endo/exo';
import { M } from '@endo/patterns';
import { makePromiseKit } from '@endo/promise-kit';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * K: exports a durable counter (a durable kind, kept in baggage) and a plain heap exo
 * (ephemeral), and answers `later()` only when told to. Used by the restart tests: after a
 * restart the counter goes on counting, the heap exo is gone, and `later()`'s result is
 * rejected by the kernel.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const { makeKindHandle, defineDurableKind } = VatData;
  if (!baggage.has('counterKind')) {
    baggage.init('counterKind', makeKindHandle('Counter'));
  }
  const makeCounter = defineDurableKind(baggage.get('counterKind'), () => ({ count: 0 }), {
    increment({ state }) {
      state.count += 1;
      return state.count;
    },
  });
  if (!baggage.has('counter')) {
    baggage.init('counter', makeCounter());
  }
  const incarnation = baggage.has('incarnation') ? baggage.get('incarnation') + 1 : 1;
  if (baggage.has('incarnation')) {
    baggage.set('incarnation', incarnation);
  } else {
    baggage.init('incarnation', incarnation);
  }
  const ephemeral = makeExo('Ephemeral', M.interface('Ephemeral', {}, { defaultGuards: 'passable' }), {
    hello() {
      return `hello from incarnation ${incarnation}`;
    },
  });
  const waiting = [];
  return makeDefaultExo('root', {
    getCounter() {
      return baggage.get('counter');
    },
    getEphemeral() {
      return ephemeral;
    },
    incarnation() {
      return incarnation;
    },
    later() {
      const kit = makePromiseKit();
      waiting.push(kit.resolve);
      return kit.promise;
    },
    /** How many `later()` calls wait for an answer. */
    pending() {
      return waiting.length;
    },
    settleAll(value) {
      for (const resolve of waiting.splice(0)) {
        resolve(value);
      }
      return 'settled';
    },
  });
}
