import { E, Far } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** The other side of promise-user.js: answers, holds and hands out promises. */
export function buildRootObject(vatPowers, parameters) {
  const name = parameters?.name ?? 'bob';
  /** @type {Array<ReturnType<typeof makePromiseKit>>} */
  const pending = [];

  const y = makeDefaultExo('y', {
    z() {
      return `z from ${name}`;
    },
    self() {
      return y;
    },
  });

  return makeDefaultExo('root', {
    async addOne(p) {
      return (await p) + 1;
    },
    async describeSettlement(p) {
      try {
        return `fulfilled: ${await p}`;
      } catch (e) {
        return `rejected: ${e.message}`;
      }
    },
    later() {
      const kit = makePromiseKit();
      pending.push(kit);
      return kit.promise;
    },
    settle(value) {
      const kits = pending.splice(0);
      for (const kit of kits) {
        kit.resolve(value);
      }
      return kits.length;
    },
    dataWithPromise() {
      const kit = makePromiseKit();
      pending.push(kit);
      return harden({ n: 1, p: kit.promise });
    },
    answer() {
      return `42 from ${name}`;
    },
    relay(other) {
      return E(other).answer();
    },
    makeCycle() {
      const a = makePromiseKit();
      const b = makePromiseKit();
      a.resolve(harden({ name: 'a', next: b.promise }));
      b.resolve(harden({ name: 'b', next: a.promise }));
      return harden({ first: a.promise });
    },
    async walk(p, steps) {
      const names = [];
      let next = p;
      for (let i = 0; i < steps; i += 1) {
        // eslint-disable-next-line no-await-in-loop
        const node = await next;
        names.push(node.name);
        next = node.next;
      }
      return names;
    },
    getY() {
      return y;
    },
    fail() {
      throw Error(`${name} fails on purpose`);
    },
    // A plain Far object (from @endo/far), not an exo.
    makeLog() {
      const entries = [];
      return Far('log', {
        add(entry) {
          entries.push(entry);
        },
        entries() {
          return harden([...entries]);
        },
      });
    },
  });
}
