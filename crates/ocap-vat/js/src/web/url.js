// The `URL` and `URLSearchParams` endowments, loaded on first request: their
// code (core-js-pure) is a module of its own (url-module.js), which the host
// evaluates in this realm only when a vat asks for them, so vats that do not
// carry none of its bytecode.

import { host } from '../prelude/00-host.js';

let loaded;

/** @returns {{URL: typeof globalThis.URL, URLSearchParams: typeof globalThis.URLSearchParams}} */
export const loadURL = () => {
  if (!loaded) {
    loaded = host.loadURLModule().makeURL();
  }
  return loaded;
};
