import { makeExo } from '@endo/exo';
import { M } from '@endo/patterns';
import { makePromiseKit } from '@endo/promise-kit';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Keeps a durable counter (a durable kind, reachable from baggage) and makes a heap exo
 * (ephemeral). `later()` answers only when `settle()` is called.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const { makeKindHandle, defineDurableKind } = VatData;
  // A durable kind: its handle lives in baggage, and every incarnation redefines its
  // behaviour, before anything can use its objects.
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
  // A heap object: it lives only as long as this incarnation.
  const note = makeExo('Note', M.interface('Note', {}, { defaultGuards: 'passable' }), {
    read() {
      return `a note from incarnation ${incarnation}`;
    },
  });
  const waiting = [];
  return makeDefaultExo('root', {
    getCounter() {
      return baggage.get('counter');
    },
    getNote() {
      return note;
    },
    later() {
      const kit = makePromiseKit();
      waiting.push(kit.resolve);
      return kit.promise;
    },
    settle(value) {
      waiting.splice(0).forEach(resolve => resolve(value));
    },
  });
}
