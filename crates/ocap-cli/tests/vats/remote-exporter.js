import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The exporting side of tests/remote.rs (kernel A): gets `ocapURLIssuerService` in bootstrap
 * and answers an OCAP URL for a counter another kernel will use. The counter is durable (it
 * and its count survive a restart of the kernel); it counts, fails on request, makes heap
 * children (for pipelining and GC) and awaits promises it is given.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const { makeKindHandle, defineDurableKind } = VatData;
  if (!baggage.has('counterKind')) {
    baggage.init('counterKind', makeKindHandle('Counter'));
  }
  const makeCounter = defineDurableKind(baggage.get('counterKind'), () => ({ count: 0 }), {
    increment({ state }) {
      state.count += 1;
      return state.count;
    },
    fail() {
      throw Error('counter says no');
    },
    make(_context, name) {
      return makeDefaultExo(`child ${name}`, {
        hello(who) {
          return `${name} says hello to ${who}`;
        },
      });
    },
    async watch(_context, p) {
      const v = await p;
      return `watched ${v}`;
    },
    count({ state }) {
      return state.count;
    },
  });
  return makeDefaultExo('root', {
    async bootstrap(vats, services) {
      const counter = makeCounter();
      baggage.init('counter', counter);
      return E(services.ocapURLIssuerService).issue(counter);
    },
    count() {
      return E(baggage.get('counter')).count();
    },
  });
}
