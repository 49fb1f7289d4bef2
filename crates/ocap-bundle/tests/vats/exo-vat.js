// Uses the rest of the runtime-relevant package set (spec vat-side §7.5),
// a local module through a directory index, and `@endo/errors`.
import { makeExo, defineExoClass } from '@endo/exo';
import { M } from '@endo/patterns';
import { makeScalarMapStore } from '@agoric/store';
import { Fail, q } from '@endo/errors';
import { makePromiseKit } from '@endo/promise-kit';
import { double, mode } from './lib';

const CounterI = M.interface('Counter', {
  incr: M.call().returns(M.number()),
});

export const makeCounter = defineExoClass('Counter', CounterI, () => ({ count: 0 }), {
  incr() {
    this.state.count += 1;
    return this.state.count;
  },
});

export function buildRootObject() {
  const store = makeScalarMapStore('things');
  const counter = makeCounter();
  return makeExo('root', M.interface('Root', {}, { defaultGuards: 'passable' }), {
    ping() {
      return 'pong';
    },
    put(key, value) {
      store.init(key, value);
      return store.getSize();
    },
    incr() {
      return double(counter.incr());
    },
    badIncr() {
      return counter.incr(1);
    },
    mode() {
      return mode;
    },
    check(ok) {
      ok || Fail`not ok: ${q(ok)}`;
      return 'ok';
    },
    async later(v) {
      const kit = makePromiseKit();
      kit.resolve(v);
      return kit.promise;
    },
  });
}
