import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The issuing side of tests/ocap_urls.rs: gets `ocapURLIssuerService` in bootstrap, makes a
 * durable greeter (it survives kernel restarts) and answers an OCAP URL for it. `issueFresh`
 * issues a URL for a new heap object the vat keeps no reference to (only the URL holds it);
 * `issueNonRemotables` reports how the service answers arguments that are not objects.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const { makeKindHandle, defineDurableKind } = VatData;
  if (!baggage.has('greeterKind')) {
    baggage.init('greeterKind', makeKindHandle('Greeter'));
  }
  const makeGreeter = defineDurableKind(baggage.get('greeterKind'), (greeting) => ({ greeting }), {
    greet({ state }, name) {
      return `${state.greeting}, ${name}`;
    },
  });
  const issuer = () => baggage.get('issuer');
  const failure = async (p) => {
    try {
      return `fulfilled: ${await p}`;
    } catch (e) {
      return `error: ${e && e.message}`;
    }
  };
  return makeDefaultExo('root', {
    async bootstrap(vats, services) {
      baggage.init('issuer', services.ocapURLIssuerService);
      const greeter = makeGreeter('hello');
      baggage.init('greeter', greeter);
      const url = await E(issuer()).issue(greeter);
      return harden({ url, greeter, services: Object.keys(services).sort() });
    },
    issueFresh(greeting) {
      const fresh = makeDefaultExo('fresh', {
        greet(name) {
          return `${greeting}, ${name}`;
        },
      });
      return E(issuer()).issue(fresh);
    },
    async issueNonRemotables() {
      return harden({
        string: await failure(E(issuer()).issue('ko1')),
        number: await failure(E(issuer()).issue(42)),
        record: await failure(E(issuer()).issue(harden({ kref: 'ko1' }))),
        none: await failure(E(issuer()).issue()),
        promise: await failure(E(issuer()).issue(new Promise(() => {}))),
        otherMethod: await failure(E(issuer()).frobnicate(baggage.get('greeter'))),
      });
    },
  });
}
