import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

import { runScenario } from '../turn-order-scenario.js';

/**
 * Runs ../turn-order-scenario.js on the `HandledPromise` vats get (ocap's, patched), for
 * ../conformance.rs to compare with npm's (turn-order.mjs).
 */
export function buildRootObject() {
  return makeDefaultExo('root', {
    bootstrap() {
      return runScenario(E, HandledPromise);
    },
  });
}
