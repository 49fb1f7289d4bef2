import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** A vat that can be told to loop forever: the runaway of the metering tests. */
export function buildRootObject() {
  return makeDefaultExo('root', {
    bootstrap() {
      return 'ready';
    },
    ping() {
      return 'pong';
    },
    spin() {
      for (;;) {
        // Nothing: only the kernel's delivery budget ends this.
      }
    },
  });
}
