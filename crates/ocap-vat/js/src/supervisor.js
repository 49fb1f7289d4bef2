// The ocap vat supervisor: the JS half of the vat worker.
//
// It owns liveslots for one vat and exposes a small synchronous API to the
// Rust worker (`globalThis.__ocapSupervisor`, taken and deleted by Rust right
// after the prelude ran):
//
//   initVat(vatId, configJson, bundleCode)   start a delivery: liveslots startVat
//   deliver(deliveryJson)                    start a delivery: liveslots dispatch
//   deliveryOutcome()                        after quiescence: JSON {done, error}
//   runMacrotask()                           resolve one waitUntilQuiescent waiter
//   fireTimer(id)                            run one timer callback
//   fetchSettled(id, outcomeJson, bytes)     settle one fetch (its own turn)
//
// Rust drives the QuickJS job queue. A delivery is complete when the job
// queue is empty and no quiescence waiter is left (see lib.rs, `drive`).
// Syscalls go to Rust synchronously as JSON and are never answered
// (optimistic syscalls, spec vat-side §2.6); vatstore calls are served by
// Rust from the vat's in-memory store.

import { makeLiveSlots } from '@agoric/swingset-liveslots';
import { makeMarshal } from '@endo/marshal';
import { atob, btoa } from '@endo/base64';
import { host, emitLog } from './prelude/00-host.js';
import { makeTextEncoder, makeTextDecoder } from './text-codec.js';
import { loadURL } from './web/url.js';
import { AbortController, AbortSignal } from './web/abort.js';
import { makeCryptoEndowments } from './web/crypto.js';
import {
  makeFetch,
  fetchSettled,
  Headers,
  Request,
  Response,
} from './web/fetch.js';

const { freeze } = Object;

// Captured from the start compartment, where SES leaves them working.
// Vat compartments get the tamed %SharedDate% / %SharedMath% instead.
const InitialDate = globalThis.Date;
const InitialMath = globalThis.Math;

/**
 * The floating-point typed-array constructors, endowed into every vat.
 *
 * SES 2.x permits `Float16Array`/`Float32Array`/`Float64Array` on the start
 * compartment only (`initialGlobalPropertyNames` in `ses/src/permits.js`,
 * because of the NaN side channel), so a plain `new Compartment()` lacks
 * them. The JS kernel runs SES 1.15, where they are universal, and vat
 * bundles rely on that (`@endo/marshal` <= 1.6 does `new Float64Array(1)` at
 * module load). SES still repairs and hardens them with the other
 * primordials ("they can be endowed into compartments without hazard beyond
 * the NaN side channel", permits.js), so we hand each vat exactly those
 * hardened intrinsics: no per-vat copies, nothing mutable shared with the
 * start compartment. An engine without one of them (QuickJS-ng may lack
 * `Float16Array`) simply does not endow it.
 */
const floatTypedArrays = (() => {
  const TypedArray = Object.getPrototypeOf(Int8Array);
  const found = {};
  for (const name of ['Float16Array', 'Float32Array', 'Float64Array']) {
    const ctor = globalThis[name];
    if (ctor === undefined) continue;
    // Refuse anything but the hardened intrinsic: a %TypedArray% subclass
    // whose constructor and prototype SES froze in hardenIntrinsics.
    if (
      typeof ctor !== 'function' ||
      Object.getPrototypeOf(ctor) !== TypedArray ||
      Object.getPrototypeOf(ctor.prototype) !== TypedArray.prototype ||
      !Object.isFrozen(ctor) ||
      !Object.isFrozen(ctor.prototype)
    ) {
      throw Error(`${name} on the start compartment is not the hardened intrinsic`);
    }
    found[name] = ctor;
  }
  return harden(found);
})();

/**
 * A logger shaped like @metamask/logger's Logger: pre-bound methods, tags
 * travelling with every record, subLogger({tags}) appending tags.
 *
 * @param {string[]} tags
 */
const makeLogger = tags => {
  const logger = {};
  for (const level of ['log', 'debug', 'info', 'warn', 'error']) {
    logger[level] = (...args) => emitLog(level, tags, args);
  }
  logger.subLogger = (options = {}) =>
    makeLogger([...tags, ...((options && options.tags) || [])]);
  return harden(logger);
};

