import { E } from '@endo/eventual-send';
import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The redeeming side of tests/ocap_urls.rs: gets `ocapURLRedemptionService` in bootstrap,
 * keeps it in baggage (so it survives restarts), redeems URLs the host hands it, and calls
 * `greet` on what it got. `keep` holds the presence (in RAM) so `greetKept` can use it after
 * its URL is revoked.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const redeemer = () => baggage.get('redeemer');
  let kept;
  return makeDefaultExo('root', {
    bootstrap(vats, services) {
      if (services.ocapURLRedemptionService) {
        baggage.init('redeemer', services.ocapURLRedemptionService);
      }
      return harden(Object.keys(services).sort());
    },
    async redeemAndGreet(url, name) {
      const obj = await E(redeemer()).redeem(url);
      return E(obj).greet(name);
    },
    async redeemError(url) {
      try {
        const obj = await E(redeemer()).redeem(url);
        return `fulfilled: ${obj}`;
      } catch (e) {
        return `error: ${e && e.message}`;
      }
    },
    async keep(url) {
      kept = await E(redeemer()).redeem(url);
      return 'kept';
    },
    greetKept(name) {
      return E(kept).greet(name);
    },
    /** Gives the presence it redeemed back (the host compares its kref). */
    async redeem(url) {
      return E(redeemer()).redeem(url);
    },
  });
}
