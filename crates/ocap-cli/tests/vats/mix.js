import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The overlap test's vat (tests/overlap.rs): mixed traffic between vats (fan-out, chains,
 * pipelining on results, promises as arguments, many objects passed and dropped, failures),
 * and a log of every call it received, in order.
 */
export function buildRootObject(vatPowers, parameters) {
  const name = parameters?.name ?? '?';
  const received = [];
  let peers = [];
  const note = what => {
    received.push(what);
  };
  const ops = {
    fan: n => {
      const out = [];
      for (let i = 0; i < n; i += 1) {
        for (const p of peers) {
          out.push(E(p).ping(i));
        }
      }
      return Promise.all(out).then(rs => rs.length);
    },
    chain: depth => E(peers[depth % peers.length]).chain(depth, name),
    pipe: (to, i) => E(E(peers[to % peers.length]).make(i)).add(1),
    promise: (to, v) => {
      let resolve;
      const p = new Promise(r => {
        resolve = r;
      });
      const out = E(peers[to % peers.length]).take(p);
      resolve(v);
      return out;
    },
    many: (to, n) => E(peers[to % peers.length]).manyThings(n).then(things => things.length),
    fail: (to, why) =>
      E(peers[to % peers.length])
        .fail(why)
        .then(
          () => 'no',
          e => e.message,
        ),
  };
  return makeDefaultExo('root', {
    async bootstrap(vats) {
      peers = Object.keys(vats)
        .sort()
        .map(k => vats[k]);
      await Promise.all(peers.map(p => E(p).setPeers(peers)));
      return peers.length;
    },
    setPeers(ps) {
      peers = ps;
      return ps.length;
    },
    ping(i) {
      note(`ping ${i}`);
      return i;
    },
    chain(depth, tag) {
      note(`chain ${depth} ${tag}`);
      if (depth <= 0) {
        return tag;
      }
      return E(peers[(depth * 7 + tag.length) % peers.length]).chain(depth - 1, `${tag}.${name}`);
    },
    make(i) {
      note(`make ${i}`);
      return makeDefaultExo('thing', {
        add: j => i + j,
      });
    },
    take(p) {
      note('take');
      return E.when(p, v => v * 2);
    },
    manyThings(n) {
      note(`many ${n}`);
      return harden(Array.from({ length: n }, (_, i) => makeDefaultExo('t', { id: () => i })));
    },
    fail(why) {
      note(`fail ${why}`);
      throw Error(why);
    },
    /** Runs `script` ([op, a, b] each) on this vat's peers, all at once. */
    run(script) {
      note(`run ${script.length}`);
      return Promise.all(
        script.map(([op, a, b], i) =>
          peers.length === 0
            ? 'no peers'
            : E(peers[i % peers.length]).step(op, a, b),
        ),
      );
    },
    /** One operation of a script, from this vat. */
    step(op, a, b) {
      note(`step ${op} ${a} ${b}`);
      const f = ops[op];
      return f ? f(a, b) : `unknown op ${op}`;
    },
    log() {
      return harden([...received]);
    },
    /** Starts a chain of `bounce` messages at every peer; they go on forever. */
    spam() {
      for (const p of peers) {
        E.sendOnly(p).bounce(0);
      }
      return peers.length;
    },
    /** Passes the ball on to another vat, and again, forever. */
    bounce(n) {
      E.sendOnly(peers[(n * 3 + 1) % peers.length]).bounce(n + 1);
    },
  });
}
