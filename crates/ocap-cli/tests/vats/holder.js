import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Makes heap objects for others, and holds one it got from another vat until told to let
 * go of it (tests/host_api.rs: GC through `Kernel::reap_vats`).
 */
export function buildRootObject() {
  let held;
  let made = 0;
  return makeDefaultExo('root', {
    bootstrap() {
      return 'ready';
    },
    makeThing() {
      made += 1;
      const label = `thing ${made}`;
      return makeDefaultExo('thing', { label: () => label });
    },
    async fetchFrom(maker) {
      held = await E(maker).makeThing();
      return E(held).label();
    },
    release() {
      held = undefined;
      return 'released';
    },
    ping() {
      return 'pong';
    },
  });
}
