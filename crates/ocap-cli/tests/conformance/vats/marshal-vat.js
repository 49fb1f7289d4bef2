import { Far } from '@endo/far';
import { makeMarshal, passStyleOf } from '@endo/marshal';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * A vat that imports @endo/marshal itself, as many vat authors do. Loading it runs
 * @endo/marshal's module code (its passable encoding does `new Float64Array(1)` at load), so
 * the typed-array intrinsics must work inside the vat's compartment (spec vat-side §4.4: the
 * compartment global "carries all the ES intrinsics").
 */
export function buildRootObject() {
  const slots = [];
  const { toCapData, fromCapData } = makeMarshal(
    val => {
      slots.push(val);
      return `s${slots.length - 1}`;
    },
    slot => slots[Number(slot.slice(1))],
    { serializeBodyFormat: 'smallcaps' },
  );
  const thing = Far('thing', { hi: () => 'hi' });

  return makeDefaultExo('root', {
    bootstrap() {
      const value = harden({
        n: 1,
        big: 2n,
        s: 'x',
        bang: '!excited',
        u: undefined,
        nan: NaN,
        neg: -Infinity,
        list: [true, null],
        thing,
      });
      const capData = toCapData(value);
      const back = fromCapData(capData);
      const f64 = new Float64Array(1);
      f64[0] = 0.5;
      return harden({
        body: capData.body,
        slots: capData.slots,
        roundTrip: back.thing === thing && back.big === 2n && Number.isNaN(back.nan),
        styles: [passStyleOf(thing), passStyleOf(2n), passStyleOf(harden([1])), passStyleOf(undefined)],
        float64: Array.from(new Uint8Array(f64.buffer)),
      });
    },
  });
}
