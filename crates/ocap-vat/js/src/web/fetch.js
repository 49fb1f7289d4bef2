// fetch, Request, Headers, Response.
//
// The classes are our own small implementation of the Fetch standard's
// surface (no streams: bodies are buffered, `body` is not a ReadableStream).
// The transport is Rust's (`host.fetchStart`): the request runs on another
// OS thread and its outcome comes back as a later turn (`fetchSettled`),
// like a timer, so a fetch never blocks a delivery. Rust re-checks the host
// caveat on every redirect hop.
import { host } from '../prelude/00-host.js';
import { loadURL } from './url.js';
import { makeAbortError } from './abort.js';

const { defineProperty, freeze } = Object;

// ---------------------------------------------------------------- bytes

const utf8Encode = text => host.utf8Encode(String(text));
const utf8Decode = buffer => host.utf8Decode(buffer);

// ---------------------------------------------------------------- Headers

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const normalizeValue = value => String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');

const checkName = name => {
  const n = String(name);
  if (!TOKEN.test(n)) throw TypeError(`Invalid header name: "${n}"`);
  return n.toLowerCase();
};
const checkValue = value => {
  const v = normalizeValue(value);
  if (/[\0\r\n]/.test(v)) throw TypeError(`Invalid header value: "${v}"`);
  return v;
};

// eslint-disable-next-line no-shadow
class Headers {
  /** @type {Map<string, string[]>} lower-case name -> values */
  #map = new Map();

