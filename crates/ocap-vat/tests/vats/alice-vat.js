import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';
import { makePromiseKit } from '@endo/promise-kit';

/**
 * A client vat: given other vats' roots in its arguments, it calls them with
 * E().
 *
 * @param {object} vatPowers
 * @param {object} parameters
 */
export function buildRootObject(vatPowers, parameters) {
  const name = parameters?.name ?? 'alice';
  let thing;
  return makeDefaultExo('root', {
    ping() {
      return 'pong';
    },
    async bootstrap(vats) {
      const greeting = await E(vats.bob).hello(name);
      return `${name} bootstrapped: ${greeting}`;
    },
    greet(bob) {
      return E(bob).hello(name);
    },
    // Pipelining: z() is sent to the promise for getY()'s result.
    pipeline(bob) {
      return E(E(bob).getY()).z();
    },
    async pipelineAwait(bob) {
      const z = await E(E(bob).getY()).z();
      return `${name} got ${z}`;
    },
    // A chain: our result <- bob.relay() <- carol.answer().
    chain(bob, carol) {
      return E(bob).relay(carol);
    },
    // A promise passed as an argument, resolved after it was sent.
    passPromise(bob) {
      const kit = makePromiseKit();
      const r = E(bob).awaitArg(kit.promise);
      kit.resolve(41);
      return r;
    },
    // A promise returned as a result and settled by a later message.
    async later(bob) {
      const p = E(bob).later();
      const n = await E(bob).settle('settled');
      const v = await p;
      return [n, v];
    },
    async walkCycle(bob) {
      const { first } = await E(bob).makeCycle();
      const a = await first;
      const b = await a.next;
      const a2 = await b.next;
      const b2 = await a2.next;
      return [a.name, b.name, a2.name, b2.name];
    },
    async catchFail(bob) {
      try {
        await E(bob).fail();
        return 'no error';
      } catch (e) {
        return `caught: ${e.message}`;
      }
    },
    async acquire(bob) {
      thing = await E(bob).makeThing('t1');
      return E(thing).getLabel();
    },
    release() {
      thing = undefined;
      return 'released';
    },
    // Two send-only messages, then one with a result: bob's count once
    // all three arrived (messages to one target arrive in order).
    sendOnlyThenAdd(bob) {
      E.sendOnly(bob).add();
      E.sendOnly(bob).add();
      return E(bob).add();
    },
    // The same, pipelined: send-only to the unresolved result of getY().
    sendOnlyToAPromiseThenAdd(bob) {
      const y = E(bob).getY();
      E.sendOnly(y).add();
      E.sendOnly(y).add();
      return E(y).add();
    },
    async counters(bob) {
      const c = await E(bob).makeCounter(5);
      await E(c).incr();
      const n = await E(c).incr(10);
      let err = 'no error';
      try {
        await E(c).incr('x');
      } catch (e) {
        err = e.message;
      }
      return [n, await E(c).read(), err];
    },
  });
}
