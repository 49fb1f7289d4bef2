import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** Calls the host service `echo` it is given in bootstrap, and keeps it in baggage. */
export function buildRootObject(vatPowers, parameters, baggage) {
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      baggage.init('echo', services.echo);
      return E(services.echo).echo('hello');
    },
    again(text) {
      return E(baggage.get('echo')).echo(text);
    },
  });
}
