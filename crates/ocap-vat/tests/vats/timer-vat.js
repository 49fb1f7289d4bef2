import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';
import { makePromiseKit } from '@endo/promise-kit';

/**
 * A vat that acts from timers, i.e. outside any delivery: its syscalls reach
 * the kernel as async syscalls.
 */
export function buildRootObject() {
  return makeDefaultExo('root', {
    // Resolves the result from a timer.
    delayed(value, ms) {
      const kit = makePromiseKit();
      setTimeout(() => kit.resolve(value), ms);
      return kit.promise;
    },
    // Calls another vat from a timer and resolves with its answer.
    askLater(other, ms) {
      const kit = makePromiseKit();
      setTimeout(() => kit.resolve(E(other).hello('a timer')), ms);
      return kit.promise;
    },
  });
}
