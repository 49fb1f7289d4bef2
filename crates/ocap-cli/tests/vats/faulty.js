import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** Fails where `parameters.failIn` says: `build` (buildRootObject) or `bootstrap`. */
export function buildRootObject(vatPowers, parameters) {
  if (parameters?.failIn === 'build') {
    throw Error('buildRootObject fails on purpose');
  }
  return makeDefaultExo('root', {
    bootstrap() {
      if (parameters?.failIn === 'bootstrap') {
        throw Error('bootstrap fails on purpose');
      }
      return 'ready';
    },
  });
}