const makeDummyMeterControl = () => {
  let meteringDisabled = 0;
  const isMeteringDisabled = () => Boolean(meteringDisabled);
  const assertIsMetered = msg => {
    assert(!meteringDisabled, msg);
  };
  const assertNotMetered = msg => {
    assert(Boolean(meteringDisabled), msg);
  };
  const runWithoutMetering = thunk => {
    meteringDisabled += 1;
    try {
      return thunk();
    } finally {
      meteringDisabled -= 1;
    }
  };
  const runWithoutMeteringAsync = async thunk => {
    meteringDisabled += 1;
    return Promise.resolve()
      .then(() => thunk())
      .finally(() => {
        meteringDisabled -= 1;
      });
  };
  const unmetered =
    thunk =>
    (...args) =>
      runWithoutMetering(() => thunk(...args));
  return harden({
    isMeteringDisabled,
    assertIsMetered,
    assertNotMetered,
    runWithoutMetering,
    runWithoutMeteringAsync,
    unmetered,
  });
};

// ---------------------------------------------------------------- quiescence

/** FIFO of resolvers for waitUntilQuiescent(), run one at a time by Rust. */
const macrotasks = [];

/** Like setImmediate: resolves once the job queue has drained. */
const waitUntilQuiescent = () =>
  new Promise(resolve => {
    macrotasks.push(resolve);
  });

const gcAndFinalize = async () => {
  host.requestGC();
  await waitUntilQuiescent();
  host.requestGC();
  await waitUntilQuiescent();
};

// ---------------------------------------------------------------- GC tools

const NativeFinalizationRegistry = globalThis.FinalizationRegistry;

/**
 * FinalizationRegistry with a *weakly* held unregister token.
 *
 * QuickJS-ng (0.10.x, as vendored by rquickjs-sys 0.14) keeps the token of
 * `register(target, held, token)` alive with a strong reference from the
 * registry (`fre->token = js_dup(token)` in js_finrec_register), against the
 * spec. Liveslots registers every presence and exported remotable with
 * itself as the token (`vreffedObjectRegistry.register(val, baseRef, val)`),
 * so nothing it registered could ever be collected: no dropImports, no GC
 * across vats. This wrapper registers natively *without* a token and keeps
 * its own token -> cells index in a WeakMap (weak keys, and the cells do not
 * point back at the token), so `unregister` still works.
 */
class TokenSafeFinalizationRegistry {
  #native;
  /** @type {WeakMap<object, Array<{ held: any, live: boolean }>>} */
  #byToken = new WeakMap();

  constructor(cleanup) {
    if (typeof cleanup !== 'function') {
      throw TypeError('FinalizationRegistry: cleanup must be callable');
    }
    this.#native = new NativeFinalizationRegistry(cell => {
      if (cell.live) {
        cell.live = false;
        cleanup(cell.held);
      }
    });
  }

  register(target, held, token = undefined) {
    const cell = { held, live: true };
    this.#native.register(target, cell);
    if (token !== undefined) {
      if (Object(token) !== token) {
        throw TypeError('FinalizationRegistry: invalid unregister token');
      }
      const cells = this.#byToken.get(token);
      if (cells) {
        cells.push(cell);
      } else {
        this.#byToken.set(token, [cell]);
      }
    }
  }

  unregister(token) {
    const cells = this.#byToken.get(token);
    if (!cells) return false;
    this.#byToken.delete(token);
    let removed = false;
    for (const cell of cells) {
      if (cell.live) {
        cell.live = false;
        removed = true;
      }
    }
    return removed;
  }
}
harden(TokenSafeFinalizationRegistry);

// ---------------------------------------------------------------- syscalls

const emitSyscall = vso => host.syscall(JSON.stringify(vso));

const syscall = harden({
  send(target, methargs, result) {
    const msg = { methargs };
    if (result !== undefined && result !== null) msg.result = result;
    emitSyscall(['send', target, msg]);
  },
  subscribe(vpid) {
    emitSyscall(['subscribe', vpid]);
  },
  resolve(resolutions) {
    emitSyscall(['resolve', resolutions]);
  },
  exit(isFailure, info) {
    emitSyscall(['exit', Boolean(isFailure), info]);
  },
  dropImports(vrefs) {
    emitSyscall(['dropImports', vrefs]);
  },
  retireImports(vrefs) {
    emitSyscall(['retireImports', vrefs]);
  },
  retireExports(vrefs) {
    emitSyscall(['retireExports', vrefs]);
  },
  abandonExports(vrefs) {
    emitSyscall(['abandonExports', vrefs]);
  },
  callNow(_target, _method, _args) {
    throw Error('callNow not supported (we have no devices)');
  },
  vatstoreGet: key => host.vatstoreGet(key),
  vatstoreGetNextKey: priorKey => host.vatstoreGetNextKey(priorKey),
  vatstoreSet: (key, value) => {
    host.vatstoreSet(key, value);
  },
  vatstoreDelete: key => {
    host.vatstoreDelete(key);
  },
});

