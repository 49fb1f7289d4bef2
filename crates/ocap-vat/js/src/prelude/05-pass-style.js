// Second half of 04-pass-style.js: now that `@endo/pass-style` has loaded
// (and taken the native `passStyleOf`), give the native one the JavaScript
// `passStyleOf` to fall back on (`makeJsPassStyleOf`, exported by our patch,
// js/patches/@endo+pass-style+1.8.2.patch), and take the endowment off the
// start compartment's global object: vats get `passStyleOf` from liveslots.

import { makeJsPassStyleOf } from '@endo/pass-style';
// Loaded now, so that it takes the native smallcaps codec before the global goes.
import '@endo/marshal';
import { host } from './00-host.js';

const PassStyleOfEndowmentSymbol = Symbol.for('@endo passStyleOf');

if (globalThis[PassStyleOfEndowmentSymbol] !== undefined) {
  const jsPassStyleOf = makeJsPassStyleOf();
  // `ONLY_WELL_FORMED_STRINGS_PASSABLE`: whether a lone surrogate passes.
  let onlyWellFormedStrings = false;
  try {
    jsPassStyleOf('\uD800');
  } catch {
    onlyWellFormedStrings = true;
  }
  host.setPassStyleFallback(jsPassStyleOf, onlyWellFormedStrings);
  delete globalThis[PassStyleOfEndowmentSymbol];
  delete globalThis[Symbol.for('@ocap fastSmallcaps')];
}
