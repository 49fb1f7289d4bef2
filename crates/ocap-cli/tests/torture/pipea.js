import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Pipelines chains of calls through promises to its peer (pipeb): `start`, then `next` on
 * each promised step without waiting for it, then `value` on the last. A step may fail; the
 * rejection then flows down the pipeline to the result.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  return makeDefaultExo('root', {
    setPeer(peer) {
      if (baggage.has('peer')) {
        baggage.set('peer', peer);
      } else {
        baggage.init('peer', peer);
      }
    },
    pipeline(tag, depth, failAt) {
      let p = E(baggage.get('peer')).start(tag, failAt);
      for (let i = 1; i < depth; i += 1) {
        p = E(p).next();
      }
      return E(p).value();
    },
  });
}
