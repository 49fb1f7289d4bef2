import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** `n` arrays nested in one another around the string 'leaf': `[[…['leaf']…]]`. */
const makeDeep = (n) => {
  let v = 'leaf';
  for (let i = 0; i < n; i += 1) {
    v = [v];
  }
  return v;
};

/** How many arrays `v` is nested in, counted without recursion. */
const depthOf = (v) => {
  let d = 0;
  let x = v;
  while (Array.isArray(x)) {
    if (x.length !== 1) {
      throw Error(`not a makeDeep value at depth ${d}`);
    }
    d += 1;
    [x] = x;
  }
  if (x !== 'leaf') {
    throw Error(`not a makeDeep value: leaf is ${String(x)}`);
  }
  return d;
};

/**
 * Deeply nested values (kernel-core.md §7, smallcaps) and plain numbers for the host's JSON
 * views. With a `peer` vat, `viaPeer`/`toPeer` exchange deep values between two vats.
 */
export function buildRootObject() {
  let peer;
  return makeDefaultExo('root', {
    bootstrap(vats) {
      peer = vats.peer;
      return [4, 0, -7, 2.5, 2 ** 53, 1e21, -0];
    },
    numbers() {
      return [4, 0, -7, 2.5, 2 ** 53, 1e21, -0, 0.1];
    },
    makeDeep,
    depthOf,
    async viaPeer(n) {
      return depthOf(await E(peer).makeDeep(n));
    },
    toPeer(n) {
      return E(peer).depthOf(makeDeep(n));
    },
  });
}
