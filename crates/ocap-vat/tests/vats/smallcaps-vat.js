import { makeMarshal } from '@endo/marshal';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';
import { makeRandom } from './lib/random.js';

// Probes of liveslots' smallcaps codec for plain data (the native one,
// src/smallcaps.rs, which only the prelude's marshallers reach) against the
// JavaScript one: this bundle's own copy of @endo/marshal, which runs in the
// vat's compartment where the native codec is not endowed.

const jsMarshal = makeMarshal(undefined, undefined, {
  serializeBodyFormat: 'smallcaps',
  marshalName: 'reference',
});

// Strings and keys that exercise the escaping rules: smallcaps' special first
// characters (`!` to `-`), JSON escapes, non-BMP characters, lone surrogates,
// array-index-looking keys (ordered first by JavaScript), `__proto__`.
const STRINGS = [
  '', 'a', 'ping', '!', '!bang', '"quoted"', '#hash', '#undefined', '$0', '%sym', '&1',
  "'", '(', ')', '*', '+1', ',', '-1', '-', '.', '/', 'back\\slash', 'tab\there',
  'new\nline', '\u0000\u0001\u001f\u007f', '\u2028\u2029', 'héllo', '\u{1F600}',
  '\uD800', 'x\uDC00y', '\uE000', '0', '1', '9', '10', '01', '4294967294',
  '4294967295', '2147483648', '__proto__', 'constructor', 'then', 'length', 'zz', 'Z',
];
const NUMBERS = [
  0, -0, 1, -1, 42, 2 ** 31, -(2 ** 31), 2 ** 53, 0.1, -1.5e300, 1e21, 1e-7,
  123456.789, NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE,
];
const BIGINTS = [0n, -0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n, -(2n ** 100n)];

const makeGenerator = random => {
  const pick = list => list[Math.floor(random() * list.length)];
  const value = depth => {
    const r = random();
    if (depth > 3 || r < 0.45) {
      return pick([
        () => pick(STRINGS),
        () => pick(NUMBERS),
        () => pick(BIGINTS),
        () => pick([undefined, null, true, false]),
      ])();
    }
    if (r < 0.7) {
      const n = Math.floor(random() * 4);
      return Array.from({ length: n }, () => value(depth + 1));
    }
    const record = {};
    const n = Math.floor(random() * 5);
    for (let i = 0; i < n; i += 1) {
      Object.defineProperty(record, pick(STRINGS), {
        value: value(depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return record;
  };
  return () => harden(value(0));
};

/** Same value, as JavaScript sees it: styles, own keys in order, numbers by Object.is. */
const sameValue = (a, b) => {
  if (typeof a !== typeof b) return false;
  if (typeof a !== 'object' || a === null || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (!Object.isFrozen(a) || !Object.isFrozen(b)) return false;
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k, i) => k === kb[i] && sameValue(a[k], b[k]));
};

export function buildRootObject() {
  return makeDefaultExo('root', {
    /** `count` random plain values from `seed`, as the JavaScript encodes them. */
    generate(seed, count) {
      const generate = makeGenerator(makeRandom(seed));
      return harden(Array.from({ length: count }, () => jsMarshal.toCapData(generate()).body));
    },

    /**
     * `value` arrived through liveslots (decoded natively, if the codec took
     * it); `body` is the JavaScript encoding it came from. Throws unless the
     * JavaScript decodes `body` to the same value. Returns `value`, which
     * liveslots encodes again for the answer.
     */
    check(value, body) {
      const reference = jsMarshal.fromCapData(harden({ body, slots: [] }));
      if (!sameValue(value, reference)) {
        throw Error(`decoded differently: ${body}`);
      }
      return value;
    },
  });
}
