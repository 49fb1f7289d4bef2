import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Services and globals: the vat gets the host services its cluster lists (as the second
 * argument of `bootstrap`) and only the globals its config lists.
 */
export function buildRootObject(vatPowers, parameters) {
  return makeDefaultExo('root', {
    async bootstrap(vats, services) {
      await E(services.log).info(`the tour starts`);
      const t1 = await E(services.clock).now();
      const t2 = await E(services.clock).now();
      const clock = t2 >= t1 && t1 > 1.6e12 ? 'the host clock works' : 'no clock';
      const bytes = new TextEncoder().encode(parameters.word).length;
      let date;
      try {
        date = `Date.now() returned ${Date.now()}`;
      } catch (e) {
        date = 'Date.now() throws (Date is not in globals)';
      }
      const names = Object.keys(services).sort().join(', ');
      return `services: ${names}; ${clock}; "${parameters.word}" is ${bytes} bytes; ${date}`;
    },
  });
}
