// Shared by the probe vats' generators (imported; the bundler inlines it). In a
// directory of its own: the tests that bundle every `tests/vats/*.js` as a vat skip it.

/** mulberry32: a small seeded generator, so a failing seed can be replayed. */
export const makeRandom = seed => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};
