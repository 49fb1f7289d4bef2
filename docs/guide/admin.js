import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A system vat: its subcluster is declared in the daemon's config, so it may ask for the
 * `kernelFacet` service, which gives it the host's powers. It keeps the facet in baggage,
 * since `bootstrap` runs only once.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const facet = () => baggage.get('kernelFacet');
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      baggage.init('kernelFacet', services.kernelFacet);
      return 'admin ready';
    },
    /** Launches a subcluster of one vat and asks its root to greet `who`. */
    async launchChild(name, who) {
      const config = {
        bootstrap: 'child',
        vats: { child: { sourceSpec: 'child.js', parameters: { name } } },
      };
      const { subclusterId, root } = await E(facet()).launchSubcluster(config);
      const said = await E(root).greet(who);
      return `${subclusterId}: ${said}`;
    },
    async subclusters() {
      const all = await E(facet()).getSubclusters();
      return all.map(s => s.id).join(', ');
    },
  });
}
