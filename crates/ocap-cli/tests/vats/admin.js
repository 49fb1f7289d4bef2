import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A system vat: keeps the kernel facet from bootstrap and launches and terminates
 * subclusters through it on the host's request (tests/leaks.rs).
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const facet = () => baggage.get('facet');
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      baggage.init('facet', services.kernelFacet);
      return 'ready';
    },
    async launch(config) {
      const { subclusterId, root } = await E(facet()).launchSubcluster(config);
      // Use the new subcluster's root once, so the admin vat imports it (and must drop it).
      await E(root).increment();
      return subclusterId;
    },
    terminate(id) {
      return E(facet()).terminateSubcluster(id);
    },
  });
}