  constructor(init = undefined) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      for (const [name, values] of init.#map) this.#map.set(name, [...values]);
    } else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const entry = [...pair];
        if (entry.length !== 2) throw TypeError('Headers: each header pair must have two elements');
        this.append(entry[0], entry[1]);
      }
    } else if (typeof init === 'object') {
      for (const name of Reflect.ownKeys(init)) {
        if (typeof name === 'string') this.append(name, init[name]);
      }
    } else {
      throw TypeError('Headers: init must be an object or an iterable of pairs');
    }
  }

  append(name, value) {
    const n = checkName(name);
    const v = checkValue(value);
    const values = this.#map.get(n);
    if (values) values.push(v);
    else this.#map.set(n, [v]);
  }

  delete(name) {
    this.#map.delete(checkName(name));
  }

  get(name) {
    const values = this.#map.get(checkName(name));
    return values ? values.join(', ') : null;
  }

  getSetCookie() {
    return [...(this.#map.get('set-cookie') || [])];
  }

  has(name) {
    return this.#map.has(checkName(name));
  }

  set(name, value) {
    this.#map.set(checkName(name), [checkValue(value)]);
  }

  forEach(callback, thisArg = undefined) {
    for (const [name, value] of this.entries()) {
      Reflect.apply(callback, thisArg, [value, name, this]);
    }
  }

  *entries() {
    const names = [...this.#map.keys()].sort();
    for (const name of names) {
      const values = this.#map.get(name);
      if (values === undefined) continue;
      if (name === 'set-cookie') {
        for (const v of values) yield [name, v];
      } else {
        yield [name, values.join(', ')];
      }
    }
  }

  *keys() {
    for (const [name] of this.entries()) yield name;
  }

  *values() {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  get [Symbol.toStringTag]() {
    return 'Headers';
  }
}

// ---------------------------------------------------------------- bodies

/**
 * Extract a body: bytes (an ArrayBuffer we own) and a default content type.
 *
 * @returns {{bytes: ArrayBuffer | null, type: string | null}}
 */
const extractBody = body => {
  if (body === undefined || body === null) return { bytes: null, type: null };
  if (typeof body === 'string') {
    return { bytes: utf8Encode(body), type: 'text/plain;charset=UTF-8' };
  }
  if (body instanceof ArrayBuffer) return { bytes: body.slice(0), type: null };
  if (ArrayBuffer.isView(body)) {
    return {
      bytes: body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength),
      type: null,
    };
  }
  if (body instanceof loadURL().URLSearchParams) {
    return {
      bytes: utf8Encode(body.toString()),
      type: 'application/x-www-form-urlencoded;charset=UTF-8',
    };
  }
  return { bytes: utf8Encode(String(body)), type: 'text/plain;charset=UTF-8' };
};

/** Body state shared by Request and Response (kept out of reach of vats). */
class BodyState {
  constructor(bytes) {
    /** @type {ArrayBuffer | null} */
    this.bytes = bytes;
    this.used = false;
  }

  /** @returns {Promise<ArrayBuffer>} */
  async consume() {
    if (this.used) throw TypeError('Body has already been consumed.');
    this.used = true;
    return this.bytes === null ? new ArrayBuffer(0) : this.bytes.slice(0);
  }
}

const bodies = new WeakMap();
const bodyOf = object => {
  const state = bodies.get(object);
  if (!state) throw TypeError('Illegal invocation');
  return state;
};

const bodyMethods = {
  get bodyUsed() {
    return bodyOf(this).used;
  },
  async arrayBuffer() {
    return bodyOf(this).consume();
  },
  async bytes() {
    return new Uint8Array(await bodyOf(this).consume());
  },
  async text() {
    return utf8Decode(await bodyOf(this).consume());
  },
  async json() {
    return JSON.parse(utf8Decode(await bodyOf(this).consume()));
  },
  async blob() {
    throw TypeError('Blob is not available in this vat worker');
  },
  async formData() {
    throw TypeError('FormData is not available in this vat worker');
  },
};
const installBody = proto => {
  for (const [name, desc] of Object.entries(Object.getOwnPropertyDescriptors(bodyMethods))) {
    defineProperty(proto, name, { ...desc, enumerable: false });
  }
};

// ---------------------------------------------------------------- Request

const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH']);
const REDIRECT_MODES = new Set(['follow', 'error', 'manual']);

const parseAbsoluteURL = (input, what) => {
  try {
    return new (loadURL().URL)(String(input));
  } catch {
    throw TypeError(`${what}: Invalid URL "${String(input)}" (vats have no base URL)`);
  }
};

// eslint-disable-next-line no-shadow
class Request {
  #url;

  #method;

  #headers;

  #redirect;

  #signal;

  constructor(input, init = {}) {
    const options = init === undefined || init === null ? {} : init;
    let source;
    if (input instanceof Request) {
      source = input;
      this.#url = input.#url;
      this.#method = input.#method;
      this.#headers = new Headers(input.#headers);
      this.#redirect = input.#redirect;
      this.#signal = input.#signal;
    } else {
      this.#url = parseAbsoluteURL(input, 'Request').href;
      this.#method = 'GET';
      this.#headers = new Headers();
      this.#redirect = 'follow';
      this.#signal = null;
    }
    if (options.method !== undefined) {
      const method = String(options.method);
      if (!TOKEN.test(method)) throw TypeError(`Invalid method: "${method}"`);
      const upper = method.toUpperCase();
      if (FORBIDDEN_METHODS.has(upper)) throw TypeError(`Forbidden method: "${method}"`);
      this.#method = NORMALIZED_METHODS.has(upper) ? upper : method;
    }
    if (options.headers !== undefined) this.#headers = new Headers(options.headers);
    if (options.redirect !== undefined) {
      const redirect = String(options.redirect);
      if (!REDIRECT_MODES.has(redirect)) throw TypeError(`Invalid redirect mode: "${redirect}"`);
      this.#redirect = redirect;
    }
    if (options.signal !== undefined) this.#signal = options.signal;
    let bytes = null;
    if (options.body !== undefined && options.body !== null) {
      if (this.#method === 'GET' || this.#method === 'HEAD') {
        throw TypeError('Request with GET/HEAD method cannot have body.');
      }
      const extracted = extractBody(options.body);
      bytes = extracted.bytes;
      if (extracted.type && !this.#headers.has('content-type')) {
        this.#headers.set('content-type', extracted.type);
      }
    } else if (source) {
      const state = bodyOf(source);
      if (state.bytes !== null) {
        if (state.used) throw TypeError('Cannot construct a Request with a Request whose body was already used.');
        state.used = true;
        bytes = state.bytes;
      }
    }
    bodies.set(this, new BodyState(bytes));
  }

  get url() {
    return this.#url;
  }

  get method() {
    return this.#method;
  }

  get headers() {
    return this.#headers;
  }

  get redirect() {
    return this.#redirect;
  }

  get signal() {
    return this.#signal;
  }

  clone() {
    const state = bodyOf(this);
    if (state.used) throw TypeError('Request.clone: body has already been used');
    const copy = new Request(this.#url, {
      method: this.#method,
      headers: this.#headers,
      redirect: this.#redirect,
      signal: this.#signal ?? undefined,
    });
    bodies.set(copy, new BodyState(state.bytes));
    return copy;
  }

  get [Symbol.toStringTag]() {
    return 'Request';
  }
}
installBody(Request.prototype);

// ---------------------------------------------------------------- Response

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Set while fetch builds a Response from the network. */
let networkInit;

// eslint-disable-next-line no-shadow
class Response {
  #status;

  #statusText;

  #headers;

  #type = 'default';

  #url = '';

  #redirected = false;

  constructor(body = null, init = {}) {
    const options = init === undefined || init === null ? {} : init;
    if (networkInit) {
      const net = networkInit;
      networkInit = undefined;
      this.#status = net.status;
      this.#statusText = net.statusText;
      this.#headers = new Headers(net.headers);
      this.#type = 'basic';
      this.#url = net.url;
      this.#redirected = net.redirected;
      bodies.set(this, new BodyState(net.bytes));
      return;
    }
    const status = options.status === undefined ? 200 : Number(options.status);
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw RangeError(`Response: status ${options.status} is outside the range [200, 599]`);
    }
    this.#status = status;
    this.#statusText = options.statusText === undefined ? '' : String(options.statusText);
    this.#headers = new Headers(options.headers);
    let bytes = null;
    if (body !== null && body !== undefined) {
      if (NULL_BODY_STATUSES.has(status)) {
        throw TypeError(`Response with null body status ${status} cannot have body`);
      }
      const extracted = extractBody(body);
      bytes = extracted.bytes;
      if (extracted.type && !this.#headers.has('content-type')) {
        this.#headers.set('content-type', extracted.type);
      }
    }
    bodies.set(this, new BodyState(bytes));
  }

  static error() {
    const response = new Response(null, { status: 200 });
    response.#status = 0;
    response.#type = 'error';
    return response;
  }

  static redirect(url, status = 302) {
    if (!REDIRECT_STATUSES.has(status)) throw RangeError(`Invalid redirect status: ${status}`);
    const location = parseAbsoluteURL(url, 'Response.redirect').href;
    return new Response(null, { status, headers: { location } });
  }

  static json(data, init = {}) {
    const text = JSON.stringify(data);
    if (text === undefined) throw TypeError('Response.json: data is not JSON-serializable');
    const headers = new Headers(init && init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new Response(text, { ...init, headers });
  }

  get status() {
    return this.#status;
  }

  get ok() {
    return this.#status >= 200 && this.#status <= 299;
  }

  get statusText() {
    return this.#statusText;
  }

  get headers() {
    return this.#headers;
  }

  get type() {
    return this.#type;
  }

  get url() {
    return this.#url;
  }

  get redirected() {
    return this.#redirected;
  }

  clone() {
    const state = bodyOf(this);
    if (state.used) throw TypeError('Response.clone: body has already been used');
    networkInit = {
      status: this.#status,
      statusText: this.#statusText,
      headers: this.#headers,
      url: this.#url,
      redirected: this.#redirected,
      bytes: state.bytes,
    };
    const copy = new Response();
    copy.#type = this.#type;
    return copy;
  }

  get [Symbol.toStringTag]() {
    return 'Response';
  }
}
installBody(Response.prototype);

// ---------------------------------------------------------------- fetch

const FILE_MESSAGE =
  'fetch cannot target file:// URLs. Use the fs platform capability (VatConfig.platformConfig.fs) for filesystem access.';

/** In-flight fetches by id: {resolve, reject, detach}. */
const pending = new Map();
let nextFetchId = 1;

/**
 * The network caveat of the JS kernel (network-caveat.ts): resolve the input
 * to a URL, refuse `file:` and any hostname not exactly in allowedHosts.
 */
const checkHost = (input, allowedHosts) => {
  const { URL } = loadURL();
  let url;
  if (input instanceof Request) url = new URL(input.url);
  else if (input instanceof URL) url = input;
  else url = new URL(String(input));
  if (url.protocol === 'file:') throw Error(FILE_MESSAGE);
  if (!allowedHosts.includes(url.hostname)) throw Error(`Invalid host: ${url.hostname}`);
};

/**
 * A fetch bound to this vat's allowedHosts.
 *
 * @param {string[]} allowedHosts
 */
export const makeFetch = allowedHosts => {
  // What fetch hands out (responses, their headers) reaches these classes.
  harden([Headers, Request, Response]);
  const hosts = freeze([...allowedHosts].map(String));
  const fetch = async (input, init = undefined) => {
    checkHost(input, hosts);
    const request = new Request(input, init);
    const { signal } = request;
    if (signal && signal.aborted) throw signal.reason ?? makeAbortError();
    // No await before the abort listener is in place: an abort right after
    // this call returns must reach the request.
    const state = bodyOf(request);
    if (state.used) throw TypeError('Body has already been consumed.');
    state.used = true;
    const id = nextFetchId;
    nextFetchId += 1;
    const spec = {
      method: request.method,
      url: request.url,
      headers: [...request.headers],
      redirect: request.redirect,
      allowedHosts: hosts,
    };
    return new Promise((resolve, reject) => {
      let onAbort;
      const detach = () => {
        pending.delete(id);
        if (signal && onAbort) signal.removeEventListener('abort', onAbort);
      };
      host.fetchStart(
        id,
        JSON.stringify(spec),
        state.bytes === null ? undefined : state.bytes.slice(0),
      );
      pending.set(id, { resolve, reject, detach });
      if (signal) {
        onAbort = () => {
          detach();
          host.fetchAbort(id);
          reject(signal.reason ?? makeAbortError());
        };
        signal.addEventListener('abort', onAbort);
      }
    });
  };
  return fetch;
};

/**
 * Rust calls this, as its own turn, when a fetch started by `host.fetchStart`
 * has an outcome.
 *
 * @param {number} id
 * @param {string} outcomeJson {ok:true, status, statusText, headers, url, redirected} | {ok:false, error}
 * @param {ArrayBuffer | undefined} bytes
 */
export const fetchSettled = (id, outcomeJson, bytes) => {
  const entry = pending.get(id);
  if (entry === undefined) return; // aborted meanwhile
  entry.detach();
  const outcome = JSON.parse(outcomeJson);
  if (!outcome.ok) {
    entry.reject(TypeError(`fetch failed: ${outcome.error}`));
    return;
  }
  networkInit = {
    status: outcome.status,
    statusText: outcome.statusText,
    headers: outcome.headers,
    url: outcome.url,
    redirected: outcome.redirected,
    bytes: NULL_BODY_STATUSES.has(outcome.status) ? null : bytes ?? new ArrayBuffer(0),
  };
  let response;
  try {
    response = new Response();
  } finally {
    networkInit = undefined;
  }
  entry.resolve(response);
};

export { Headers, Request, Response };
