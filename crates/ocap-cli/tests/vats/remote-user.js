import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';
import { makePromiseKit } from '@endo/promise-kit';

/**
 * The using side of tests/remote.rs (kernel B): redeems a URL of another kernel through
 * `ocapURLRedemptionService` and calls the object it names: results, an error, pipelining
 * (a call on the answer of a call still in flight), a promise passed as an argument and
 * settled later, and a child it can forget (so the other kernel collects it).
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  let counter;
  let child;
  const settle = async (p) => {
    try {
      return `fulfilled: ${await p}`;
    } catch (e) {
      return `rejected: ${e && e.message}`;
    }
  };
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      baggage.init('redeemer', services.ocapURLRedemptionService);
      return 'ready';
    },
    async connect(url) {
      counter = await E(baggage.get('redeemer')).redeem(url);
      return 'connected';
    },
    increment() {
      return E(counter).increment();
    },
    /** `n` increments, one after the other; the counts answered, in order. */
    async stream(n) {
      const seen = [];
      for (let i = 0; i < n; i += 1) {
        // eslint-disable-next-line no-await-in-loop
        seen.push(await E(counter).increment());
      }
      return harden(seen);
    },
    async tour() {
      const first = await E(counter).increment();
      const second = await E(counter).increment();
      const failure = await settle(E(counter).fail());
      // Pipelined: `hello` goes to the answer of `make` before that answer is back.
      const piped = await E(E(counter).make('pipe')).hello('Bob');
      // A promise of ours as an argument, settled after the call went out.
      const { promise, resolve } = makePromiseKit();
      const watching = E(counter).watch(promise);
      resolve('later');
      const watched = await watching;
      const { promise: doomed, reject } = makePromiseKit();
      const watchingDoomed = settle(E(counter).watch(doomed));
      reject(Error('never'));
      return harden({ first, second, failure, piped, watched, doomed: await watchingDoomed });
    },
    /** A call the other kernel will never answer (it awaits a promise nobody settles). */
    waitForever() {
      return settle(E(counter).watch(new Promise(() => {})));
    },
    async makeChild() {
      child = await E(counter).make('kept');
      return E(child).hello('Carol');
    },
    forgetChild() {
      child = undefined;
      return 'forgotten';
    },
  });
}
