import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The bootstrap vat: `bootstrap(vats, services)` runs once, with the roots of every vat of
 * the cluster. Its result is what `ocap run` prints.
 */
export function buildRootObject() {
  return makeDefaultExo('root', {
    async bootstrap(vats) {
      // `E(x).method(...)` sends a message and returns a promise for the answer.
      const hello = await E(vats.english).greet('Alice');
      const bonjour = await E(vats.french).greet('Alice');
      // The interface guard rejects a bad argument.
      const refused = await E(vats.english).greet(42).catch(e => e.message);
      // Pipelining: send to the guest book before the promise for it has settled.
      const book = E(vats.english).makeGuestBook();
      await E(book).sign('Alice');
      await E(book).sign('Bob');
      const names = await E(book).names();
      return `${hello} ${bonjour} greet(42): ${refused}; guests: ${names.join(', ')}`;
    },
  });
}
