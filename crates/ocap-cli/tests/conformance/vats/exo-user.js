import { E } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Exercises exo-vat.js from another vat. `bootstrap` returns case name -> result, or
 * `ERROR: <message>` when a case threw; guard violations are caught and returned as
 * `rejected: <message>`, so the expected results spell out the rejections.
 */
export function buildRootObject() {
  const rejected = async p => {
    try {
      return `resolved: ${await p}`;
    } catch (e) {
      return `rejected: ${e.message}`;
    }
  };

  const cases = {
    async greet({ exo }) {
      return E(exo).greet('exo');
    },
    async guardRejectsWrongArgument({ exo }) {
      return rejected(E(exo).greet(42));
    },
    async guardRejectsMissingArgument({ exo }) {
      return rejected(E(exo).greet());
    },
    async guardRejectsBadReturn({ exo }) {
      return rejected(E(exo).badReturn());
    },
    async unknownMethodRejects({ exo }) {
      return rejected(E(exo).noSuchMethod());
    },
    async classInstances({ exo }) {
      const c = await E(exo).makeCounter(5);
      await E(c).incr();
      const n = await E(c).incr(10);
      const wrong = await rejected(E(c).incr('x'));
      return [n, await E(c).read(), wrong];
    },
    async classKit({ exo }) {
      const { owner, viewer } = await E(exo).makeAccount(10n);
      const left = await E(owner).withdraw(3n);
      const overdraw = await rejected(E(owner).withdraw(100n));
      const negative = await rejected(E(owner).withdraw(-1n));
      // Each facet has only its own methods.
      const wrongFacet = await rejected(E(viewer).withdraw(1n));
      return [`${left}`, `${await E(viewer).balance()}`, overdraw, negative, wrongFacet];
    },
    async scalarMapStore({ exo }) {
      await E(exo).register('a', 1);
      const size = await E(exo).register('b', harden({ x: [1, 2] }));
      const duplicate = await rejected(E(exo).register('a', 2));
      return [size, await E(exo).lookup('b'), duplicate];
    },
    async callWhenAwaitsPromiseArgument({ exo }) {
      const kit = makePromiseKit();
      const result = E(exo).double(kit.promise);
      kit.resolve(21);
      return result;
    },
  };

  return makeDefaultExo('root', {
    async bootstrap(vats) {
      const results = {};
      for (const [caseName, run] of Object.entries(cases)) {
        try {
          // eslint-disable-next-line no-await-in-loop
          results[caseName] = await run(vats);
        } catch (e) {
          results[caseName] = `ERROR: ${e.message}`;
        }
      }
      return harden(results);
    },
  });
}
