import { E } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * Promises across vats (spec vat-side §7.5: the promise-arg, promise-chain, promise-cycle,
 * promise-crosswise, resolve-pipelined and pass-result-promise vats of the JS kernel's
 * kernel-test). `bootstrap` runs every case against `vats.bob` (and `vats.carol`) and
 * returns one record: case name -> result, or `ERROR: <message>` if the case threw, so one
 * broken case does not hide the others.
 */
export function buildRootObject(vatPowers, parameters) {
  const name = parameters?.name ?? 'alice';

  const cases = {
    // A promise passed as an argument, resolved after the message carrying it was sent.
    async promiseArgResolvedLater({ bob }) {
      const kit = makePromiseKit();
      const result = E(bob).addOne(kit.promise);
      kit.resolve(41);
      return result;
    },
    // A promise passed as an argument and rejected after the send.
    async promiseArgRejectedLater({ bob }) {
      const kit = makePromiseKit();
      const result = E(bob).describeSettlement(kit.promise);
      kit.reject(Error('nope'));
      return result;
    },
    // A promise argument that is already resolved when sent.
    async promiseArgAlreadyResolved({ bob }) {
      return E(bob).addOne(Promise.resolve(1));
    },
    // A promise the receiver keeps, resolved by a later message.
    async promiseReturnedAndSettledLater({ bob }) {
      const later = E(bob).later();
      const settled = await E(bob).settle('kept');
      return [settled, await later];
    },
    // A chain: our result <- bob.relay(carol) <- carol.answer().
    async chainThroughTwoVats({ bob, carol }) {
      return E(bob).relay(carol);
    },
    // A chain of local promises resolved to each other, passed as one argument.
    async chainOfLocalPromises({ bob }) {
      const a = makePromiseKit();
      const b = makePromiseKit();
      const c = makePromiseKit();
      const result = E(bob).addOne(a.promise);
      a.resolve(b.promise);
      b.resolve(c.promise);
      c.resolve(9);
      return result;
    },
    // Two promises whose resolutions contain each other, made in another vat.
    async cycleMadeRemotely({ bob }) {
      const { first } = await E(bob).makeCycle();
      const a = await first;
      const b = await a.next;
      const a2 = await b.next;
      const b2 = await a2.next;
      return [a.name, b.name, a2.name, b2.name];
    },
    // The same, made here and sent: each resolution holds the other promise.
    async cycleSentCrosswise({ bob }) {
      const a = makePromiseKit();
      const b = makePromiseKit();
      const result = E(bob).walk(a.promise, 4);
      a.resolve(harden({ name: 'a', next: b.promise }));
      b.resolve(harden({ name: 'b', next: a.promise }));
      return result;
    },
    // Pipelining: z() is sent to the promise for getY()'s result before it resolves.
    async pipelineOneHop({ bob }) {
      return E(E(bob).getY()).z();
    },
    async pipelineTwoHops({ bob }) {
      return E(E(E(bob).getY()).self()).z();
    },
    // Pipelined messages arrive in the order they were sent.
    async pipelineOrder({ bob }) {
      const log = E(bob).makeLog();
      E(log).add('one');
      E(log).add('two');
      return E(log).entries();
    },
    // A pipelined send to a result that rejects is rejected with the same reason.
    async pipelineOnRejection({ bob }) {
      try {
        await E(E(bob).fail()).z();
        return 'no error';
      } catch (e) {
        return `caught: ${e.message}`;
      }
    },
    // E.sendOnly: no result promise; later messages on the same target come after it.
    async sendOnly({ bob }) {
      const log = await E(bob).makeLog();
      E.sendOnly(log).add('quiet');
      return E(log).entries();
    },
    // Data containing a promise that another vat resolves later.
    async promiseInsideData({ bob }) {
      const { n, p } = await E(bob).dataWithPromise();
      await E(bob).settle('inside');
      return [n, await p];
    },
  };

  return makeDefaultExo('root', {
    async bootstrap(vats) {
      const results = {};
      for (const [caseName, run] of Object.entries(cases)) {
        try {
          // eslint-disable-next-line no-await-in-loop
          results[caseName] = await run(vats);
        } catch (e) {
          results[caseName] = `ERROR: ${e.message}`;
        }
      }
      return harden(results);
    },
    whoami() {
      return name;
    },
    // For the daemon: a promise argument sent by the host through another vat.
    async askBob(bob, n) {
      const kit = makePromiseKit();
      const result = E(bob).addOne(kit.promise);
      kit.resolve(n);
      return result;
    },
  });
}
