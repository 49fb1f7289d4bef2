import { Far, makeJsPassStyleOf, makeTagged, passStyleOf } from '@endo/pass-style';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';
import { makeRandom } from './lib/random.js';

// Probes of the realm's `passStyleOf` (the native one, src/pass_style.rs, which
// liveslots endows and this bundle's copy of @endo/pass-style takes) against
// the JavaScript one (`makeJsPassStyleOf`, our patch's export). Every method
// returns plain data.

const KEYS = ['a', 'b', 'then', '0', '1', 'length', 'constructor', 'x y', ''];

/**
 * A random value: mostly the plain data marshal sees, with every kind of
 * thing that is not plain data mixed in at any depth.
 */
const makeGenerator = random => {
  const pick = list => list[Math.floor(random() * list.length)];
  const int = n => Math.floor(random() * n);

  const primitive = () =>
    pick([
      () => undefined,
      () => null,
      () => random() < 0.5,
      () => int(1000) - 500,
      () => random() * 1e6,
      () => pick([-0, NaN, Infinity, -Infinity, 2 ** 53]),
      () => BigInt(int(1000)) - 500n,
      () => 2n ** 80n,
      () => pick(['', 'ping', 'héllo', '\u{1F600}', 'x'.repeat(int(40))]),
      () => '\uD800', // a lone surrogate
      () => Symbol.for('registered'),
      () => Symbol.asyncIterator,
      () => Symbol('unique'),
    ])();

  // Finishes a container: usually hardened, sometimes only frozen (its
  // children may then be mutable), sometimes left mutable.
  const finish = obj => {
    const r = random();
    if (r < 0.9) return harden(obj);
    if (r < 0.95) return Object.freeze(obj);
    return obj;
  };

  const array = depth => {
    const arr = [];
    const n = int(5);
    for (let i = 0; i < n; i += 1) arr.push(value(depth + 1));
    switch (int(14)) {
      case 0:
        arr[n + 2] = 1; // a hole
        break;
      case 1:
        arr.extra = 1;
        break;
      case 2:
        Object.defineProperty(arr, n, { get: () => 1, enumerable: true });
        break;
      case 3:
        if (n > 0) Object.defineProperty(arr, 0, { value: 1, enumerable: false });
        break;
      case 4:
        arr[Symbol.for('s')] = 1;
        break;
      case 5:
        Object.setPrototypeOf(arr, Object.prototype);
        break;
      case 6:
        arr.then = () => {};
        break;
      default:
    }
    return finish(arr);
  };

  const record = depth => {
    const rec = int(12) === 0 ? Object.create(null) : {};
    const n = int(5);
    for (let i = 0; i < n; i += 1) rec[pick(KEYS)] = value(depth + 1);
    switch (int(14)) {
      case 0:
        Object.defineProperty(rec, 'acc', { get: () => 1, enumerable: true });
        break;
      case 1:
        Object.defineProperty(rec, 'hidden', { value: 1, enumerable: false });
        break;
      case 2:
        rec.fn = () => {};
        break;
      case 3:
        rec.then = () => {};
        break;
      case 4:
        rec[Symbol.for('s')] = 1;
        break;
      default:
    }
    return finish(rec);
  };

  const special = depth =>
    pick([
      () => Far('thing', { m: () => 1 }),
      () => harden(() => 1),
      () => () => 1,
      () => {
        // makeTagged itself checks that the payload passes.
        const payload = value(depth + 1);
        try {
          return makeTagged('tag', payload);
        } catch {
          return makeTagged('tag', null);
        }
      },
      () => harden(Error('boom')),
      () => harden(TypeError('typed')),
      () => harden(Promise.resolve(1)),
      () => Promise.resolve(1),
      () => new Uint8Array(2),
      () => harden(new Map()),
      () => harden(new Date(0)),
      () => harden(new (class Point {})()),
      () => new Proxy(harden([1, 'two']), {}),
      () => new Proxy(harden({ a: 1 }), {}),
      () => {
        const cyclic = [1];
        cyclic.push(cyclic);
        return harden(cyclic);
      },
      () => {
        const cyclic = { a: 1 };
        cyclic.self = { back: cyclic };
        return harden(cyclic);
      },
      () => {
        // Deeper than the native walk goes (MAX_DEPTH = 64).
        let deep = 'bottom';
        for (let i = 0; i < 60 + int(30); i += 1) deep = harden(i % 2 ? [deep] : { d: deep });
        return deep;
      },
      () => {
        const shared = harden({ s: 1 });
        return harden([shared, { again: shared }, [shared]]);
      },
    ])();

  const value = depth => {
    const r = random();
    if (depth > 4 || r < 0.35) return primitive();
    if (r < 0.65) return array(depth);
    if (r < 0.92) return record(depth);
    return special(depth);
  };

  return () => value(0);
};

/** `ok:<style>` or `err:<name>:<message>`. */
const outcome = (fn, specimen) => {
  try {
    return `ok:${fn(specimen)}`;
  } catch (e) {
    return `err:${e && e.name}:${e && e.message}`;
  }
};

export function buildRootObject() {
  const jsPassStyleOf = makeJsPassStyleOf();
  return makeDefaultExo('root', {
    /** Whether the `passStyleOf` vat code gets is the native one, and that it is hardened. */
    whichPassStyleOf() {
      return [
        `${passStyleOf}`.includes('[native code]'),
        passStyleOf.name,
        Object.isFrozen(passStyleOf),
        `${jsPassStyleOf}`.includes('[native code]'),
      ];
    },

    /**
     * `count` random values from `seed`: every one must get the same result
     * from both (the same style, or an error of the same name and message).
     * Returns the mismatches (at most 5) and how often each outcome kind came up.
     */
    compare(seed, count) {
      const generate = makeGenerator(makeRandom(seed));
      const mismatches = [];
      const kinds = {};
      for (let i = 0; i < count; i += 1) {
        const specimen = generate();
        const native = outcome(passStyleOf, specimen);
        const js = outcome(jsPassStyleOf, specimen);
        const kind = js.startsWith('ok:') ? js : 'error';
        kinds[kind] = (kinds[kind] || 0) + 1;
        if (native !== js && mismatches.length < 5) {
          mismatches.push({ index: i, native, js });
        }
      }
      return harden({ mismatches, kinds });
    },

    /** Fixed cases where a wrong native answer would be easy to make. */
    edgeCases() {
      const cases = [
        [],
        harden([]),
        harden({}),
        harden([undefined, null]),
        harden({ then: 1 }),
        harden({ length: 1 }),
        harden(Object.create(null)),
        Object.freeze([{}]),
        harden([1, , 3]), // a hole
        harden([Far('f', {})]),
        harden({ p: Promise.resolve() }),
        harden({ e: Error('x') }),
        harden([Symbol('unique')]),
        '\uD800',
      ];
      return harden(cases.map(c => outcome(passStyleOf, c) === outcome(jsPassStyleOf, c)));
    },
  });
}
