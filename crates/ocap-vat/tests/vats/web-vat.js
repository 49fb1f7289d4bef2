import { makeDefaultExo } from '@metamask/kernel-utils/exo';

// The ten web globals of vat-side spec §5.3 that need more than a pure
// function: each method exercises one of them. Names are looked up as free
// identifiers, exactly as vat code would.
const NAMES = [
  'crypto',
  'SubtleCrypto',
  'fetch',
  'Request',
  'Headers',
  'Response',
  'URL',
  'URLSearchParams',
  'AbortController',
  'AbortSignal',
];

const hex = buffer =>
  Array.from(new Uint8Array(buffer), b => b.toString(16).padStart(2, '0')).join('');
const ascii = text => Uint8Array.from(text, c => c.charCodeAt(0));
const describe = error => `${error.name}: ${error.message}`;

export function buildRootObject() {
  return makeDefaultExo('root', {
    /** Which of the ten names this vat can see, and whether each is frozen. */
    present() {
      const seen = [];
      for (const name of NAMES) {
                if (name in globalThis) seen.push([name, Object.isFrozen(globalThis[name])]);
      }
      return seen;
    },
    crypto() {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      const words = crypto.getRandomValues(new Uint32Array(4));
      const uuid = crypto.randomUUID();
      let viewError = '';
      try {
        crypto.getRandomValues(new DataView(new ArrayBuffer(8)));
      } catch (error) {
        viewError = error.name;
      }
      let quotaError = '';
      try {
        crypto.getRandomValues(new Uint8Array(65537));
      } catch (error) {
        quotaError = error.name;
      }
      return [
        bytes.some(b => b !== 0),
        words.length,
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid),
        uuid !== crypto.randomUUID(),
        viewError,
        quotaError,
        Object.isFrozen(crypto),
      ];
    },
    async digest(text) {
      return hex(await crypto.subtle.digest('SHA-256', ascii(text)));
    },
    async subtleCrypto() {
      let constructError = '';
      try {
        // eslint-disable-next-line no-new
        new SubtleCrypto();
      } catch (error) {
        constructError = describe(error);
      }
      const proto = SubtleCrypto.prototype;
      const digest = hex(await proto.digest.call(null, { name: 'SHA-256' }, ascii('abc')));
      let signError = '';
      try {
        await proto.sign.call(null, 'HMAC', null, ascii('x'));
      } catch (error) {
        signError = error.name;
      }
      return [typeof SubtleCrypto, constructError, digest, signError, Object.isFrozen(proto)];
    },
    url(href, base) {
      const url = base === undefined ? new URL(href) : new URL(href, base);
      url.searchParams.append('added', 'yes');
      return [url.href, url.hostname, url.port, url.pathname, url.search, url.hash];
    },
    searchParams(query) {
      const params = new URLSearchParams(query);
      params.append('z', 'last & first');
      params.sort();
      return [params.toString(), params.get('a'), params.getAll('b'), [...params.keys()]];
    },
    abort() {
      const controller = new AbortController();
      const events = [];
      controller.signal.addEventListener('abort', event => {
        events.push(event.type);
      });
      const before = controller.signal.aborted;
      controller.abort('because');
      controller.abort('twice');
      const already = AbortSignal.abort();
      let thrown = '';
      try {
        already.throwIfAborted();
      } catch (error) {
        thrown = error.name;
      }
      return [
        before,
        controller.signal.aborted,
        controller.signal.reason,
        events,
        controller.signal instanceof AbortSignal,
        thrown,
      ];
    },
    abortSignal() {
      const signal = AbortSignal.abort('done');
      let constructError = '';
      try {
        // eslint-disable-next-line no-new
        new AbortSignal();
      } catch (error) {
        constructError = error.name;
      }
      return [signal.aborted, signal.reason, constructError];
    },
    headers() {
      const headers = new Headers({ 'X-One': ' 1 ' });
      headers.append('x-one', '2');
      headers.set('B', 'b');
      let badName = '';
      try {
        headers.set('bad name', 'x');
      } catch (error) {
        badName = error.name;
      }
      return [headers.get('X-ONE'), headers.has('b'), [...headers], badName];
    },
    async request(href) {
      const request = new Request(href, {
        method: 'post',
        body: 'hi there',
        headers: { 'x-a': 'A' },
      });
      const copy = request.clone();
      let getBody = '';
      try {
        // eslint-disable-next-line no-new
        new Request(href, { body: 'x' });
      } catch (error) {
        getBody = error.name;
      }
      return [
        request.method,
        request.url,
        request.headers.get('content-type'),
        await request.text(),
        request.bodyUsed,
        await copy.text(),
        getBody,
      ];
    },
    async response() {
      const response = new Response('{"a":1}', {
        status: 201,
        statusText: 'Created',
        headers: { 'content-type': 'application/json' },
      });
      const json = Response.json({ b: [2] });
      return [
        response.status,
        response.ok,
        response.statusText,
        await response.json(),
        await json.text(),
        json.headers.get('content-type'),
        Response.error().type,
      ];
    },
    async fetchText(href) {
      // A vat cannot choose the Host header: it follows the URL, which is
      // what the host caveat checked.
      const response = await fetch(href, {
        headers: { 'x-req': 'r', host: 'evil.example' },
      });
      return [
        response.status,
        response.statusText,
        response.ok,
        await response.text(),
        response.headers.get('x-test'),
        response.url,
        response.redirected,
      ];
    },
    async fetchPost(href, body) {
      const response = await fetch(href, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/plain' },
      });
      return [response.status, hex(await response.arrayBuffer())];
    },
    async fetchError(href) {
      try {
        await fetch(href);
        return 'no error';
      } catch (error) {
        return describe(error);
      }
    },
    async fetchAborted(href) {
      const controller = new AbortController();
      const pending = fetch(href, { signal: controller.signal });
      controller.abort();
      try {
        await pending;
        return 'no error';
      } catch (error) {
        return describe(error);
      }
    },
    fetchForever(href) {
      // The result resolves only if the fetch settles, which it must not.
      return fetch(href).then(r => r.text());
    },
    fetchClasses() {
      return [
        typeof fetch,
        typeof Request,
        typeof Headers,
        typeof Response,
      ];
    },
    ping() {
      return 'pong';
    },
    /** Prototypes reachable from one endowment are hardened too. */
    reachableFrozen(name) {
      const proto = {
        crypto: () => Object.getPrototypeOf(crypto.subtle),
        Response: () => Object.getPrototypeOf(new Response('x').headers),
        URL: () => Object.getPrototypeOf(new URL('http://a/').searchParams),
        AbortController: () => Object.getPrototypeOf(new AbortController().signal),
      }[name]();
      return Object.isFrozen(proto);
    },

  });
}
