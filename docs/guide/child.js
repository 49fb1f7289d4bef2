import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** The vat the admin launches. A cluster's bootstrap vat must have a `bootstrap` method. */
export function buildRootObject(vatPowers, parameters) {
  return makeDefaultExo('root', {
    bootstrap() {
      return `${parameters.name} is up`;
    },
    greet(who) {
      return `${parameters.name} greets ${who}`;
    },
  });
}
