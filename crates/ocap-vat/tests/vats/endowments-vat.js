import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

export function buildRootObject() {
  let ticks = 0;
  let interval;
  return makeDefaultExo('root', {
    now() {
      const a = Date.now();
      const b = new Date().getTime();
      return b >= a && a > 1_600_000_000_000;
    },
    random() {
      const r = Math.random();
      return r >= 0 && r < 1;
    },
    encode(text) {
      const bytes = new TextEncoder().encode(text);
      return [Array.from(bytes), new TextDecoder().decode(bytes)];
    },
    base64(text) {
      const encoded = btoa(text);
      return [encoded, atob(encoded)];
    },
    later(other, ms) {
      setTimeout(() => {
        E(other).foo('from a timer');
      }, ms);
      return 'scheduled';
    },
    cancelled(other) {
      const handle = setTimeout(() => E(other).foo('must not happen'), 5);
      clearTimeout(handle);
      return typeof handle;
    },
    startTicking(other) {
      interval = setInterval(() => {
        ticks += 1;
        E(other).tick(ticks);
        if (ticks === 3) clearInterval(interval);
      }, 10);
      return 'ticking';
    },
  });
}
