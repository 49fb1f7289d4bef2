// AbortController / AbortSignal: the `abort-controller` package (a WHATWG
// EventTarget from `event-target-shim`, state kept in WeakMaps), extended
// with the newer members it lacks: `reason`, `throwIfAborted()`,
// `AbortSignal.abort(reason)` and `AbortSignal.any(signals)`.
import {
  AbortController as BaseAbortController,
  AbortSignal,
} from 'abort-controller';

const { defineProperty } = Object;

/** @type {WeakMap<object, unknown>} signal -> abort reason */
const reasons = new WeakMap();

/** An Error named `name`, standing in for a DOMException. */
export const makeDOMError = (message, name) => {
  const error = Error(message);
  defineProperty(error, 'name', {
    value: name,
    writable: true,
    configurable: true,
  });
  return error;
};

export const makeAbortError = () =>
  makeDOMError('This operation was aborted', 'AbortError');

// eslint-disable-next-line no-shadow
class AbortController extends BaseAbortController {
  abort(reason) {
    const { signal } = this;
    if (signal.aborted) return;
    reasons.set(signal, reason === undefined ? makeAbortError() : reason);
    super.abort();
  }
}

defineProperty(AbortSignal.prototype, 'reason', {
  get() {
    return reasons.get(this);
  },
  configurable: true,
  enumerable: true,
});

defineProperty(AbortSignal.prototype, 'throwIfAborted', {
  value: function throwIfAborted() {
    if (this.aborted) throw reasons.get(this);
  },
  writable: true,
  configurable: true,
});

defineProperty(AbortSignal, 'abort', {
  value: function abort(reason) {
    const controller = new AbortController();
    controller.abort(reason);
    return controller.signal;
  },
  writable: true,
  configurable: true,
});

defineProperty(AbortSignal, 'any', {
  value: function any(signals) {
    const controller = new AbortController();
    const list = [...signals];
    const onAbort = event => {
      for (const s of list) s.removeEventListener('abort', onAbort);
      controller.abort(reasons.get(event.target));
    };
    for (const signal of list) {
      if (signal.aborted) {
        controller.abort(reasons.get(signal));
        return controller.signal;
      }
    }
    for (const signal of list) signal.addEventListener('abort', onAbort);
    return controller.signal;
  },
  writable: true,
  configurable: true,
});

export { AbortController, AbortSignal };
