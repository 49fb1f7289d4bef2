// First module of the prelude: take the host (Rust) bindings off the global
// object before any other code runs, and give SES the `console` it needs.
//
// The Rust side installs `globalThis.__ocapHost` just before evaluating the
// prelude. Nothing after this module can reach it through the global object:
// the bindings only live on in the closures of the prelude's modules.

const rawHost = globalThis.__ocapHost;
if (typeof rawHost !== 'object' || rawHost === null) {
  throw Error('ocap-vat prelude: __ocapHost bindings are missing');
}
delete globalThis.__ocapHost;

/** @type {Record<string, Function>} */
export const host = { ...rawHost };

/**
 * Turn one log argument into JSON-compatible data.
 *
 * @param {unknown} value
 * @returns {unknown}
 */
export const toLogData = value => {
  const seen = new Set();
  const replace = (_key, v) => {
    switch (typeof v) {
      case 'bigint':
        return `${v}n`;
      case 'undefined':
        return null;
      case 'function':
        return `[Function ${v.name || 'anonymous'}]`;
      case 'symbol':
        return String(v);
      case 'object': {
        if (v === null) return v;
        if (v instanceof Error) {
          return { name: v.name, message: v.message, stack: v.stack };
        }
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
        return v;
      }
      default:
        return v;
    }
  };
  try {
    const text = JSON.stringify(value, replace);
    return text === undefined ? null : JSON.parse(text);
  } catch (error) {
    return String(value);
  }
};

/**
 * @param {unknown} message
 * @returns {string}
 */
export const toLogMessage = message => {
  if (typeof message === 'string') return message;
  if (message instanceof Error) return `${message.name}: ${message.message}`;
  if (message === undefined) return '';
  try {
    const text = JSON.stringify(toLogData(message));
    return text === undefined ? String(message) : text;
  } catch {
    return String(message);
  }
};

/**
 * Send one log record to the host.
 *
 * @param {string} level
 * @param {string[]} tags
 * @param {unknown[]} args
 */
export const emitLog = (level, tags, args) => {
  const [message, ...data] = args;
  host.log(
    level,
    JSON.stringify(tags),
    toLogMessage(message),
    JSON.stringify(data.map(toLogData)),
  );
};

// The realm console. SES insists on one; vat code never sees it (vats get
// their own logger-backed console as an endowment).
const makeRealmConsole = () => {
  const tags = ['realm'];
  const c = {};
  for (const level of ['log', 'debug', 'info', 'warn', 'error']) {
    c[level] = (...args) => emitLog(level, tags, args);
  }
  for (const name of ['trace', 'group', 'groupCollapsed', 'dir', 'table', 'assert']) {
    c[name] = (...args) => emitLog('debug', tags, args);
  }
  for (const name of ['groupEnd', 'time', 'timeEnd', 'timeLog', 'count', 'countReset', 'clear']) {
    c[name] = () => {};
  }
  return c;
};

globalThis.console = makeRealmConsole();

// QuickJS-ng has V8's Error.captureStackTrace / prepareStackTrace API, so
// SES tames errors the V8 way and stringifies call sites, but QuickJS-ng's
// CallSite has no toString(). Give it V8's format before SES looks.
(() => {
  const { prepareStackTrace } = Error;
  try {
    Error.prepareStackTrace = (_error, callSites) => callSites;
    const callSites = Error().stack;
    const proto = Array.isArray(callSites) && callSites.length > 0 && Object.getPrototypeOf(callSites[0]);
    if (proto && !Object.prototype.hasOwnProperty.call(proto, 'toString')) {
      Object.defineProperty(proto, 'toString', {
        value: function toString() {
          const fn = this.getFunctionName?.() || '<anonymous>';
          const file = this.getFileName?.() || '<unknown>';
          const line = this.getLineNumber?.();
          const col = this.getColumnNumber?.();
          const where = line ? `${file}:${line}${col ? `:${col}` : ''}` : file;
          return `${fn} (${where})`;
        },
        writable: true,
        configurable: true,
      });
    }
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
  }
})();
