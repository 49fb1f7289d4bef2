// The order in which eventual sends run, among plain promise jobs.
//
// `runScenario(E, HandledPromise)` starts eventual sends of every kind (to presences with and
// without a proxy, to local objects, to promises pending and settled, with and without a
// pending handler, pipelined, send-only, `get`, function calls, failures) beside a ticker that
// logs one entry per promise job, and answers the log once the ticker has run out. Every
// handler call, every settlement and every tick is an entry, so the log shows in which job each
// thing happened.
//
// Run twice by ../conformance.rs with the same expectation: by Node with npm's
// `@endo/eventual-send` under SES (turn-order.mjs), and in an ocap vat
// (vats/turn-order-vat.js), whose `HandledPromise` is ocap's prelude copy with
// crates/ocap-vat/js/patches/@endo+eventual-send+1.5.0.patch applied (fast paths for
// presences and for local objects, a lazy postponed handler). The two logs must be equal.

import { Far } from '@endo/far';

/** Jobs the ticker runs; everything in the scenario settles well before. */
const TICKS = 20;

export const runScenario = (E, HandledPromise) => {
  const log = [];
  const note = entry => {
    log.push(entry);
  };
  const show = v => (typeof v === 'string' ? v : typeof v);
  const settle = (label, p) =>
    p.then(
      v => note(`${label} fulfilled ${show(v)}`),
      e => note(`${label} rejected ${e.message}`),
    );

  let tick = 0;
  let finished;
  const done = new Promise(resolve => {
    finished = resolve;
  });
  const ticker = () => {
    tick += 1;
    note(`t${tick}`);
    if (tick < TICKS) {
      Promise.resolve().then(ticker);
    } else {
      finished();
    }
  };
  Promise.resolve().then(ticker);

  const makeHandler = name => ({
    applyMethod(_o, prop, args, returnedP) {
      note(`${name}.${String(prop)}(${args.join(',')}) result:${returnedP !== undefined}`);
      if (prop === 'fail') {
        throw Error(`${name} fails`);
      }
      if (prop === 'later') {
        return Promise.resolve(`${name} later`);
      }
      if (prop === 'presence') {
        // A handled promise with its own pending handler, as liveslots answers a send.
        return new HandledPromise(resolve => {
          Promise.resolve().then(() => resolve(presence));
        }, makeHandler(`${name}-answer`));
      }
      return `${name} ${String(prop)}`;
    },
    applyFunction(_o, args, returnedP) {
      note(`${name}(${args.join(',')}) result:${returnedP !== undefined}`);
      return `${name} called`;
    },
    get(_o, prop, returnedP) {
      note(`${name}.get ${String(prop)} result:${returnedP !== undefined}`);
      return `${name}.${String(prop)}`;
    },
  });

  // A presence made without a proxy (as liveslots makes them) and its promise.
  let presence;
  const presenceP = new HandledPromise((_resolve, _reject, resolveWithPresence) => {
    presence = resolveWithPresence(makeHandler('presence'));
  });
  // A presence that is a proxy; its `then` reads are logged.
  let proxied;
  // eslint-disable-next-line no-new
  new HandledPromise((_resolve, _reject, resolveWithPresence) => {
    proxied = resolveWithPresence(makeHandler('proxied'), {
      proxy: {
        handler: {
          get(target, key) {
            if (key === 'then') {
              note('proxied: then read');
            }
            return target[key];
          },
        },
        target: {},
      },
    });
  });
  const local = harden({
    hi: x => {
      note(`local.hi(${x})`);
      return 'local hi';
    },
  });

  settle('send', E(presence).hello(1));
  settle('fail', E(presence).fail(2));
  settle('later', E(presence).later(3));
  settle('pipelined', E(E(presence).presence(4)).again(5));
  settle('on a string', E(E(presence).hello(6)).again(7));
  E.sendOnly(presence).quiet(8);
  settle('get', E.get(presence).prop);
  settle('call', E(presence)(9));
  settle('to its promise', E(presenceP).viaPromise(10));
  settle('proxied', E(proxied).hi(11));
  settle('local', E(local).hi(12));
  // Local objects whose `then` reads can be seen: a getter of their own, one inherited,
  // and a proxy.
  const sneaky = {
    hi: () => 'sneaky hi',
    get then() {
      note('sneaky: then read');
      return undefined;
    },
  };
  settle('then getter', E(sneaky).hi(22));
  const heir = { __proto__: sneaky, hi: () => 'heir hi' };
  settle('inherited then getter', E(heir).hi(23));
  const proxiedLocal = new Proxy(local, {
    get(target, key) {
      if (key === 'then') {
        note('proxied local: then read');
      }
      return target[key];
    },
  });
  settle('proxied local', E(proxiedLocal).hi(24));
  // A local object that is a thenable.
  const thenable = {
    hi: () => 'thenable hi',
    then: resolve => {
      note('thenable: then called');
      resolve(local);
    },
  };
  settle('thenable', E(thenable).hi(25));
  // A local method that throws, send-only and `get` on a local object, and a `Far` object.
  const thrower = harden({
    boom: () => {
      note('thrower.boom()');
      throw Error('boom');
    },
  });
  settle('throws', E(thrower).boom());
  E.sendOnly(local).hi(26);
  settle('local get', E.get(local).hi);
  const far = Far('far', {
    hi: x => {
      note(`far.hi(${x})`);
      return 'far hi';
    },
  });
  settle('far', E(far).hi(27));
  // Calls pipelined on the result of a call to a local object, before that result settles:
  // a method that answers a promise settled a turn later, one that answers a handled
  // promise settled later (its result is forwarded to it), and one that answers at once.
  let resolveForwarded;
  const forwarded = new HandledPromise(resolve => {
    resolveForwarded = resolve;
  });
  const maker = harden({
    soon: x => {
      note(`maker.soon(${x})`);
      return Promise.resolve().then(() => {
        note('maker.soon settles');
        return local;
      });
    },
    forward: x => {
      note(`maker.forward(${x})`);
      return forwarded;
    },
    now: x => {
      note(`maker.now(${x})`);
      return local;
    },
  });
  settle('pipelined on a local result', E(E(maker).soon(29)).hi(30));
  settle('pipelined on a forwarded local result', E(E(maker).forward(31)).hi(32));
  settle('pipelined on an immediate local result', E(E(maker).now(33)).hi(34));
  // A handled promise resolved to a local call's result while that is pending (liveslots
  // does this when a message's result was a promise it had imported), then pipelined on.
  const adopter = new HandledPromise(resolve => resolve(E(maker).soon(35)));
  settle('pipelined on a handled promise resolved to a local result', E(adopter).hi(36));
  // A presence made by a subclass of HandledPromise whose `then` logs.
  class LoggingHandledPromise extends HandledPromise {
    then(onFulfilled, onRejected) {
      note('subclass: then called');
      return super.then(onFulfilled, onRejected);
    }
  }
  let subPresence;
  // eslint-disable-next-line no-new
  new LoggingHandledPromise((_resolve, _reject, resolveWithPresence) => {
    subPresence = resolveWithPresence(makeHandler('subclass-presence'));
  });
  settle('subclass presence', E(subPresence).hello(28));

  // Handled promises without a handler (postponed), settled later.
  let resolvePending;
  const pending = new HandledPromise(resolve => {
    resolvePending = resolve;
  });
  settle('pending', E(pending).hello(13));
  settle('pending pipelined', E(E(pending).presence(14)).again(15));
  let resolvePendingLocal;
  const pendingLocal = new HandledPromise(resolve => {
    resolvePendingLocal = resolve;
  });
  settle('pending local', E(pendingLocal).hi(16));
  let rejectPending;
  const rejected = new HandledPromise((_resolve, reject) => {
    rejectPending = reject;
  });
  settle('rejected', E(rejected).hi(17));
  // A handled promise with a pending handler, resolved to the presence later.
  let resolveHandled;
  const handled = new HandledPromise(resolve => {
    resolveHandled = resolve;
  }, makeHandler('pending-handler'));
  settle('handled', E(handled).hello(18));

  Promise.resolve()
    .then(() => {
      note('settling the pending promises');
      resolvePending(presence);
      resolvePendingLocal(local);
      rejectPending(Error('rejected on purpose'));
      settle('after a turn', E(presence).hello(19));
    })
    .then(() => {
      resolveForwarded(local);
      resolveHandled(presence);
      settle('pending, settled', E(pending).hello(20));
      settle('handled, settled', E(handled).hello(21));
    });

  return done.then(() => harden([...log]));
};
