import { makeDefaultExo } from '@metamask/kernel-utils/exo';

// At module load, as `@endo/marshal` <= 1.6's encodePassable does (a
// float/bits union for encoding numbers): this line alone used to fail the
// vat's start with `TypeError: not a function`, because SES 2.x keeps the
// Float*Array constructors out of compartments.
const asNumber = new Float64Array(1);
const asBits = new BigUint64Array(asNumber.buffer);

/**
 * Encodes numbers through typed arrays made at load and per call.
 */
export function buildRootObject() {
  return makeDefaultExo('root', {
    /** The IEEE-754 bits of `x` in hex, through the load-time union. */
    float64Bits(x) {
      asNumber[0] = x;
      return asBits[0].toString(16);
    },
    /** `x` rounded to single precision. */
    float32(x) {
      const a = new Float32Array(1);
      a[0] = x;
      return a[0];
    },
  });
}
