import { E } from '@endo/eventual-send';
import { makeMarshal } from '@endo/marshal';
import { passStyleOf } from '@endo/pass-style';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

// The pieces of a delivery, each run `n` times in one delivery, so the
// `stage_bench` example can time them from outside (vats have no clock).
// Liveslots' own marshaller is not reachable from a vat; this one is made the
// same way (smallcaps, no slots in these values).

const m = makeMarshal(undefined, undefined, {
  serializeBodyFormat: 'smallcaps',
  marshalName: 'probe',
});
const methargs = harden(['ping', [1]]);
const capdata = m.toCapData(methargs);
const target = makeDefaultExo('target', { ping: x => x });
const plain = harden({ ping: x => x });

const stages = {
  empty: () => {},
  exoCall: () => target.ping(1),
  toCapData: () => m.toCapData(harden(['ping', [1]])),
  fromCapData: () => m.fromCapData(capdata),
  toCapDataString: () => m.toCapData('pong'),
  passStyleOfArray: () => passStyleOf(harden([1, 'two'])),
  harden: () => harden([1, 'two']),
};
// Eventual sends to a presence of another vat (`setPeer` first), not awaited: what
// a vat's `E(peer).ping(i)` costs, and its pieces. The delivery ends at
// quiescence, so each send's later turns (the handler race, liveslots'
// `queueMessage`, the `send` and `subscribe` syscalls) are in the time.
let peer;
let ownPresence;
// eslint-disable-next-line no-new
new HandledPromise((_resolve, _reject, resolveWithPresence) => {
  ownPresence = resolveWithPresence({ applyMethod: (_o, _m, [x]) => x });
});
const sendStages = {
  eProxy: () => E(peer),
  eProxyGet: () => E(peer).ping,
  sendPresence: () => E(peer).ping(1),
  applyMethodPresence: () => HandledPromise.applyMethod(peer, 'ping', [1]),
  sendPlainNotAwaited: () => E(plain).ping(1),
  newHandledPromise: () => new HandledPromise(() => {}),
  // A presence made here (no liveslots behind it: its handler answers at once).
  sendOwnPresence: () => E(ownPresence).ping(1),
  // What liveslots does with each message delivered to a local object.
  applyMethodExo: () => HandledPromise.applyMethod(target, 'ping', [1]),
  newPromise: () => new Promise(() => {}),
  promiseThen: () => Promise.resolve(1).then(x => x),
};

const asyncStages = {
  eventualSendPlain: async () => E(plain).ping(1),
  eventualSendExo: async () => E(target).ping(1),
  awaitNull: async () => {
    await null;
  },
};

export function buildRootObject() {
  return makeDefaultExo('root', {
    names() {
      return harden([
        ...Object.keys(stages),
        ...Object.keys(asyncStages),
        ...Object.keys(sendStages),
      ]);
    },
    setPeer(p) {
      peer = p;
    },
    async run(name, n) {
      const sync = stages[name] || (peer && sendStages[name]);
      if (sync) {
        for (let i = 0; i < n; i += 1) sync();
        return n;
      }
      const run = asyncStages[name];
      for (let i = 0; i < n; i += 1) await run();
      return n;
    },
  });
}
