import { makeDefaultExo } from '@metamask/kernel-utils/exo';

export function buildRootObject(vatPowers, parameters) {
  const name = parameters?.name ?? 'bob';
  return makeDefaultExo('root', {
    hello(who) {
      console.log(`${name} was greeted by ${who}`);
      return `${name} says hello to ${who}`;
    },
    async echoWhenReady(promise) {
      const value = await promise;
      return `I received ${value}`;
    },
  });
}
