import { makeExo } from '@endo/exo';
import { M } from '@endo/patterns';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A durable counter in baggage (spec vat-side §8.4: baggage survives restarts), and plain,
 * non-durable exos handed to other vats. After the vat restarts (a new incarnation), the
 * counter goes on; the plain exos are gone with the old incarnation.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  if (!baggage.has('count')) {
    baggage.init('count', 0);
  }
  const incarnation = baggage.has('incarnation') ? baggage.get('incarnation') + 1 : 0;
  if (baggage.has('incarnation')) {
    baggage.set('incarnation', incarnation);
  } else {
    baggage.init('incarnation', incarnation);
  }
  const EphemeralI = M.interface('Ephemeral', { hello: M.call().returns(M.string()) });

  return makeDefaultExo('root', {
    bootstrap() {
      return `keeper ready, count ${baggage.get('count')}`;
    },
    increment() {
      const next = baggage.get('count') + 1;
      baggage.set('count', next);
      return next;
    },
    read() {
      return harden({ count: baggage.get('count'), incarnation });
    },
    makeEphemeral(label) {
      return makeExo('Ephemeral', EphemeralI, {
        hello() {
          return `hello from ${label} (incarnation ${incarnation})`;
        },
      });
    },
  });
}
