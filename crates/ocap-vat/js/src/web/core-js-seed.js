// Called right before core-js-pure loads (see url.js).
//
// core-js's internal-state module does `store.get = store.get` (and has/set)
// on a WeakMap to protect against later prototype patching. Under SES the
// WeakMap prototype is frozen, so that assignment hits the override mistake
// and throws. core-js takes an existing `state` WeakMap from its shared
// registry if there is one: give it one whose methods are already own,
// writable properties, so the self-assignments are harmless.
export const seedCoreJs = () => {
  const state = new WeakMap();
  for (const name of ['get', 'has', 'set']) {
    Object.defineProperty(state, name, {
      value: WeakMap.prototype[name],
      writable: true,
      configurable: true,
    });
  }
  globalThis['__core-js_shared__'] = { state };
};
