import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A system vat that calls every method of the kernel facet and reports what each
 * answered (tests/facet.rs). Failures are reported as `error: <message>`.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const facet = () => baggage.get('facet');
  const attempt = async (thunk) => {
    try {
      return await thunk();
    } catch (e) {
      return `error: ${e.message}`;
    }
  };
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      baggage.init('facet', services.kernelFacet);
      return 'ready';
    },
    /** Every facet method, once each, around a subcluster launched from `config`. */
    async tour(config) {
      const f = facet();
      const report = {};
      report.ping = await E(f).ping();
      const launched = await E(f).launchSubcluster(config);
      const { subclusterId, rootKref, root } = launched;
      report.launched = { subclusterId, rootKref, bootstrapResult: launched.bootstrapResult };
      report.viaRoot = await E(root).increment();
      const status = await E(f).getStatus();
      report.status = {
        vats: status.vats.map((v) => `${v.id}:${v.name}:${v.subclusterId}`),
        subclusters: status.subclusters.map((s) => s.id),
      };
      report.subclusters = (await E(f).getSubclusters()).map((s) => s.id);
      const one = await E(f).getSubcluster(subclusterId);
      report.subcluster = { id: one.id, vats: one.vats, bootstrap: one.config.bootstrap };
      report.noSubcluster = (await E(f).getSubcluster('s99')) === undefined;
      report.systemRoot = await E(f).getSystemSubclusterRoot(parameters.name);
      const presence = await E(f).getPresence(rootKref, 'counter');
      report.viaPresence = await E(presence).increment();
      report.queued = await E(f).queueMessage(rootKref, 'increment', []);
      report.queuedRejected = await attempt(() => E(f).queueMessage(rootKref, 'noSuchMethod', []));
      report.pingVat = await E(f).pingVat(one.vats.counter);
      report.terminated = await E(f).terminateSubcluster(subclusterId);
      report.afterTermination = (await E(f).getSubclusters()).map((s) => s.id);
      report.errors = {
        launch: await attempt(() => E(f).launchSubcluster({ vats: {} })),
        launchMissing: await attempt(() =>
          E(f).launchSubcluster({ bootstrap: 'a', vats: { a: { sourceSpec: '/nonexistent/a.js' } } }),
        ),
        getSubcluster: await attempt(() => E(f).getSubcluster(7)),
        systemRoot: await attempt(() => E(f).getSystemSubclusterRoot('nope')),
        presence: await attempt(() => E(f).getPresence('ko999')),
        presenceArg: await attempt(() => E(f).getPresence(42)),
        pingVat: await attempt(() => E(f).pingVat('v99')),
        pingVatArg: await attempt(() => E(f).pingVat(5)),
        queueMessage: await attempt(() => E(f).queueMessage('ko999', 'm', [])),
        queueArgs: await attempt(() => E(f).queueMessage(rootKref, 'm', 'not an array')),
        terminate: await attempt(() => E(f).terminateSubcluster('s99')),
        unknown: await attempt(() => E(f).frobnicate()),
      };
      return report;
    },
    /**
     * Asks the facet to reset the kernel, which terminates this vat too; the answer never
     * settles otherwise, so its rejection tells the caller that the reset happened.
     */
    reset() {
      E(facet()).reset();
      return new Promise(() => {});
    },
  });
}
