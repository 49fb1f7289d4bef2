import { makePromiseKit } from '@endo/promise-kit';

export async function buildRootObject() {
  return makePromiseKit().promise;
}
