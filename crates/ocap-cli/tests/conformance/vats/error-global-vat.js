import { makeDefaultExo } from '@metamask/kernel-utils/exo';

// Throws while the bundle is evaluated, before `buildRootObject` exists (the JS kernel's
// error-global-throw vat): the launch must fail with this message, the kernel must not.
throw Error('thrown at global scope of error-global-vat');

// eslint-disable-next-line no-unreachable
export function buildRootObject() {
  return makeDefaultExo('root', {});
}
