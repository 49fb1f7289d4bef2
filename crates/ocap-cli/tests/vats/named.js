import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** Answers with the name its parameters give it; used to see which vat is which. */
export function buildRootObject(vatPowers, parameters) {
  return makeDefaultExo('root', {
    bootstrap() {
      return parameters.me;
    },
    who() {
      return parameters.me;
    },
  });
}
