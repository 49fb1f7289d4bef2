import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Builds fine, then rejects `bootstrap` (the JS kernel's rejection-bootstrap vat): "If
 * `bootstrap` rejects, `launchSubcluster` throws that error" (spec vat-side §7.3).
 */
export function buildRootObject() {
  return makeDefaultExo('root', {
    async bootstrap() {
      throw Error('rejected from bootstrap of error-bootstrap-vat');
    },
  });
}
