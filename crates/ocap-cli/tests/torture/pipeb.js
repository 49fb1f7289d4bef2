import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/**
 * The far end of pipea's pipelines: each step is an ephemeral exo; every step made is
 * counted durably per tag (`steps.<tag>`), so the test can tell a step delivered twice.
 * `next` on the step before `failAt` counts the step, then throws.
 */
export function buildRootObject(vatPowers, parameters, baggage) {
  const record = (tag) => {
    const key = `steps.${tag}`;
    if (baggage.has(key)) {
      baggage.set(key, baggage.get(key) + 1);
    } else {
      baggage.init(key, 1);
    }
  };
  const makeStep = (tag, i, failAt) =>
    makeDefaultExo('step', {
      next() {
        record(tag);
        if (i + 1 === failAt) {
          throw Error(`failed at ${failAt} of ${tag}`);
        }
        return makeStep(tag, i + 1, failAt);
      },
      value() {
        return `${tag}:${i}`;
      },
    });
  return makeDefaultExo('root', {
    start(tag, failAt) {
      record(tag);
      return makeStep(tag, 1, failAt);
    },
    /** How many steps each tag made (0 for none). */
    steps(tags) {
      return tags.map((t) => (baggage.has(`steps.${t}`) ? baggage.get(`steps.${t}`) : 0));
    },
  });
}
