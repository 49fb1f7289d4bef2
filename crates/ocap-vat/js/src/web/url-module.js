// The `URL` endowment's code, bundled apart from the prelude
// (`node build.mjs url`): core-js-pure's WHATWG URL is ~170 KB of source,
// a fifth of the prelude, and most vats never ask for `URL`. A vat's runtime
// loads this module's bytecode when its config asks for `URL` or
// `URLSearchParams` (`host.loadURLModule()`, src/lazy_module.rs), after
// lockdown, as the prelude's `loadURL` did with the same code before.

import { seedCoreJs } from './core-js-seed.js';

/** @returns {{URL: typeof globalThis.URL, URLSearchParams: typeof globalThis.URLSearchParams}} */
export const makeURL = () => {
  seedCoreJs();
  try {
    /* eslint-disable global-require */
    return {
      URL: require('core-js-pure/actual/url/index.js'),
      URLSearchParams: require('core-js-pure/actual/url-search-params/index.js'),
    };
    /* eslint-enable global-require */
  } finally {
    delete globalThis['__core-js_shared__'];
  }
};
