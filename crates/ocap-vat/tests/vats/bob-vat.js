import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';
import { defineExoClass } from '@endo/exo';
import { M } from '@endo/patterns';
import { makeScalarMapStore } from '@agoric/store';
import { makePromiseKit } from '@endo/promise-kit';

/**
 * A service vat: answers, hands out objects and promises, keeps a counter in
 * baggage, and uses @endo/exo classes and @agoric/store stores.
 *
 * @param {object} vatPowers
 * @param {object} parameters
 * @param {object} baggage
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const name = parameters?.name ?? 'bob';
  if (!baggage.has('counter')) {
    baggage.init('counter', 0);
  }
  if (!baggage.has('bootstraps')) {
    baggage.init('bootstraps', 0);
  }
  if (!baggage.has('builds')) {
    baggage.init('builds', 0);
  }
  baggage.set('builds', baggage.get('builds') + 1);

  const CounterI = M.interface('Counter', {
    incr: M.call().optional(M.number()).returns(M.number()),
    read: M.call().returns(M.number()),
  });
  const makeCounter = defineExoClass(
    'Counter',
    CounterI,
    start => ({ count: start }),
    {
      incr(by = 1) {
        this.state.count += by;
        return this.state.count;
      },
      read() {
        return this.state.count;
      },
    },
  );

  const registry = makeScalarMapStore('registry');
  /** @type {Array<ReturnType<typeof makePromiseKit>>} */
  const pending = [];

  // Counts add() calls, on the root and on y alike (for E.sendOnly).
  let adds = 0;

  const y = makeDefaultExo('y', {
    z() {
      return `z from ${name}`;
    },
    add() {
      adds += 1;
      return adds;
    },
  });

  return makeDefaultExo('root', {
    bootstrap() {
      baggage.set('bootstraps', baggage.get('bootstraps') + 1);
      return 'bootstrapped';
    },
    stats() {
      return harden({
        bootstraps: baggage.get('bootstraps'),
        builds: baggage.get('builds'),
        counter: baggage.get('counter'),
      });
    },
    ping() {
      return 'pong';
    },
    add() {
      adds += 1;
      return adds;
    },
    hello(who) {
      return `hello ${who} from ${name}`;
    },
    getY() {
      return y;
    },
    fail() {
      throw Error('deliberate failure');
    },
    increment() {
      const next = baggage.get('counter') + 1;
      baggage.set('counter', next);
      return next;
    },
    makeThing(label) {
      return makeDefaultExo('thing', {
        getLabel() {
          return label;
        },
      });
    },
    answer() {
      return 42;
    },
    // Returns a promise for another vat's answer: a chain of promises.
    relay(other) {
      return E(other).answer();
    },
    // A promise argument: resolves once the caller resolves it.
    async awaitArg(p) {
      const v = await p;
      return v + 1;
    },
    // A promise returned as a result, settled by a later message.
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
    // Data containing promises.
    dataWithPromise() {
      const kit = makePromiseKit();
      pending.push(kit);
      return harden({ n: 1, p: kit.promise });
    },
    // Two promises whose resolutions contain each other.
    makeCycle() {
      const a = makePromiseKit();
      const b = makePromiseKit();
      a.resolve(harden({ name: 'a', next: b.promise }));
      b.resolve(harden({ name: 'b', next: a.promise }));
      return harden({ first: a.promise });
    },
    makeCounter(start) {
      return makeCounter(start);
    },
    register(key, value) {
      registry.init(key, value);
      return registry.getSize();
    },
    lookup(key) {
      return registry.get(key);
    },
    keys() {
      return [...registry.keys()];
    },
  });
}
