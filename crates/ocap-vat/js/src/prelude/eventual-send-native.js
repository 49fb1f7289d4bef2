// Endows our patch to @endo/eventual-send (js/patches/@endo+eventual-send+1.5.0.patch) with
// the native `nonThenableObject` (src/non_thenable.rs): `makeHandledPromise`, which the shim
// runs when 01-shims.js imports it, takes it from this symbol-named global; 01-shims.js
// removes the global right after, so vats never see it.
import { host } from './00-host.js';

if (typeof host.nonThenableObject === 'function') {
  globalThis[Symbol.for('@ocap nonThenableObject')] = host.nonThenableObject;
}
