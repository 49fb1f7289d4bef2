import { makeScalarMapStore } from '@agoric/store';
import { defineExoClass, defineExoClassKit, makeExo } from '@endo/exo';
import { M } from '@endo/patterns';

/**
 * Exos with interface guards (spec vat-side §7.5: the exo-vat of kernel-test imports
 * `makeExo`, `defineExoClass`, `defineExoClassKit` from @endo/exo, `M` from @endo/patterns
 * and `makeScalarMapStore` from @agoric/store). Calls that break a guard must reject.
 */
export function buildRootObject() {
  const CounterI = M.interface('Counter', {
    incr: M.call().optional(M.number()).returns(M.number()),
    read: M.call().returns(M.number()),
  });
  const makeCounter = defineExoClass('Counter', CounterI, start => ({ count: start }), {
    incr(by = 1) {
      this.state.count += by;
      return this.state.count;
    },
    read() {
      return this.state.count;
    },
  });

  const makeAccount = defineExoClassKit(
    'Account',
    {
      owner: M.interface('AccountOwner', { withdraw: M.call(M.nat()).returns(M.nat()) }),
      viewer: M.interface('AccountViewer', { balance: M.call().returns(M.nat()) }),
    },
    balance => ({ balance }),
    {
      owner: {
        withdraw(amount) {
          if (amount > this.state.balance) {
            throw Error(`insufficient funds: ${this.state.balance} < ${amount}`);
          }
          this.state.balance -= amount;
          return this.state.balance;
        },
      },
      viewer: {
        balance() {
          return this.state.balance;
        },
      },
    },
  );

  const registry = makeScalarMapStore('registry');

  const RootI = M.interface('ExoRoot', {
    makeCounter: M.call(M.number()).returns(M.remotable('Counter')),
    makeAccount: M.call(M.nat()).returns(M.record()),
    greet: M.call(M.string()).returns(M.string()),
    register: M.call(M.string(), M.any()).returns(M.number()),
    lookup: M.call(M.string()).returns(M.any()),
    // Returns something that breaks its own return guard.
    badReturn: M.call().returns(M.string()),
    // An async guard: the promise argument is awaited before the method runs.
    double: M.callWhen(M.await(M.number())).returns(M.number()),
  });

  return makeExo('ExoRoot', RootI, {
    makeCounter(start) {
      return makeCounter(start);
    },
    makeAccount(balance) {
      return makeAccount(balance);
    },
    greet(who) {
      return `hello ${who}`;
    },
    register(key, value) {
      registry.init(key, value);
      return registry.getSize();
    },
    lookup(key) {
      return registry.get(key);
    },
    badReturn() {
      return 42;
    },
    double(n) {
      return n * 2;
    },
  });
}
