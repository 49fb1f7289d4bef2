// Runs turn-order-scenario.js on npm's @endo/eventual-send (this directory's node_modules,
// unpatched) under SES, installed as @endo/init does (SES, then the HandledPromise shim, then
// lockdown), and prints its log as JSON. For ../conformance.rs.
//
//   node turn-order.mjs
await import('ses');
await import('@endo/eventual-send/shim.js');
lockdown();
const { E } = await import('@endo/eventual-send');
const { runScenario } = await import('./turn-order-scenario.js');
const log = await runScenario(E, globalThis.HandledPromise);
console.log(JSON.stringify(log));
