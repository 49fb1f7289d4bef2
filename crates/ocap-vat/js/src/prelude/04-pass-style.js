// The native `passStyleOf` (src/pass_style.rs), endowed the way
// `@endo/pass-style` documents: a function at
// `globalThis[Symbol.for('@endo passStyleOf')]` when the package loads is the
// `passStyleOf` it exports. This module runs before anything imports the
// package (index.js's order), so the prelude's copy (marshal, patterns, exo,
// liveslots) uses it, liveslots endows every vat with it, and the copies inside
// vat bundles take that endowment.
//
// It decides plain data itself and hands everything else to the JavaScript
// `passStyleOf`, which 05-pass-style.js gives it once the package has loaded.

import { host } from './00-host.js';

const PassStyleOfEndowmentSymbol = Symbol.for('@endo passStyleOf');

if (typeof host.makeNativePassStyleOf === 'function') {
  globalThis[PassStyleOfEndowmentSymbol] = harden(host.makeNativePassStyleOf());
}
