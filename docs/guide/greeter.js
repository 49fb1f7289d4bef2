import { makeExo } from '@endo/exo';
import { Far } from '@endo/far';
import { M } from '@endo/patterns';

/**
 * A greeter. `parameters` come from the vat's config; `greet` is guarded, so a call with
 * anything but a string is rejected before the method runs.
 */
export function buildRootObject(vatPowers, parameters) {
  const greeting = parameters?.greeting ?? 'Hello';
  const GreeterI = M.interface('Greeter', {
    greet: M.call(M.string()).returns(M.string()),
    makeGuestBook: M.call().returns(M.remotable('GuestBook')),
  });
  return makeExo('Greeter', GreeterI, {
    greet(name) {
      return `${greeting}, ${name}!`;
    },
    makeGuestBook() {
      const names = [];
      // `Far` makes a plain remotable: no guard, every method callable with anything.
      return Far('GuestBook', {
        sign(name) {
          names.push(name);
          return names.length;
        },
        names() {
          return harden([...names]);
        },
      });
    },
  });
}