// ---------------------------------------------------------------- endowments

/** Timer callbacks by id; Rust owns the clock and calls fireTimer(id). */
const timers = new Map();
let nextTimerId = 1;
const MIN_INTERVAL_MS = 10;

const toDelayMs = delay => {
  const ms = Number(delay);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms) : 0;
};

const makeTimerEndowments = () => {
  /** handle -> timer id, only for handles made by this factory */
  const handles = new WeakMap();
  const start = (handler, delay, args, repeat, name) => {
    if (typeof handler !== 'function') {
      throw TypeError(`The "handler" argument for ${name} must be a function.`);
    }
    const id = nextTimerId;
    nextTimerId += 1;
    let ms = toDelayMs(delay);
    if (repeat) ms = Math.max(ms, MIN_INTERVAL_MS);
    timers.set(id, { handler, args, repeat });
    host.timerSet(id, ms, repeat);
    const handle = freeze(Object.create(null));
    handles.set(handle, id);
    return handle;
  };
  const clear = handle => {
    const id = handles.get(handle);
    if (id === undefined) return;
    handles.delete(handle);
    timers.delete(id);
    host.timerClear(id);
  };
  return {
    setTimeout: (handler, delay, ...args) =>
      start(handler, delay, args, false, 'setTimeout'),
    clearTimeout: clear,
    setInterval: (handler, delay, ...args) =>
      start(handler, delay, args, true, 'setInterval'),
    clearInterval: clear,
  };
};

/** A Date that works, with a monotonic non-decreasing now(). */
const makeDateEndowment = () => {
  let last = 0;
  const now = () => {
    const t = InitialDate.now();
    if (t > last) last = t;
    return last;
  };
  // eslint-disable-next-line no-shadow
  function Date(...args) {
    if (new.target === undefined) {
      return InitialDate.prototype.toString.call(new InitialDate(now()));
    }
    if (args.length === 0) {
      return Reflect.construct(InitialDate, [now()], new.target);
    }
    return Reflect.construct(InitialDate, args, new.target);
  }
  Object.defineProperties(Date, {
    prototype: { value: InitialDate.prototype },
    now: { value: now, writable: true, configurable: true },
    parse: { value: InitialDate.parse, writable: true, configurable: true },
    UTC: { value: InitialDate.UTC, writable: true, configurable: true },
  });
  return Date;
};

/** Math with a working random(). */
const makeMathEndowment = () =>
  Object.create(
    Object.getPrototypeOf(InitialMath),
    Object.getOwnPropertyDescriptors(InitialMath),
  );

/**
 * Build the requested optional globals. Rust has already checked every name
 * against the allowlist and the list of globals this worker implements, and
 * that `fetch` comes with `network.allowedHosts`.
 *
 * @param {string[]} names
 * @param {{allowedHosts?: string[]} | undefined} network
 */
const makeRequestedGlobals = (names, network) => {
  const made = {};
  let timerSet;
  let cryptoSet;
  for (const name of names) {
    switch (name) {
      case 'setTimeout':
      case 'clearTimeout':
      case 'setInterval':
      case 'clearInterval':
        timerSet ||= makeTimerEndowments();
        made[name] = timerSet[name];
        break;
      case 'Date':
        made.Date = makeDateEndowment();
        break;
      case 'Math':
        made.Math = makeMathEndowment();
        break;
      case 'TextEncoder':
        made.TextEncoder = makeTextEncoder();
        break;
      case 'TextDecoder':
        made.TextDecoder = makeTextDecoder();
        break;
      case 'atob':
        made.atob = atob;
        break;
      case 'btoa':
        made.btoa = btoa;
        break;
      // Objects of one global reach its siblings' prototypes (crypto.subtle,
      // response.headers, url.searchParams, controller.signal), so each
      // family is hardened whole, whichever of its names was asked for.
      case 'crypto':
      case 'SubtleCrypto':
        cryptoSet ||= harden(makeCryptoEndowments());
        made[name] = cryptoSet[name];
        break;
      case 'fetch':
        made.fetch = makeFetch(network.allowedHosts);
        break;
      case 'Request':
      case 'Headers':
      case 'Response':
        made[name] = harden({ Request, Headers, Response })[name];
        break;
      case 'URL':
      case 'URLSearchParams':
        made[name] = harden(loadURL())[name];
        break;
      case 'AbortController':
      case 'AbortSignal':
        made[name] = harden({ AbortController, AbortSignal })[name];
        break;
      default:
        throw Error(`global "${name}" is not implemented by this vat worker`);
    }
  }
  return harden(made);
};

