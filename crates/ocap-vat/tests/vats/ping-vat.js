import { E } from '@endo/eventual-send';
import { Far } from '@endo/far';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A small vat written the way JS-kernel users write them.
 *
 * @param {object} vatPowers
 * @param {object} parameters
 * @param {object} baggage
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const name = parameters?.name ?? 'anonymous';
  const logger = vatPowers.logger.subLogger({ tags: ['test', name] });
  console.log(`buildRootObject "${name}"`);
  if (!baggage.has('counter')) {
    baggage.init('counter', 0);
  }
  /** `n` messages to `other`, not awaited: two syscalls each (send, subscribe). */
  const sendIncrements = (other, n) => {
    for (let i = 0; i < n; i += 1) {
      E(other).increment(i);
    }
  };
  return makeDefaultExo('root', {
    ping() {
      return 'pong';
    },
    hello(who) {
      const { log } = logger; // Logger methods are pre-bound
      log(`hello ${who}`, { who });
      return `hello ${who} from ${name}`;
    },
    increment() {
      const next = baggage.get('counter') + 1;
      baggage.set('counter', next);
      return next;
    },
    async callFoo(other) {
      return E(other).foo(1, 'two');
    },
    /** `n` messages to `other`, not awaited. */
    sendMany(other, n) {
      sendIncrements(other, n);
      return n;
    },
    /** `sendMany`, then, once the sends have been made, a loop the delivery budget ends. */
    async sendManyThenSpin(other, n) {
      sendIncrements(other, n);
      // Each send is made in the job its `E()` queued, before this continuation.
      await null;
      for (;;) {
        // a vat stuck in a loop
      }
    },
    fail() {
      throw Error('deliberate failure');
    },
    /**
     * `E()` to a local `Far` object whose method throws a value `harden` cannot freeze (its
     * `preventExtensions` trap throws); answers how many calls were made and how it settled.
     */
    async sendToUnfreezableThrower() {
      let calls = 0;
      const thrower = Far('thrower', {
        boom() {
          calls += 1;
          throw new Proxy(
            {},
            {
              preventExtensions() {
                throw Error('cannot freeze this');
              },
            },
          );
        },
      });
      const settled = await E(thrower)
        .boom()
        .then(
          () => 'fulfilled',
          e => `rejected: ${e.message}`,
        );
      return `${calls} call(s), ${settled}`;
    },
    now() {
      return Date.now();
    },
    random() {
      return Math.random();
    },
    globalsPresent() {
      return ['TextEncoder', 'setTimeout', 'URL', 'fetch', 'process', 'require'].filter(
        n => n in globalThis,
      );
    },
    spin() {
      for (;;) {
        // a vat stuck in a loop
      }
    },
    hog() {
      const chunks = [];
      for (;;) {
        chunks.push(new Array(100000).fill(chunks.length));
      }
    },
  });
}
