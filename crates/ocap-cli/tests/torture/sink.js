import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The other half of the GC churn: holds the objects it is given in memory until `release`,
 * keeps every third one in baggage (a ring of four, so older ones are dropped by
 * overwriting), and makes throw-away objects. `poke` calls every kept object: those whose
 * owner restarted since are rejected by the kernel with OBJECT_DELETED, anything else is
 * reported.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  let held = [];
  let n = 0;
  const keep = (thing) => {
    const slot = baggage.has('next') ? baggage.get('next') : 0;
    const key = `kept.${slot % 4}`;
    if (baggage.has(key)) {
      baggage.set(key, thing);
    } else {
      baggage.init(key, thing);
    }
    if (baggage.has('next')) {
      baggage.set('next', slot + 1);
    } else {
      baggage.init('next', slot + 1);
    }
  };
  return makeDefaultExo('root', {
    hold(thing) {
      held.push(thing);
      n += 1;
      if (n % 3 === 0) {
        keep(thing);
      }
      return held.length;
    },
    release() {
      const count = held.length;
      held = [];
      return count;
    },
    make(count) {
      const out = [];
      for (let i = 0; i < count; i += 1) {
        out.push(makeDefaultExo('local', { id: () => i }));
      }
      return out;
    },
    /** `ok=<answered> deleted=<rejected as deleted> other=<other reasons, |-separated>`. */
    async poke() {
      const things = [0, 1, 2, 3].filter((i) => baggage.has(`kept.${i}`)).map((i) => baggage.get(`kept.${i}`));
      const results = await Promise.allSettled(things.map((t) => E(t).ping()));
      let ok = 0;
      let deleted = 0;
      const other = [];
      for (const r of results) {
        if (r.status === 'fulfilled') {
          ok += 1;
        } else if (String(r.reason && r.reason.message).includes('OBJECT_DELETED')) {
          deleted += 1;
        } else {
          other.push(String(r.reason && r.reason.message));
        }
      }
      return `ok=${ok} deleted=${deleted} other=${other.join('|')}`;
    },
  });
}
