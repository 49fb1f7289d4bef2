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
// (The file also endows the native smallcaps codec the same way.)

import { host } from './00-host.js';

const PassStyleOfEndowmentSymbol = Symbol.for('@endo passStyleOf');

if (typeof host.makeNativePassStyleOf === 'function') {
  globalThis[PassStyleOfEndowmentSymbol] = harden(host.makeNativePassStyleOf());
  // The native smallcaps codec for plain data (src/smallcaps.rs), taken by our
  // patch to @endo/marshal (js/patches/@endo+marshal+1.10.0.patch) when it
  // loads: every marshaller of the prelude (liveslots') asks it first.
  globalThis[Symbol.for('@ocap fastSmallcaps')] = harden(host.makeNativeSmallcaps());
}