// ---------------------------------------------------------------- the vat

let vatLoaded = false;
let currentVatId = 'unknown';
let dispatch;
/** @type {{done: boolean, error: string | null} | undefined} */
let outcome;

const rootLogger = makeLogger([]);

/**
 * Evaluate the vat bundle's code in a fresh SES Compartment whose globals are
 * the endowments, and return its exports namespace (spec vat-side §4.4).
 */
const loadBundle = (code, endowments, inescapableGlobalProperties) => {
  const compartment = new Compartment({
    __options__: true,
    globals: {
      harden,
      ...endowments,
      ...inescapableGlobalProperties,
      exports: {},
    },
  });
  const g = compartment.globalThis;
  g.global = g;
  return compartment.evaluate(
    `(function () {\n${code}\n;return __vatExports__;\n})()`,
  );
};

const startDelivery = promise => {
  outcome = { done: false, error: null };
  const mine = outcome;
  promise.then(
    () => {
      mine.done = true;
    },
    error => {
      emitLog('error', ['supervisor'], [`Delivery error in vat ${currentVatId}:`, error]);
      mine.done = true;
      mine.error =
        error && typeof error === 'object' && 'message' in error
          ? String(error.message)
          : String(error);
    },
  );
};

const initVat = (vatId, configJson, bundleCode, requestedGlobalsJson) => {
  if (vatLoaded) {
    throw Error('VatSupervisor received initVat after user code already loaded');
  }
  vatLoaded = true;
  currentVatId = vatId;
  const vatConfig = JSON.parse(configJson);
  const requested = makeRequestedGlobals(
    JSON.parse(requestedGlobalsJson),
    vatConfig.network,
  );
  const workerEndowments = {
    console: rootLogger.subLogger({ tags: ['console'] }),
    assert: globalThis.assert,
    ...floatTypedArrays,
    ...requested,
  };
  const gcTools = harden({
    WeakRef,
    FinalizationRegistry: TokenSafeFinalizationRegistry,
    waitUntilQuiescent,
    gcAndFinalize,
    meterControl: makeDummyMeterControl(),
  });
  const buildVatNamespace = async (lsEndowments, inescapableGlobalProperties) => {
    const endowments = { ...workerEndowments };
    for (const [name, value] of Object.entries(lsEndowments)) {
      if (name in endowments) {
        throw Error(`Duplicate endowment "${name}"`);
      }
      endowments[name] = value;
    }
    return loadBundle(bundleCode, endowments, inescapableGlobalProperties);
  };
  const liveslots = makeLiveSlots(
    syscall,
    vatId,
    harden({ logger: rootLogger }),
    {},
    gcTools,
    rootLogger.subLogger({ tags: ['liveslots'] }),
    buildVatNamespace,
  );
  dispatch = liveslots.dispatch;
  const { toCapData } = makeMarshal(undefined, undefined, {
    serializeBodyFormat: 'smallcaps',
  });
  const parameters = toCapData(harden(vatConfig.parameters));
  startDelivery(dispatch(harden(['startVat', parameters])));
};

const deliver = deliveryJson => {
  if (!dispatch) {
    throw Error('cannot deliver before vat is loaded');
  }
  const delivery = JSON.parse(deliveryJson);
  startDelivery(dispatch(harden(delivery)));
};

const deliveryOutcome = () => {
  const result = outcome || { done: false, error: 'no delivery in progress' };
  outcome = undefined;
  return JSON.stringify(result);
};

const runMacrotask = () => {
  const resolve = macrotasks.shift();
  if (resolve === undefined) return false;
  resolve();
  return true;
};

const fireTimer = id => {
  const timer = timers.get(id);
  if (timer === undefined) return;
  if (!timer.repeat) timers.delete(id);
  try {
    Reflect.apply(timer.handler, undefined, timer.args);
  } catch (error) {
    emitLog('error', ['timer'], ['Uncaught error in timer callback:', error]);
  }
};

globalThis.__ocapSupervisor = harden({
  initVat,
  deliver,
  deliveryOutcome,
  runMacrotask,
  fireTimer,
  fetchSettled,
});
