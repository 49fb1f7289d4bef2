// URL and URLSearchParams: core-js-pure's WHATWG URL implementation (pure
// mode: it never patches the realm's intrinsics).
//
// Loaded on first use (esbuild turns these `require`s into lazy module
// initialisers), so vats that do not ask for URL, URLSearchParams or the
// fetch classes do not pay for building core-js's objects.
//
// core-js keeps a registry on the global object (`__core-js_shared__`); it
// keeps its own reference to it, so it is removed from the realm global right
// after loading (vats never see the realm global anyway).
import { seedCoreJs } from './core-js-seed.js';

let loaded;

/** @returns {{URL: typeof globalThis.URL, URLSearchParams: typeof globalThis.URLSearchParams}} */
export const loadURL = () => {
  if (!loaded) {
    seedCoreJs();
    try {
      /* eslint-disable global-require */
      loaded = {
        URL: require('core-js-pure/actual/url/index.js'),
        URLSearchParams: require('core-js-pure/actual/url-search-params/index.js'),
      };
      /* eslint-enable global-require */
    } finally {
      delete globalThis['__core-js_shared__'];
    }
  }
  return loaded;
};
