import { Far } from '@endo/far';
import { makeTagged } from '@endo/pass-style';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Calls a default exo (`makeDefaultExo`: the passable guard on every method) with arguments
 * and results of every kind, and reports what each call answered or threw: the guard must
 * accept exactly the passable ones and refuse the others with @endo/exo's own messages
 * (tests/exo_guard.rs).
 */
export function buildRootObject() {
  const inner = makeDefaultExo('inner', {
    count(...args) {
      return args.length;
    },
    give(kind) {
      switch (kind) {
        case 'record':
          return harden({ a: 1, b: [2, 'x'] });
        case 'unhardened':
          return { a: 1 };
        case 'function':
          return () => 1;
        case 'accessor':
          return harden({
            get x() {
              return 1;
            },
          });
        case 'promise':
          return Promise.resolve(1);
        case 'remotable':
          return Far('thing', {});
        case 'error':
          return harden(Error('boom'));
        case 'nested-function':
          return harden({ f: () => 1 });
        case 'undefined':
          return undefined;
        case 'tagged':
          return makeTagged('match:any', undefined);
        case 'tagged named like an Object.prototype member':
          return makeTagged('toString', 1);
        case 'tagged copySet out of order':
          return makeTagged('copySet', harden([1, 2]));
        default:
          return kind;
      }
    },
  });
  const outcome = thunk => {
    try {
      return `ok: ${String(thunk())}`;
    } catch (e) {
      return `threw: ${e.message}`;
    }
  };
  return makeDefaultExo('root', {
    probe() {
      const promise = Promise.resolve(2);
      const args = [
        ['nothing', []],
        ['plain', [1, 'a', [2, { b: 3n }], null, undefined, true]],
        ['remotable and promise', [Far('t', {}), promise]],
        ['error', [harden(Error('e'))]],
        ['function', [() => 1]],
        ['nested function', [{ f: () => 1 }]],
        ['accessor', [{ get x() { return 1; } }]],
        ['symbol', [Symbol('local')]],
        ['tagged named like an Object.prototype member', [makeTagged('toString', 1)]],
      ].map(([name, a]) => `${name}: ${outcome(() => inner.count(...a))}`);
      const results = [
        'record',
        'unhardened',
        'function',
        'accessor',
        'promise',
        'remotable',
        'error',
        'nested-function',
        'undefined',
        'tagged',
        'tagged named like an Object.prototype member',
        'tagged copySet out of order',
        'text',
      ].map(kind => `${kind}: ${outcome(() => inner.give(kind))}`);
      const arg = [{ deep: [1] }];
      inner.count(arg);
      const given = inner.give('unhardened');
      const hardening = [
        `arguments hardened: ${Object.isFrozen(arg) && Object.isFrozen(arg[0].deep)}`,
        `result hardened: ${Object.isFrozen(given)}`,
      ];
      return harden([...args, ...results, ...hardening]);
    },
  });
}
