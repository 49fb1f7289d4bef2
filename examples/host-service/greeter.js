import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A vat that uses host services: it has no clock of its own (no `Date` endowment), so it
 * asks the host's `clock` service, and it writes to the host's log through `log`.
 */
export function buildRootObject(vatPowers, parameters) {
  const name = parameters?.name ?? 'greeter';
  return makeDefaultExo('root', {
    async bootstrap(vats, services) {
      await E(services.log).info(`${name} starting`);
      const before = await E(services.clock).now();
      const after = await E(services.clock).now();
      const ok = typeof before === 'number' && after >= before && before > 1.6e12;
      return `${name} asked the host for the time: ${ok ? 'the host clock works' : 'no clock'}`;
    },
  });
}
